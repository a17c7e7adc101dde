"""Thresholds, ECE, bootstrap intervals and evidence hit@k: values checked on
data built so the answer is known, and the invariants as property tests."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cm.evaluate import bootstrap, calibration, evidence, thresholds
from cm.evaluate.decisions import Decision
from cm.evaluate.metrics import per_criterion, post_level


def _two_criteria(rng, n=400):
    """A.1's matches score around 0.3 (negatives 0.1), A.2's around 0.9 (negatives 0.7):
    no one threshold separates both, each criterion's own does."""
    ids, labels, probs = [], [], []
    for cid, (neg, pos) in {"A.1": (0.1, 0.3), "A.2": (0.7, 0.9)}.items():
        y = rng.random(n) < 0.3
        p = np.where(y, pos, neg) + rng.uniform(-0.05, 0.05, n)
        ids += [cid] * n
        labels += y.astype(int).tolist()
        probs += p.tolist()
    return ids, np.array(labels), np.array(probs)


def test_per_criterion_thresholds_differ_where_the_data_needs_it():
    ids, labels, probs = _two_criteria(np.random.default_rng(0))
    tuned = thresholds.tune_thresholds("per_criterion", ids, labels, probs)
    assert 0.15 < tuned["A.1"] < 0.25 and 0.75 < tuned["A.2"] < 0.85
    per = per_criterion(ids, labels, probs, 0.5)
    decided = probs >= Decision({}, tuned).cuts(ids)  # how a run decides at its thresholds
    assert per["A.1"]["f1"] == 0.0  # 0.5 misses every A.1 match
    for cid in ("A.1", "A.2"):
        mask = np.array(ids) == cid
        assert (decided[mask] == labels[mask]).all()  # own threshold: perfect
    shared = thresholds.tune_thresholds("global", ids, labels, probs)
    assert shared["A.1"] == shared["A.2"]
    assert thresholds.tune_thresholds(0.4, ids, labels, probs) == {"A.1": 0.4, "A.2": 0.4}


def test_few_positives_shrink_toward_the_shared_threshold():
    ids, labels, probs = _two_criteria(np.random.default_rng(1))
    ids = ids + ["A.3"] * 20
    labels = np.append(labels, [1, 1] + [0] * 18)
    probs = np.append(probs, [0.97, 0.99] + [0.9] * 18)
    tuned = thresholds.tune_thresholds("per_criterion", ids, labels, probs)
    shared = thresholds.shared_threshold(ids, labels, probs)
    own = thresholds.f1_threshold(labels[-20:], probs[-20:])
    assert own == pytest.approx(0.935)
    assert tuned["A.3"] == pytest.approx((2 * own + 10 * shared) / 12)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0, 1)), min_size=2, max_size=60))
def test_f1_threshold_is_optimal_among_all_cuts(rows):
    labels = np.array([int(y) for y, _ in rows])
    probs = np.array([p for _, p in rows])
    best = thresholds.f1_threshold(labels, probs)
    f1 = per_criterion(["A.1"] * len(rows), labels, probs, best)["A.1"]["f1"]
    for cut in np.append(probs, [0.0, 1.1]):
        assert per_criterion(["A.1"] * len(rows), labels, probs, cut)["A.1"]["f1"] <= f1 + 1e-12


def test_ece_by_hand():
    # bins of width 1/15: 0.1 and 0.12 share bin 1 (mean 0.11, 1 match of 2 -> gap 0.39),
    # 0.95 is in bin 14 (0 matches -> gap 0.95)
    assert calibration.ece([1, 0, 0], [0.1, 0.12, 0.95]) == pytest.approx((0.39 * 2 + 0.95) / 3)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0, 1)), min_size=1, max_size=50))
def test_ece_bounds(rows):
    labels = [int(y) for y, _ in rows]
    probs = [p for _, p in rows]
    value = calibration.ece(labels, probs)
    assert 0.0 <= value <= 1.0
    assert value <= np.mean(np.abs(np.array(probs) - np.array(labels))) + 1e-12  # binning
    # never exceeds the per-example gap


def _cells(rng, n_posts=40, criteria=("A.1", "A.2", "A.3")):
    posts = [f"p{i}" for i in range(n_posts) for _ in criteria]
    ids = list(criteria) * n_posts
    labels = rng.integers(0, 2, len(ids))
    probs = rng.random(len(ids))
    return posts, ids, labels, probs


def test_bootstrap_point_values_match_the_metrics():
    posts, ids, labels, probs = _cells(np.random.default_rng(4))
    cells = bootstrap.cells(posts, ids, labels, (probs >= 0.5).astype(int))
    got = bootstrap.intervals(lambda w: {**bootstrap.post_scores(cells, w),
                                         **bootstrap.pair_scores(cells, w)}, 40, seed=0)
    want = post_level(posts, ids, labels, probs, 0.5, ["A.1", "A.2", "A.3"])
    assert got["post_macro_f1"]["value"] == pytest.approx(want["macro_f1"])
    assert got["post_micro_f1"]["value"] == pytest.approx(want["micro_f1"])
    for cid, row in per_criterion(ids, labels, probs, 0.5).items():
        assert got[f"{cid}/f1"]["value"] == pytest.approx(row["f1"])
    from cm.evaluate.metrics import pair_metrics
    assert got["macro_f1"]["value"] == pytest.approx(pair_metrics(labels, probs)["macro_f1"])
    for row in got.values():
        assert row["low"] <= row["value"] <= row["high"]
    again = bootstrap.intervals(lambda w: bootstrap.post_scores(cells, w), 40, seed=0)
    assert again["post_macro_f1"] == got["post_macro_f1"]  # seeded


@settings(max_examples=3, deadline=None)
@given(tp=st.floats(0.1, 0.4), fp=st.floats(0.05, 0.3), fn=st.floats(0.05, 0.3),
       seed=st.integers(0, 2**16))
def test_bootstrap_interval_covers_the_true_f1_at_about_95_percent(tp, fp, fn, seed):
    """Posts are one cell each with known outcome probabilities, so the population F1 is
    2tp / (2tp + fp + fn); 300 samples of 200 posts: the interval should hold it ~95% of the
    time (a binomial 95% band for 300 tries is about 0.92-0.975)."""
    rng = np.random.default_rng(seed)
    truth = 2 * tp / (2 * tp + fp + fn)
    outcome_p = [tp, fp, fn, 1 - tp - fp - fn]
    covered = 0
    for rep in range(300):
        outcome = rng.choice(4, size=200, p=outcome_p)
        grid = [(outcome == k).astype(np.int64)[:, None] for k in range(4)]
        cells = bootstrap.Cells(tuple(map(str, range(200))), ("A.1",), *grid)
        row = bootstrap.intervals(lambda w, c=cells: bootstrap.post_scores(c, w), 200,
                                  seed=rep)["A.1/f1"]
        covered += row["low"] <= truth <= row["high"]
    assert 0.90 <= covered / 300 <= 0.985


def test_paired_difference_with_itself_is_zero_and_of_a_better_run_positive():
    posts, ids, labels, probs = _cells(np.random.default_rng(5), n_posts=60)
    noisy = bootstrap.cells(posts, ids, labels, (probs >= 0.5).astype(int))
    right = bootstrap.cells(posts, ids, labels, labels)
    stat = lambda c: (lambda w: bootstrap.post_scores(c, w))  # noqa: E731
    same = bootstrap.pooled_intervals([bootstrap.difference(stat(noisy), stat(noisy))], 60,
                                      seed=1)
    assert all(row == {"mean": 0.0, "low": 0.0, "high": 0.0} for row in same.values())
    better = bootstrap.pooled_intervals([bootstrap.difference(stat(right), stat(noisy))], 60,
                                        seed=1)
    assert better["post_macro_f1"]["low"] > 0


def test_evidence_hits_and_baselines():
    # three cells whose annotated sentence is known; the model ranks it first in two
    gold = [{0}, {2}, {1}]
    model = [[0, 1, 2], [2, 0, 1], [0, 2, 1]]
    overlap = [[1, 0, 2], [0, 1, 2], [1, 0, 2]]
    got = evidence.evidence_metrics(model, overlap, [3, 3, 3], gold)
    assert got["evidence_hit_at_1"] == pytest.approx(2 / 3)
    assert got["evidence_hit_at_3"] == 1.0
    assert got["evidence_overlap_hit_at_1"] == pytest.approx(1 / 3)
    assert got["evidence_random_hit_at_1"] == pytest.approx(1 / 3)
    assert got["evidence_random_hit_at_3"] == 1.0
    assert evidence.random_hit_at([10], [{3, 4}], 3) == pytest.approx(1 - 56 / 120)


def test_overlap_scores_and_ranking():
    sentences = ["The weather was nice.", "I sleep far too little every night.", "Sleep."]
    scores = evidence.overlap_scores(sentences, "Sleeps far too little or far too much")
    assert scores == [0, 3, 0]  # 'far', 'too', 'little' (sleep != sleeps, stop words out)
    assert evidence.ranking(scores) == [1, 0, 2]
    assert evidence.ranking([0.2, 0.9, 0.9]) == [1, 2, 0]


def test_decisions_at_sentence_level_use_the_post_view():
    from cm.evaluate.decisions import Decision, Pairs, intervals, scores

    # two posts x one criterion, sentences: p1 has a matching second sentence
    split = Pairs.of(["p1", "p1", "p2", "p2"], ["A.1"] * 4, [0, 1, 0, 0], [0.2, 0.8, 0.3, 0.1])
    cells = split.cells()
    assert list(cells.post_ids) == ["p1", "p2"] and list(cells.labels) == [1, 0]
    assert list(cells.probs) == [0.8, 0.3]
    decision = Decision.identity({"A.1": 0.5})
    got = scores(split, decision, ["A.1"])
    assert got["post_macro_f1"] == 1.0 and got["A.1/f1"] == 1.0 and got["f1"] == 1.0
    assert got["A.1/threshold"] == 0.5
    ci = intervals(split, decision, seed=0, resamples=200)
    assert ci["post_macro_f1_low"] <= 1.0 <= ci["post_macro_f1_high"]


def test_fit_calibrates_then_tunes_on_the_calibrated_cells():
    from cm.evaluate.decisions import Pairs, fit

    ids, labels, probs = _two_criteria(np.random.default_rng(6))
    over = 1 / (1 + np.exp(-4 * np.log(probs / (1 - probs))))
    decision = fit("per_criterion", "platt", Pairs.of(range(len(ids)), ids, labels, over))
    assert decision.calibrator.kept == "platt"
    assert decision.calibrator.slopes["A.1"] == decision.calibrator.slopes["A.2"] < 1
    calibrated = decision.calibrate(ids, over)
    made = calibrated >= decision.cuts(ids)
    assert (made == labels.astype(bool)).all()
