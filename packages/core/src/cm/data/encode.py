"""Encode (criterion, post) pairs as ``[CLS] criterion [SEP] post [SEP]`` token ids.

The criterion goes first and is never truncated: it is what the model is asked about, and it
is short. Only the post is cut, by one of three strategies (TRUNCATIONS). Each distinct text
is tokenized once (the same post is paired with all nine criteria), then pairs are assembled
from the cached ids, which is both faster and guarantees identical post tokens per criterion.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
import numpy as np

from cm.errors import UserError

TRUNCATIONS = ("head", "head_tail", "windows")
# Bump when the encoding or the cache file layout changes.
FORMAT_VERSION = 1
# head_tail keeps budget // HEAD_DIVISOR post tokens from the start and the rest from the end.
# Sun et al. (2019, "How to Fine-Tune BERT for Text Classification") found head+tail best,
# with 128 head + 382 tail tokens of 510; posts here tend to state the symptom early too,
# so the head gets a third: at max_length 512 and a ~30-token criterion, ~159 + ~319.
HEAD_DIVISOR = 3


@attrs.frozen
class Encoded:
    """One model input; pairs split into windows give several, sharing pair_index."""

    input_ids: tuple[int, ...]
    # 0 for [CLS] criterion [SEP], 1 for post [SEP]. DeBERTa-v3 has type_vocab_size=0 and
    # ignores them; they are kept for backbones that do use segment embeddings.
    token_type_ids: tuple[int, ...]
    pair_index: int
    window: int = 0


def encode_pairs(
    pairs: Sequence[tuple[str, str]],
    tokenizer,
    max_length: int,
    truncation: str = "head",
    stride: int = 128,
) -> list[Encoded]:
    """Encode (criterion_text, post_text) pairs, in order, windows of a pair consecutive.

    head keeps the start of the post; head_tail keeps its first budget // HEAD_DIVISOR tokens
    and fills the rest of the budget from its end; windows yields overlapping windows
    (consecutive ones share exactly stride tokens) so that every post token is in at least
    one. The budget is max_length minus the criterion and 3 special tokens. Posts that fit
    are never cut: one Encoded each.
    """
    if truncation not in TRUNCATIONS:
        raise UserError(f"unknown truncation {truncation!r}; choose one of {list(TRUNCATIONS)}")
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls_id is None or sep_id is None:
        raise ValueError("the tokenizer has no [CLS]/[SEP] tokens; it cannot encode pairs")
    ids = _tokenize_unique(tokenizer, [text for pair in pairs for text in pair])
    encoded = []
    for index, (criterion, post) in enumerate(pairs):
        head = [cls_id, *ids[criterion], sep_id]
        budget = post_budget(criterion, len(ids[criterion]), max_length, truncation, stride)
        for window, part in enumerate(_cut(ids[post], budget, truncation, stride)):
            encoded.append(
                Encoded(
                    input_ids=(*head, *part, sep_id),
                    token_type_ids=(0,) * len(head) + (1,) * (len(part) + 1),
                    pair_index=index,
                    window=window,
                )
            )
    return encoded


def post_budget(criterion: str, criterion_tokens: int, max_length: int, truncation: str,
                stride: int) -> int:
    """The post tokens a pair with this criterion holds: max_length minus the criterion and
    3 special tokens. A max_length that leaves no room, or a windows stride that does not
    fit in the room, is bad input: ``cm.preflight`` asks this of every criterion before a
    run starts, encoding asks it again of every pair."""
    budget = max_length - criterion_tokens - 3
    if budget < 1:
        raise UserError(
            f"criterion {_preview(criterion)!r} is {criterion_tokens} tokens; with [CLS], "
            f"two [SEP] and at least one post token it needs max_length >= "
            f"{criterion_tokens + 4}, but max_length is {max_length}. Criteria are never "
            "truncated: raise data.max_length"
        )
    if truncation == "windows" and stride >= budget:
        raise UserError(
            f"stride ({stride}) must be smaller than the post budget of a window ({budget} "
            f"tokens = max_length minus criterion {_preview(criterion)!r} and 3 special "
            "tokens): lower data.stride or raise data.max_length"
        )
    return budget


def _tokenize_unique(tokenizer, texts: list[str]) -> dict[str, list[int]]:
    unique = list(dict.fromkeys(texts))
    if not unique:
        return {}
    # verbose=False: long posts are expected here, we cut them ourselves.
    batch = tokenizer(
        unique,
        add_special_tokens=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    return dict(zip(unique, batch["input_ids"], strict=True))


def _cut(post: list[int], budget: int, truncation: str, stride: int) -> list[list[int]]:
    """The post token slices to emit (one unless truncation is windows)."""
    if len(post) <= budget:
        return [post]
    if truncation == "head":
        return [post[:budget]]
    if truncation == "head_tail":
        head = budget // HEAD_DIVISOR
        tail = budget - head  # >= 1 since budget >= 1
        return [post[:head] + post[len(post) - tail :]]
    step = budget - stride
    windows = [post[0:budget]]
    start = 0
    while start + budget < len(post):
        start += step
        windows.append(post[start : start + budget])
    return windows


def _preview(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tokenizer_fingerprint(tokenizer) -> str:
    """sha256 of everything that decides the ids: the full backend tokenizer when there is
    one (vocab, normalizer, pre-tokenizer), else the vocabulary and special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        payload = backend.to_str()
    else:
        payload = json.dumps(
            [
                type(tokenizer).__name__,
                sorted(tokenizer.get_vocab().items()),
                tokenizer.all_special_tokens,
            ],
            ensure_ascii=False,
        )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def texts_digest(texts: Iterable[str]) -> str:
    """sha256 over the texts in order (length-prefixed, so boundaries cannot collide)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def cache_key(pairs, tokenizer, max_length: int, truncation: str, stride: int) -> str:
    parts = [
        FORMAT_VERSION,
        texts_digest(text for pair in pairs for text in pair),
        tokenizer_fingerprint(tokenizer),
        max_length,
        truncation,
        stride,
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def encode_cached(
    pairs: Sequence[tuple[str, str]],
    tokenizer,
    max_length: int,
    truncation: str = "head",
    stride: int = 128,
    *,
    cache_dir: Path,
) -> list[Encoded]:
    """encode_pairs, memoised as an .npz file in cache_dir (no pickle; atomic replace, so a
    concurrent reader sees either no file or a whole one). Unreadable entries are rebuilt."""
    cache_dir = Path(cache_dir)
    key = cache_key(pairs, tokenizer, max_length, truncation, stride)
    path = cache_dir / f"encoded-{key[:32]}.npz"
    if path.is_file():
        try:
            return _load(path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # corrupt or foreign file: rebuild below
    encoded = encode_pairs(pairs, tokenizer, max_length, truncation, stride)
    _save(path, encoded)
    return encoded


def _save(path: Path, encoded: list[Encoded]) -> None:
    lengths = np.array([len(e.input_ids) for e in encoded], dtype=np.int64)
    arrays = {
        "lengths": lengths,
        "input_ids": np.fromiter(
            (i for e in encoded for i in e.input_ids), dtype=np.int64, count=int(lengths.sum())
        ),
        "token_type_ids": np.fromiter(
            (t for e in encoded for t in e.token_type_ids),
            dtype=np.int8,
            count=int(lengths.sum()),
        ),
        "pair_index": np.array([e.pair_index for e in encoded], dtype=np.int64),
        "window": np.array([e.window for e in encoded], dtype=np.int64),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: Path) -> list[Encoded]:
    with np.load(path, allow_pickle=False) as data:
        lengths = data["lengths"].tolist()
        ids = data["input_ids"].tolist()
        types = data["token_type_ids"].tolist()
        pair_index = data["pair_index"].tolist()
        window = data["window"].tolist()
    if len(ids) != sum(lengths) or not len(lengths) == len(pair_index) == len(window):
        raise ValueError(f"inconsistent cache file {path}")
    encoded, start = [], 0
    for length, index, win in zip(lengths, pair_index, window, strict=True):
        end = start + length
        encoded.append(Encoded(tuple(ids[start:end]), tuple(types[start:end]), index, win))
        start = end
    return encoded
