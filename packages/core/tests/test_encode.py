"""Pair encoding: [CLS] criterion [SEP] post [SEP], truncation strategies, on-disk cache."""

from __future__ import annotations

import random

import numpy as np
import pytest

from cm.data import encode
from cm.data.encode import Encoded, encode_cached, encode_pairs
from cm.errors import UserError
from cm.model.tiny import train_tokenizer

CRITERION = "Insomnia or hypersomnia nearly every day."
OTHER_CRITERION = "Fatigue or loss of energy nearly every day."
WORDS = (
    "i cant sleep at night and feel tired all day nothing makes me happy lost interest "
    "in hobbies worthless guilty appetite weight focus hopeless empty crying morning work "
    "school friends music"
).split()
# 400 words in a fixed pseudo-random order, so slices from different places differ.
LONG_POST = " ".join(random.Random(0).choices(WORDS, k=400))
SHORT_POST = "I cant sleep at night."
MAX_LENGTH = 64


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    corpus = [CRITERION, OTHER_CRITERION, SHORT_POST, LONG_POST, " ".join(WORDS)] * 3
    return train_tokenizer(corpus, tmp_path_factory.mktemp("encode-tokenizer"), vocab_size=200)


def ids_of(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def split(tok, e: Encoded, criterion: str) -> list[int]:
    """Check the [CLS] criterion [SEP] ... [SEP] frame and return the post ids."""
    c = ids_of(tok, criterion)
    ids = list(e.input_ids)
    assert ids[0] == tok.cls_token_id
    assert ids[1 : 1 + len(c)] == c  # criterion intact
    assert ids[1 + len(c)] == tok.sep_token_id
    assert ids[-1] == tok.sep_token_id
    assert list(e.token_type_ids) == [0] * (len(c) + 2) + [1] * (len(ids) - len(c) - 2)
    return ids[len(c) + 2 : -1]


def budget(tok, criterion: str, max_length: int = MAX_LENGTH) -> int:
    return max_length - len(ids_of(tok, criterion)) - 3


def test_fixture_post_is_long_enough(tok):
    assert len(ids_of(tok, LONG_POST)) > 4 * MAX_LENGTH
    assert tok.unk_token_id not in ids_of(tok, LONG_POST)


def test_short_pair_matches_the_tokenizer_pair_template(tok):
    (e,) = encode_pairs([(CRITERION, SHORT_POST)], tok, MAX_LENGTH)
    reference = tok(CRITERION, SHORT_POST)
    assert list(e.input_ids) == reference["input_ids"]
    assert list(e.token_type_ids) == reference["token_type_ids"]
    assert (e.pair_index, e.window) == (0, 0)


@pytest.mark.parametrize("truncation", ["head", "head_tail", "windows"])
def test_short_post_is_kept_whole_in_one_encoding(tok, truncation):
    (e,) = encode_pairs([(CRITERION, SHORT_POST)], tok, MAX_LENGTH, truncation, stride=8)
    assert split(tok, e, CRITERION) == ids_of(tok, SHORT_POST)


@pytest.mark.parametrize("truncation", ["head", "head_tail", "windows"])
def test_long_post_keeps_criterion_and_fits(tok, truncation):
    out = encode_pairs([(CRITERION, LONG_POST)], tok, MAX_LENGTH, truncation, stride=8)
    for e in out:
        assert len(e.input_ids) <= MAX_LENGTH
        assert len(e.token_type_ids) == len(e.input_ids)
        split(tok, e, CRITERION)
    assert len(out[0].input_ids) == MAX_LENGTH  # the budget is used in full


def test_head_keeps_the_beginning(tok):
    (e,) = encode_pairs([(CRITERION, LONG_POST)], tok, MAX_LENGTH, "head")
    post = ids_of(tok, LONG_POST)
    assert split(tok, e, CRITERION) == post[: budget(tok, CRITERION)]


def test_head_tail_keeps_a_third_from_the_start_and_the_rest_from_the_end(tok):
    (e,) = encode_pairs([(CRITERION, LONG_POST)], tok, MAX_LENGTH, "head_tail")
    post, room = ids_of(tok, LONG_POST), budget(tok, CRITERION)
    head = room // 3
    kept = split(tok, e, CRITERION)
    assert kept == post[:head] + post[len(post) - (room - head) :]
    assert kept[0] == post[0] and kept[-1] == post[-1]


def test_windows_cover_every_token_and_overlap_by_stride(tok):
    stride = 10
    out = encode_pairs([(CRITERION, LONG_POST)], tok, MAX_LENGTH, "windows", stride=stride)
    post, room = ids_of(tok, LONG_POST), budget(tok, CRITERION)
    step = room - stride
    windows = [split(tok, e, CRITERION) for e in out]
    assert len(windows) == -(-(len(post) - stride) // step)  # ceil: several windows
    assert len(windows) > 3
    assert [e.window for e in out] == list(range(len(out)))
    assert {e.pair_index for e in out} == {0}
    covered = set()
    for k, window in enumerate(windows):
        assert window == post[k * step : k * step + room]
        covered.update(range(k * step, k * step + len(window)))
    assert covered == set(range(len(post)))
    for a, b in zip(windows, windows[1:], strict=False):
        assert a[-stride:] == b[:stride]
    assert windows[-1][-1] == post[-1]


def test_windows_that_end_exactly_at_the_post_end_add_no_extra_window(tok):
    post = ids_of(tok, LONG_POST)
    stride = 10 + (len(post) % 2)  # so that two windows tile the post exactly
    room = (len(post) + stride) // 2
    max_length = room + len(ids_of(tok, CRITERION)) + 3
    out = encode_pairs([(CRITERION, LONG_POST)], tok, max_length, "windows", stride=stride)
    windows = [split(tok, e, CRITERION) for e in out]
    assert windows == [post[:room], post[room - stride :]]
    assert len(windows[1]) == room
    # A post of exactly the budget is a single window.
    (e,) = encode_pairs([(CRITERION, LONG_POST)], tok, len(post) + max_length - room, "windows")
    assert split(tok, e, CRITERION) == post


def test_pairs_keep_their_order_and_index(tok):
    pairs = [(CRITERION, LONG_POST), (OTHER_CRITERION, SHORT_POST), (CRITERION, SHORT_POST)]
    out = encode_pairs(pairs, tok, MAX_LENGTH, "windows", stride=8)
    indices = [e.pair_index for e in out]
    assert indices == sorted(indices)
    assert indices.count(0) > 1 and indices.count(1) == 1 and indices.count(2) == 1
    assert split(tok, out[-2], OTHER_CRITERION) == ids_of(tok, SHORT_POST)


def test_each_distinct_text_is_tokenized_once(tok):
    calls = []

    class Counting:
        cls_token_id, sep_token_id = tok.cls_token_id, tok.sep_token_id

        def __call__(self, texts, **kwargs):
            calls.append(list(texts))
            return tok(texts, **kwargs)

    pairs = [(c, p) for p in (SHORT_POST, LONG_POST) for c in (CRITERION, OTHER_CRITERION)]
    out = encode_pairs(pairs, Counting(), MAX_LENGTH)
    assert calls == [[CRITERION, SHORT_POST, OTHER_CRITERION, LONG_POST]]
    assert out == encode_pairs(pairs, tok, MAX_LENGTH)


def test_empty_post_still_gives_the_frame(tok):
    (e,) = encode_pairs([(CRITERION, "")], tok, MAX_LENGTH, "windows", stride=8)
    assert split(tok, e, CRITERION) == []


def test_criterion_too_long_is_a_clear_error(tok):
    long_criterion = " ".join(WORDS * 3)
    with pytest.raises(UserError, match=r"never truncated.*max_length") as caught:
        encode_pairs([(long_criterion, SHORT_POST)], tok, MAX_LENGTH)
    assert f"max_length >= {len(ids_of(tok, long_criterion)) + 4}" in str(caught.value)
    # Exactly enough room for one post token is accepted.
    fits = len(ids_of(tok, CRITERION)) + 4
    (e,) = encode_pairs([(CRITERION, SHORT_POST)], tok, fits)
    assert len(e.input_ids) == fits


def test_stride_must_leave_room_to_advance(tok):
    with pytest.raises(UserError, match="stride"):
        encode_pairs([(CRITERION, LONG_POST)], tok, MAX_LENGTH, "windows", stride=MAX_LENGTH)


def test_unknown_truncation_is_rejected(tok):
    with pytest.raises(UserError, match="head_tail"):
        encode_pairs([(CRITERION, SHORT_POST)], tok, MAX_LENGTH, "tail")


# --- cache ------------------------------------------------------------------------------


PAIRS = [(CRITERION, LONG_POST), (OTHER_CRITERION, SHORT_POST)]


def test_cache_hit_is_identical_and_skips_encoding(tok, tmp_path, monkeypatch):
    first = encode_cached(PAIRS, tok, MAX_LENGTH, "windows", 8, cache_dir=tmp_path)
    (path,) = tmp_path.iterdir()
    assert path.suffix == ".npz"
    with np.load(path, allow_pickle=False) as data:  # plain arrays, no pickle
        assert int(data["lengths"].sum()) == sum(len(e.input_ids) for e in first)

    def boom(*args, **kwargs):
        raise AssertionError("re-encoded on a cache hit")

    monkeypatch.setattr(encode, "encode_pairs", boom)
    second = encode_cached(PAIRS, tok, MAX_LENGTH, "windows", 8, cache_dir=tmp_path)
    assert second == first
    assert all(type(i) is int for i in second[0].input_ids)
    assert first == encode_pairs(PAIRS, tok, MAX_LENGTH, "windows", 8)


def test_cache_key_covers_every_setting(tok, tmp_path):
    encode_cached(PAIRS, tok, MAX_LENGTH, "head", cache_dir=tmp_path)
    encode_cached(PAIRS, tok, MAX_LENGTH + 1, "head", cache_dir=tmp_path)
    encode_cached(PAIRS, tok, MAX_LENGTH, "head_tail", cache_dir=tmp_path)
    encode_cached(PAIRS, tok, MAX_LENGTH, "windows", 8, cache_dir=tmp_path)
    encode_cached(PAIRS, tok, MAX_LENGTH, "windows", 9, cache_dir=tmp_path)
    encode_cached(PAIRS[:1], tok, MAX_LENGTH, "head", cache_dir=tmp_path)
    encode_cached(PAIRS, tok, MAX_LENGTH, "head", cache_dir=tmp_path)  # hit
    assert len(list(tmp_path.iterdir())) == 6


def test_cache_key_covers_the_tokenizer(tok, tmp_path):
    other = train_tokenizer([SHORT_POST, CRITERION, OTHER_CRITERION], tmp_path / "tok", 100)
    key = encode.cache_key(PAIRS, tok, MAX_LENGTH, "head", 128)
    assert encode.cache_key(PAIRS, other, MAX_LENGTH, "head", 128) != key
    assert encode.cache_key(PAIRS, tok, MAX_LENGTH, "head", 128) == key


def test_corrupt_cache_file_is_rebuilt(tok, tmp_path):
    first = encode_cached(PAIRS, tok, MAX_LENGTH, cache_dir=tmp_path)
    (path,) = tmp_path.iterdir()
    path.write_bytes(b"not a zip")
    assert encode_cached(PAIRS, tok, MAX_LENGTH, cache_dir=tmp_path) == first
    assert encode_cached(PAIRS, tok, MAX_LENGTH, cache_dir=tmp_path) == first
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left
