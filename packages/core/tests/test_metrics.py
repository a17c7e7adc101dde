"""Evaluation metrics: hand-computed cases, scikit-learn as the oracle on random inputs, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from cm.evaluate.metrics import (
    aggregate_windows,
    pair_metrics,
    per_criterion,
    post_level,
)

CRITERIA = [f"A.{i}" for i in range(1, 10)]
TOL = 1e-9

# Probabilities from a coarse grid as well as any float, so ties and threshold hits happen.
probability = st.one_of(
    st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]), st.floats(0, 1, allow_nan=False)
)
pairs = st.lists(st.tuples(st.integers(0, 1), probability), min_size=1, max_size=80)


def split(data):
    labels, probs = zip(*data, strict=True)
    return np.array(labels), np.array(probs)


def test_pair_metrics_by_hand():
    labels = [1, 1, 1, 0, 0, 0, 0, 0]
    probs = [0.9, 0.6, 0.2, 0.7, 0.4, 0.3, 0.1, 0.5]
    m = pair_metrics(labels, probs)  # preds: 1 1 0 1 0 0 0 1
    assert (m["tp"], m["fp"], m["tn"], m["fn"], m["positives"], m["n"]) == (2, 2, 3, 1, 3, 8)
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(4 / 7)
    assert m["macro_f1"] == pytest.approx((4 / 7 + 2 / 3) / 2)
    assert m["weighted_f1"] == pytest.approx((3 * 4 / 7 + 5 * 2 / 3) / 8)
    # 15 positive-negative pairs, 10 ranked right: 0.9 beats 5, 0.6 beats 4, 0.2 beats 1.
    assert m["roc_auc"] == pytest.approx(10 / 15)
    # Ranked: P N P N N N P N -> precision 1/1, 2/3, 3/7 at the three positives.
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3 + 3 / 7) / 3)


def test_threshold_is_inclusive():
    m = pair_metrics([1, 0], [0.5, 0.49], threshold=0.5)
    assert (m["tp"], m["tn"]) == (1, 1)


def test_single_class_omits_auc_and_stays_valid_json():
    m = pair_metrics([0, 0, 0], [0.1, 0.7, 0.2])
    assert "roc_auc" not in m and "pr_auc" not in m
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx((0 + 4 / 5) / 2)  # over both classes, zero_division=0
    json.dumps(m, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(pairs, st.floats(0, 1, allow_nan=False))
def test_pair_metrics_match_sklearn(data, threshold):
    y, p = split(data)
    pred = (p >= threshold).astype(int)
    m = pair_metrics(y, p, threshold)
    opts = {"zero_division": 0}
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "macro_f1": skm.f1_score(y, pred, labels=[0, 1], average="macro", **opts),
        "weighted_f1": skm.f1_score(y, pred, labels=[0, 1], average="weighted", **opts),
        "precision": skm.precision_score(y, pred, labels=[0, 1], **opts),
        "recall": skm.recall_score(y, pred, labels=[0, 1], **opts),
        "f1": skm.f1_score(y, pred, labels=[0, 1], **opts),
    }
    for key, value in expected.items():
        assert abs(m[key] - value) <= TOL, key
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (tp, fp, tn, fn)
    assert m["positives"] == y.sum() and m["n"] == len(y)
    if len(set(y.tolist()) | set(pred.tolist())) == 2:  # then sklearn's default agrees too
        assert abs(m["macro_f1"] - skm.f1_score(y, pred, average="macro", **opts)) <= TOL
    if 0 < y.sum() < len(y):
        assert abs(m["roc_auc"] - skm.roc_auc_score(y, p)) <= TOL
        assert abs(m["pr_auc"] - skm.average_precision_score(y, p)) <= TOL
    else:
        assert "roc_auc" not in m and "pr_auc" not in m
    assert all(type(v) in (int, float) for v in m.values())
    json.dumps(m, allow_nan=False)


@pytest.mark.parametrize(
    ("labels", "probs", "message"),
    [
        ([0, 1], [0.5], "equal length"),
        ([], [], "no pairs"),
        ([0, 2], [0.1, 0.2], "0/1"),
        ([0, 1], [0.1, float("nan")], "NaN"),
    ],
)
def test_pair_metrics_rejects_bad_input(labels, probs, message):
    with pytest.raises(ValueError, match=message):
        pair_metrics(labels, probs)


def test_per_criterion_counts_and_order():
    ids = ["A.10", "A.2", "A.2", "A.1", "A.2", "A.10"]
    labels = [1, 1, 0, 0, 1, 0]
    probs = [0.9, 0.8, 0.7, 0.1, 0.2, 0.6]
    result = per_criterion(ids, labels, probs, 0.5)
    assert list(result) == ["A.1", "A.2", "A.10"]  # natural order, not string order
    assert result["A.2"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "n": 3}
    assert result["A.1"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "n": 1}
    assert result["A.10"]["precision"] == 0.5 and result["A.10"]["recall"] == 1.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(CRITERIA), st.integers(0, 1), probability), min_size=1))
def test_per_criterion_matches_sklearn(data):
    ids, labels, probs = (np.array(column) for column in zip(*data, strict=True))
    result = per_criterion(ids, labels, probs, 0.5)
    assert list(result) == sorted(set(ids), key=lambda c: int(c[2:]))
    for cid, row in result.items():
        y, pred = labels[ids == cid], (probs[ids == cid] >= 0.5).astype(int)
        p, r, f, _ = skm.precision_recall_fscore_support(
            y, pred, labels=[1], average=None, zero_division=0
        )
        assert abs(row["precision"] - p[0]) <= TOL and abs(row["recall"] - r[0]) <= TOL
        assert abs(row["f1"] - f[0]) <= TOL
        assert (row["support"], row["n"]) == (y.sum(), len(y))


def pairs_of(true, scores, rng):
    """Long-format, shuffled (post, criterion) pairs from a posts x criteria matrix."""
    rows = [
        (f"p{i}", CRITERIA[j], true[i, j], scores[i, j])
        for i in range(true.shape[0])
        for j in range(true.shape[1])
    ]
    rows = [rows[k] for k in rng.permutation(len(rows))]
    return [list(column) for column in zip(*rows, strict=True)]


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_post_level_matches_sklearn_multilabel(n_posts, seed):
    rng = np.random.default_rng(seed)
    true = (rng.random((n_posts, 9)) < 0.25).astype(int)
    scores = rng.random((n_posts, 9)) * 0.6 + true * 0.3
    posts, ids, labels, probs = pairs_of(true, scores, rng)
    result = post_level(posts, ids, labels, probs, 0.5, CRITERIA)
    pred = (scores >= 0.5).astype(int)
    for average in ("micro", "macro", "samples"):
        expected = skm.f1_score(true, pred, average=average, zero_division=0)
        assert abs(result[f"{average}_f1"] - expected) <= TOL, average
    assert abs(result["exact_match"] - skm.accuracy_score(true, pred)) <= TOL
    assert result["n_posts"] == n_posts


def test_post_level_by_hand():
    posts = ["a", "a", "b", "b"]
    ids = ["A.1", "A.2", "A.2", "A.1"]
    result = post_level(posts, ids, [1, 0, 1, 0], [0.9, 0.1, 0.2, 0.1], 0.5, ["A.1", "A.2"])
    # a: true [1,0] pred [1,0]; b: true [0,1] pred [0,0]
    assert result == {
        "micro_f1": pytest.approx(2 / 3),
        "macro_f1": pytest.approx(0.5),
        "samples_f1": pytest.approx(0.5),
        "exact_match": 0.5,
        "n_posts": 2,
    }


def test_post_level_rejects_incomplete_or_duplicated_posts():
    criteria = ["A.1", "A.2"]
    with pytest.raises(ValueError, match=r"post 'b' is missing criteria \['A.2'\]"):
        post_level(["a", "a", "b"], ["A.1", "A.2", "A.1"], [0, 0, 0], [0.1] * 3, 0.5, criteria)
    with pytest.raises(ValueError, match="post 'a' has criterion 'A.1' more than once"):
        post_level(["a", "a", "a"], ["A.1", "A.2", "A.1"], [0, 0, 0], [0.1] * 3, 0.5, criteria)
    with pytest.raises(ValueError, match="post 'a': criterion 'A.9' is not one of"):
        post_level(["a", "a"], ["A.1", "A.9"], [0, 0], [0.1] * 2, 0.5, criteria)


def test_aggregate_windows_max_and_mean():
    index = [7, 3, 7, 7, 3, 5]
    scores = [0.2, -1.0, 0.9, 0.4, 2.0, 0.3]
    pairs_, combined, evidence = aggregate_windows(index, scores, "max")
    assert pairs_ == [7, 3, 5]  # order of first appearance
    np.testing.assert_allclose(combined, [0.9, 2.0, 0.3])
    np.testing.assert_array_equal(evidence, [1, 1, 0])  # second window of 7 and of 3
    result = aggregate_windows(index, scores, "mean")
    np.testing.assert_allclose(result.scores, [0.5, 0.5, 0.3])
    assert result.pair_index == [7, 3, 5]


def test_aggregate_windows_ties_pick_first_window_and_bad_input_fails():
    result = aggregate_windows([("p", "A.1")] * 3, [[0.5], [0.7], [0.7]], "max")
    assert result.pair_index == [("p", "A.1")] and result.evidence.tolist() == [1]
    with pytest.raises(ValueError, match="how must be one of"):
        aggregate_windows([1], [0.1], "median")
    with pytest.raises(ValueError, match="one score per window"):
        aggregate_windows([1, 2], [0.1], "max")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(-5, 5)), min_size=1, max_size=40))
def test_aggregate_windows_matches_a_plain_loop(data):
    index, scores = zip(*data, strict=True)
    windows: dict[int, list[float]] = {}
    for key, score in data:
        windows.setdefault(key, []).append(float(score))
    top = aggregate_windows(list(index), list(scores), "max")
    mean = aggregate_windows(list(index), list(scores), "mean")
    assert top.pair_index == mean.pair_index == list(windows)
    assert top.scores.tolist() == [max(w) for w in windows.values()]
    assert top.evidence.tolist() == [w.index(max(w)) for w in windows.values()]
    np.testing.assert_allclose(mean.scores, [np.mean(w) for w in windows.values()], rtol=1e-12)
