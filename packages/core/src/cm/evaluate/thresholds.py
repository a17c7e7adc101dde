"""Decision thresholds tuned on validation: one per criterion, one shared, or a fixed number.

The decision unit is a (post, criterion) cell (at sentence level: any sentence of the post),
and the quantity tuned is each criterion's F1 over posts, whose mean over the criteria is
the headline 9-criterion macro-F1. Per criterion, a criterion whose validation split holds
few positives gets a threshold shrunk toward the shared one:

    t_c = w * own_c + (1 - w) * shared,   w = n_pos_c / (n_pos_c + PRIOR_POSITIVES)

so four positives (ReDSM5 val has 4 of A.3 and A.5) move the threshold only part of the way
toward what fits those four, and a criterion with none gets the shared one
(benchmarks/threshold_fallback.py measures k; docs/research.md has the result).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from cm.evaluate.metrics import checked, natural_sorted

PRIOR_POSITIVES = 10  # pseudo-positives pulling a criterion's threshold toward the shared one


def _candidates(p: np.ndarray) -> np.ndarray:
    """The lowest probability (everything a match), the midpoints between consecutive
    distinct probabilities, and 0.5."""
    distinct = np.unique(p)
    lower, upper = distinct[:-1], distinct[1:]
    middle = lower + (upper - lower) / 2
    middle = np.where(middle > lower, middle, upper)  # adjacent floats: no midpoint between
    return np.unique(np.concatenate([distinct[:1], middle, [0.5]]))


def _f1_at(y: np.ndarray, p: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Positive-class F1 at every candidate threshold (prob >= t predicts a match)."""
    pos, neg = np.sort(p[y == 1]), np.sort(p[y == 0])
    tp = len(pos) - np.searchsorted(pos, candidates, side="left")
    fp = len(neg) - np.searchsorted(neg, candidates, side="left")
    fn = len(pos) - tp
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros(len(candidates)), where=den > 0)


def _best(candidates: np.ndarray, scores: np.ndarray) -> float:
    """The best-scoring candidate; ties go to the one closest to 0.5, then the lower."""
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    order = np.lexsort((candidates[best], np.abs(candidates[best] - 0.5)))
    return float(candidates[best[order[0]]])


def f1_threshold(labels: Any, probs: Any) -> float:
    """The threshold that maximises the positive class's F1 on the data given (validation)."""
    y, p = checked(labels, probs)
    candidates = _candidates(p)
    return _best(candidates, _f1_at(y, p, candidates))


def shared_threshold(criterion_ids: Sequence[Hashable], labels: Any, probs: Any) -> float:
    """One threshold for every criterion, maximising the mean of the criteria's F1."""
    y, p = checked(labels, probs)
    ids = np.asarray([str(c) for c in criterion_ids], dtype=object)
    candidates = _candidates(p)
    scores = np.mean([_f1_at(y[ids == c], p[ids == c], candidates) for c in set(ids)], axis=0)
    return _best(candidates, scores)


def tune_thresholds(mode: str | float, criterion_ids: Sequence[Hashable], labels: Any,
                    probs: Any, prior: float = PRIOR_POSITIVES) -> dict[str, float]:
    """Criterion id -> threshold, from validation cells, for ``eval.thresholds``:
    ``"per_criterion"`` (own F1 optimum shrunk toward the shared threshold by the criterion's
    positive count, ``prior`` pseudo-positives on the shared side; no positives: the shared
    one), ``"global"`` (the shared threshold) or a number (fixed, nothing tuned)."""
    y, p = checked(labels, probs)
    ids = np.asarray([str(c) for c in criterion_ids], dtype=object)
    names = natural_sorted(set(ids))
    if not isinstance(mode, str):
        return dict.fromkeys(names, float(mode))
    shared = shared_threshold(ids, y, p)
    if mode == "global":
        return dict.fromkeys(names, shared)
    if mode != "per_criterion":
        raise ValueError(f"thresholds must be 'per_criterion', 'global' or a number: {mode!r}")
    out = {}
    for name in names:
        mask = ids == name
        positives = int(y[mask].sum())
        if not positives:
            out[name] = shared
            continue
        weight = positives / (positives + prior)
        out[name] = weight * f1_threshold(y[mask], p[mask]) + (1 - weight) * shared
    return out
