"""Metrics for (post, criterion) pairs, per criterion and per post, as plain JSON-ready values.

Numbers in, ``float``/``int``/``dict`` out, so results go straight into metrics.json, trackers
and hooks. A pair is predicted a match when ``prob >= threshold`` (one threshold, or one per
pair for per-criterion thresholds). Thresholded scores are
counted with numpy (the tests check them against scikit-learn) and use zero_division=0: a ratio
with an empty denominator is 0, never NaN, so the JSON stays valid. Pair-level macro/weighted
F1 always average over both classes (no_match, match), as ``classification_report`` does.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import Any, NamedTuple

import numpy as np

AGGREGATIONS = ("max", "mean")


def checked(labels: Any, probs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate one set of pairs early: silent broadcasting or NaN would give wrong metrics."""
    y = np.asarray(labels)
    p = np.asarray(probs, dtype=float)
    if y.ndim != 1 or p.ndim != 1 or len(y) != len(p):
        raise ValueError(f"labels and probs must be 1-D and equal length, got {y.shape} {p.shape}")
    if len(y) == 0:
        raise ValueError("no pairs to score")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0/1, got values {sorted(set(y.tolist()))[:5]}")
    if not np.isfinite(p).all():
        raise ValueError("probs contain NaN or infinity")
    return y.astype(np.int64), p


def _ratio(num: Any, den: Any) -> Any:
    """num / den with 0 where den == 0 (scikit-learn's zero_division=0); works on arrays."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    out = np.divide(num, den, out=np.zeros_like(den), where=den != 0)
    return out if out.ndim else float(out)


def _counts(y: np.ndarray, pred: np.ndarray, axis: int | None = None) -> tuple[Any, ...]:
    tp = np.sum((y == 1) & (pred == 1), axis=axis)
    fp = np.sum((y == 0) & (pred == 1), axis=axis)
    fn = np.sum((y == 1) & (pred == 0), axis=axis)
    return tp, fp, fn


def _prf(tp: Any, fp: Any, fn: Any) -> tuple[Any, Any, Any]:
    return _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)


def _decisions(p: np.ndarray, threshold: Any) -> np.ndarray:
    """0/1 per pair: ``threshold`` is one number or one per pair (per-criterion thresholds)."""
    cut = np.asarray(threshold, dtype=float)
    if cut.ndim and cut.shape != p.shape:
        raise ValueError(f"{cut.shape[0]} thresholds for {len(p)} pairs")
    return (p >= cut).astype(np.int64)


def pair_metrics(labels: Any, probs: Any, threshold: Any = 0.5) -> dict[str, float]:
    """Pair-level scores at ``threshold`` plus the threshold-free ROC-AUC and PR-AUC.

    ``roc_auc`` and ``pr_auc`` (average precision) are undefined when the labels hold one class
    only; the keys are then left out (rather than NaN, which JSON cannot carry).
    """
    y, p = checked(labels, probs)
    pred = _decisions(p, threshold)
    tp, fp, fn = (int(c) for c in _counts(y, pred))
    n, positives = len(y), int(y.sum())
    tn = n - tp - fp - fn
    precision, recall, f1 = _prf(tp, fp, fn)
    f1_negative = _ratio(2 * tn, 2 * tn + fn + fp)
    out = {
        "accuracy": (tp + tn) / n,
        "macro_f1": (f1 + f1_negative) / 2,
        "weighted_f1": (f1 * positives + f1_negative * (n - positives)) / n,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "positives": positives,
        "n": n,
    }  # fmt: skip
    if 0 < positives < n:
        from sklearn.metrics import average_precision_score, roc_auc_score  # slow import

        out["roc_auc"] = float(roc_auc_score(y, p))
        out["pr_auc"] = float(average_precision_score(y, p))
    return out


def _natural_key(value: Hashable) -> list[Any]:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(value))]


def natural_sorted(values) -> list:
    """Sorted so that "A.2" comes before "A.10" (plain string order would not)."""
    return sorted(values, key=_natural_key)


def per_criterion(
    criterion_ids: Sequence[Hashable], labels: Any, probs: Any, threshold: Any
) -> dict[str, dict[str, float]]:
    """Precision/recall/F1 of the match class, positives (support) and pairs, per criterion."""
    y, p = checked(labels, probs)
    ids = np.asarray([str(c) for c in criterion_ids], dtype=object)
    if len(ids) != len(y):
        raise ValueError(f"{len(ids)} criterion ids for {len(y)} pairs")
    pred = _decisions(p, threshold)
    out = {}
    for cid in natural_sorted(set(ids)):
        mask = ids == cid
        precision, recall, f1 = _prf(*_counts(y[mask], pred[mask]))
        out[cid] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": int(y[mask].sum()),
            "n": int(mask.sum()),
        }
    return out


def post_level(
    post_ids: Sequence[Hashable],
    criterion_ids: Sequence[Hashable],
    labels: Any,
    probs: Any,
    threshold: Any,
    criteria: Sequence[str],
) -> dict[str, float]:
    """Multi-label scores over posts: each post's vector over ``criteria`` from its pairs.

    Definitions follow scikit-learn's multilabel ``f1_score`` with zero_division=0: micro pools
    all (post, criterion) cells, macro averages the criteria, samples averages the posts (a post
    with no true and no predicted criterion scores 0). Every post must carry each criterion
    exactly once, otherwise the vectors would be silently wrong.
    """
    y, p = checked(labels, probs)
    if not len(post_ids) == len(criterion_ids) == len(y):
        sizes = f"{len(post_ids)} post ids, {len(criterion_ids)} criterion ids, {len(y)} pairs"
        raise ValueError(f"lengths differ: {sizes}")
    column = {str(c): j for j, c in enumerate(criteria)}
    if len(column) != len(criteria):
        raise ValueError(f"criteria contain duplicates: {list(criteria)}")
    row: dict[Hashable, int] = {}
    for post in post_ids:
        row.setdefault(post, len(row))
    true = np.zeros((len(row), len(column)), dtype=np.int64)
    pred = np.zeros_like(true)
    seen = np.zeros(true.shape, dtype=bool)
    decided = _decisions(p, threshold)
    for post, cid, label, match in zip(post_ids, criterion_ids, y, decided, strict=True):
        if str(cid) not in column:
            raise ValueError(f"post {post!r}: criterion {cid!r} is not one of {list(column)}")
        i, j = row[post], column[str(cid)]
        if seen[i, j]:
            raise ValueError(f"post {post!r} has criterion {cid!r} more than once")
        seen[i, j] = True
        true[i, j], pred[i, j] = label, match
    for post, i in row.items():
        if not seen[i].all():
            missing = [c for c, j in column.items() if not seen[i, j]]
            raise ValueError(f"post {post!r} is missing criteria {missing}")
    tp, fp, fn = _counts(true, pred, axis=0)
    sample_f1 = _prf(*_counts(true, pred, axis=1))[2]
    return {
        "micro_f1": _prf(int(tp.sum()), int(fp.sum()), int(fn.sum()))[2],
        "macro_f1": float(np.mean(_prf(tp, fp, fn)[2])),
        "samples_f1": float(np.mean(sample_f1)),
        "exact_match": float(np.mean((true == pred).all(axis=1))),
        "n_posts": len(row),
    }


class Aggregated(NamedTuple):
    """One score per pair from its windows; ``evidence`` is the argmax window within the pair."""

    pair_index: list[Hashable]
    scores: np.ndarray
    evidence: np.ndarray


def aggregate_windows(pair_index: Sequence[Hashable], logits: Any, how: str = "max") -> Aggregated:
    """Combine the window scores of each pair (long posts are split into windows) into one.

    Pairs keep the order of their first window. ``evidence`` is the position, among the pair's
    own windows in input order, of its highest-scoring window (the first on ties): with "max" it
    is exactly the window that decided, so predictions can show it; with "mean" it is the
    strongest window. Pass one score per window (the match logit or P(match)).
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"how must be one of {AGGREGATIONS}, got {how!r}")
    scores = np.asarray(logits, dtype=float)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim != 1 or len(scores) != len(pair_index):
        raise ValueError(f"need one score per window: {len(pair_index)} windows, {scores.shape}")
    first: dict[Hashable, int] = {}
    group = np.asarray([first.setdefault(k, len(first)) for k in pair_index], dtype=np.int64)
    n = len(first)
    order = np.argsort(group, kind="stable")  # windows of a pair together, in input order
    starts = np.searchsorted(group[order], np.arange(n))
    position = np.empty(len(group), dtype=np.int64)
    position[order] = np.arange(len(group)) - starts[group[order]]
    best = np.lexsort((position, -scores, group))  # per pair: highest score, earliest window
    leaders = best[np.searchsorted(group[best], np.arange(n))]
    if how == "max":
        combined = scores[leaders]
    else:
        combined = np.bincount(group, weights=scores, minlength=n) / np.bincount(group, minlength=n)
    return Aggregated(list(first), combined, position[leaders])
