"""Pair building: exact labels on the shared sample (counted by hand from its CSV) and the
label policies (status 0, SPECIAL_CASE, repeated sentences) on tiny hand-made corpora."""

from __future__ import annotations

import pytest

from cm.data.pairs import build_pairs, label_matrix
from cm.data.records import Annotation, Corpus, Criterion, Post
from cm.data.redsm5 import load_redsm5_root
from cm.errors import UserError

# Hand-counted from redsm5_annotations.csv: every (post, criterion) with a status-1 row.
SAMPLE_POSITIVES = {
    ("s_1270_9", "A.4"),
    ("s_993_1060", "A.4"), ("s_993_1060", "A.6"), ("s_993_1060", "A.8"),
    ("s_321_219", "A.1"),
    ("s_2392_17", "A.4"),  # also has a status-0 SLEEP_ISSUES row: still positive
    ("s_1997_963", "A.8"),
    ("s_1404_102", "A.2"), ("s_1404_102", "A.7"),  # A.7 has one status-0 and one status-1
    ("s_205_396", "A.2"),
    ("s_2886_101", "A.6"), ("s_2886_101", "A.8"),
    ("s_993_557", "A.7"),
    ("s_1639_444", "A.6"),
    ("s_2338_920", "A.1"),
    ("s_156_366", "A.9"),
    ("s_1404_1048", "A.4"),
    ("s_329_224", "A.1"), ("s_329_224", "A.7"),  # one sentence carrying two symptoms
    ("s_2748_278", "A.4"),
}  # fmt: skip
STATUS_ZERO_ONLY = {("s_1955_1069", "A.7"), ("s_2748_341", "A.2")}
CRITERIA = tuple(Criterion(f"A.{i}", f"criterion {i}") for i in range(1, 10))


def _corpus(posts, annotations):
    return Corpus(tuple(posts), tuple(annotations), CRITERIA)


def test_sample_post_pairs_are_exact(sample_root):
    corpus = load_redsm5_root(sample_root)
    pairs, _ = build_pairs(corpus)
    assert len(pairs) == 17 * 9 == 153
    keys = [(p.post_id, p.criterion_id) for p in pairs]
    assert len(set(keys)) == 153
    assert {k for k, p in zip(keys, pairs, strict=True) if p.label == 1} == SAMPLE_POSITIVES
    assert sum(p.label for p in pairs) == 20
    by_key = dict(zip(keys, pairs, strict=True))
    for key in STATUS_ZERO_ONLY:
        assert by_key[key].label == 0
    assert all(p.sentence_id is None for p in pairs)


def test_sample_pairs_follow_post_then_criteria_order(sample_root):
    corpus = load_redsm5_root(sample_root)
    pairs, _ = build_pairs(corpus, level="post")
    assert [p.criterion_id for p in pairs[:9]] == [c.id for c in corpus.criteria]
    assert {p.post_id for p in pairs[:9]} == {corpus.posts[0].post_id}
    assert pairs[0].text == corpus.posts[0].text
    assert pairs[4].criterion_text == corpus.criteria[4].text


def test_sample_label_matrix(sample_root):
    matrix = label_matrix(load_redsm5_root(sample_root))
    assert len(matrix) == 17
    assert matrix["s_993_1060"] == frozenset({"A.4", "A.6", "A.8"})
    assert matrix["s_1955_1069"] == frozenset()
    assert matrix["s_2748_341"] == frozenset()
    assert {(p, c) for p, ids in matrix.items() for c in ids} == SAMPLE_POSITIVES


def test_sample_sentence_pairs(sample_root):
    corpus = load_redsm5_root(sample_root)
    pairs, counts = build_pairs(corpus, level="sentence")
    assert len(pairs) % 9 == 0 and len({p.sentence_id for p in pairs}) == len(pairs) // 9
    positives = {(p.post_id, p.criterion_id) for p in pairs if p.label}
    # the sample is paraphrased: no annotated sentence occurs in its post, each is added as
    # a sentence of its own, so the positive (post, criterion) cells are the post level's
    assert positives == SAMPLE_POSITIVES
    assert counts["annotated_sentences_not_in_post"] == 21
    share = sum(p.label for p in pairs) / len(pairs)
    assert share < 0.05  # no longer mostly positive: all the other sentences are negatives
    for pair in (p for p in pairs if ":x" not in p.sentence_id):
        post = next(p for p in corpus.posts if p.post_id == pair.post_id)
        assert pair.text in post.text and pair.text == pair.text.strip()


def test_sentence_pairs_label_annotated_sentences_and_count_mismatches():
    post = Post("p1", "I sleep all day. Work is fine. I can't eat; food tastes of nothing.")
    annotations = [
        Annotation("p1", "p1_0", "I sleep all day.", "SLEEP_ISSUES", 1, ""),
        Annotation("p1", "p1_1", "Work is fine.", "FATIGUE", 0, ""),  # status 0: negative
        Annotation("p1", "p1_2", "food tastes of nothing.", "APPETITE_CHANGE", 1, ""),
        Annotation("p1", "p1_3", "Not in the post.", "ANHEDONIA", 1, ""),
        Annotation("p1", "p1_4", "I sleep all day.", "SPECIAL_CASE", 1, ""),
    ]
    pairs, counts = build_pairs(_corpus([post], annotations), "sentence")
    assert [p.text for p in pairs[::9]] == [
        "I sleep all day.", "Work is fine.", "I can't eat; food tastes of nothing.",
        "Not in the post."]
    assert sorted((p.sentence_id, p.criterion_id) for p in pairs if p.label) == [
        ("p1:0", "A.4"), ("p1:2", "A.3"), ("p1:x0", "A.2")]  # split differently: marks its
    # sentence; not in the post: a sentence of its own
    assert counts == {"annotated_sentences_split_differently": 1,
                      "annotated_sentences_not_in_post": 1}


def test_unannotated_post_gives_nine_negatives():
    pairs, _ = build_pairs(_corpus([Post("p1", "text")], []))
    assert [(p.criterion_id, p.label) for p in pairs] == [(f"A.{i}", 0) for i in range(1, 10)]


def test_special_case_never_labels_and_is_counted():
    annotations = [
        Annotation("p1", "p1_0", "s0", "SPECIAL_CASE", 1, ""),
        Annotation("p1", "p1_1", "s1", "FATIGUE", 1, ""),
    ]
    corpus = _corpus([Post("p1", "text")], annotations)
    assert label_matrix(corpus) == {"p1": frozenset({"A.6"})}
    assert sum(p.label for p in build_pairs(corpus)[0]) == 1


def test_status_zero_rows_do_not_make_positives():
    annotations = [Annotation("p1", "p1_0", "s", "ANHEDONIA", 0, "")]
    corpus = _corpus([Post("p1", "x"), Post("p2", "y")], annotations)
    assert label_matrix(corpus) == {"p1": frozenset(), "p2": frozenset()}
    assert sum(p.label for p in build_pairs(corpus)[0]) == 0


def test_unknown_level():
    with pytest.raises(UserError, match=r"unknown pair level 'token'; use one of \['post'"):
        build_pairs(_corpus([], []), level="token")
