"""Cross-validation folds: a partition of the train+val posts, stratified by label pattern,
stable by content hash, test untouched; each fold's run sees its fold as val."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from cm.data.prepare import post_splits
from cm.data.records import Corpus, Criterion, Post
from cm.data.splits import fold_posts, split_posts

CRITERIA = ("A.1", "A.2", "A.3")


@st.composite
def posts(draw):
    ids = draw(st.lists(st.text("abcdef0123456789_", min_size=1, max_size=8), min_size=1,
                        max_size=120, unique=True))
    patterns = st.frozensets(st.sampled_from(CRITERIA), max_size=2)
    return {pid: draw(patterns) for pid in ids}


@given(posts(), st.integers(2, 7), st.integers(0, 10_000), st.randoms(use_true_random=False))
@settings(max_examples=150, deadline=None)
def test_folds_partition_train_and_val_posts_stratified_and_stable(positives, k, seed, rng):
    split_of = split_posts(list(positives), positives, (0.6, 0.2, 0.2), seed)
    fold_of = fold_posts(split_of, positives, k, seed)
    assert set(fold_of) == {pid for pid, split in split_of.items() if split != "test"}
    assert set(fold_of.values()) <= set(range(1, k + 1))
    sizes = Counter(fold_of.values())
    assert max(sizes.values()) - min(sizes.get(f, 0) for f in range(1, k + 1)) <= 1
    for pattern in set(positives.values()):
        per_fold = Counter(f for pid, f in fold_of.items() if positives[pid] == pattern)
        counts = [per_fold.get(f, 0) for f in range(1, k + 1)]
        assert max(counts) - min(counts) <= 1  # each label pattern spread evenly
    shuffled = list(split_of.items())
    rng.shuffle(shuffled)
    assert fold_posts(dict(shuffled), positives, k, seed) == fold_of  # order of input: none


@given(posts(), st.integers(2, 5), st.integers(0, 10_000))
@settings(max_examples=100, deadline=None)
def test_each_fold_run_validates_on_its_fold_and_never_moves_test(positives, k, seed):
    corpus = Corpus(tuple(Post(pid, "text") for pid in positives), (),
                    tuple(Criterion(c, c) for c in CRITERIA))
    plain = SimpleNamespace(split=(0.6, 0.2, 0.2), split_seed=None, fold=None, folds=None)
    base = post_splits(plain, corpus, seed)
    val_of = {}
    for fold in range(1, k + 1):
        data = SimpleNamespace(split=plain.split, split_seed=None, fold=fold, folds=k)
        split_of = post_splits(data, corpus, seed)
        assert {p for p, s in split_of.items() if s == "test"} == \
            {p for p, s in base.items() if s == "test"}
        for pid, split in split_of.items():
            if split == "val":
                assert pid not in val_of  # no post validated by two folds
                val_of[pid] = fold
    assert set(val_of) == {p for p, s in base.items() if s != "test"}
