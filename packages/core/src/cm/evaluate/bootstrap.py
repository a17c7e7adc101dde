"""Bootstrap over posts: 95% intervals for the headline scores, and paired differences.

The unit resampled is the post (its cells stay together, as the test split was drawn by
post). Each resample draws n posts with replacement (seeded); every score is recomputed from
the resampled confusion counts, so a resample costs one matrix product. Intervals are the
2.5th and 97.5th percentiles. A pooled interval scores several statistics (models of
several seeds or folds, or paired differences ``difference(a, b)``, which resample the same
posts for both runs) on the same resampled posts and takes the percentiles of all their
values together: it covers the spread between them as well as the test sample's.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import attrs
import numpy as np

from cm.evaluate.metrics import natural_sorted

RESAMPLES = 1000
LEVEL = 0.95


@attrs.frozen
class Cells:
    """Confusion counts per post (rows, sorted ids) and criterion (columns)."""

    posts: tuple[str, ...]
    criteria: tuple[str, ...]
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray


def cells(post_ids: Sequence[Hashable], criterion_ids: Sequence[Hashable], labels: Any,
          decisions: Any) -> Cells:
    """Count each (post, criterion)'s pairs by outcome (sentence level: several pairs)."""
    posts = tuple(sorted({str(p) for p in post_ids}))
    criteria = tuple(natural_sorted({str(c) for c in criterion_ids}))
    row = {p: i for i, p in enumerate(posts)}
    col = {c: j for j, c in enumerate(criteria)}
    y = np.asarray(labels, dtype=np.int64)
    d = np.asarray(decisions, dtype=np.int64)
    index = (np.asarray([row[str(p)] for p in post_ids], dtype=np.int64),
             np.asarray([col[str(c)] for c in criterion_ids], dtype=np.int64))
    counts = []
    for want_y, want_d in ((1, 1), (0, 1), (1, 0), (0, 0)):
        grid = np.zeros((len(posts), len(criteria)), dtype=np.int64)
        np.add.at(grid, index, (y == want_y) & (d == want_d))
        counts.append(grid)
    return Cells(posts, criteria, *counts)


def _f1(tp, fp, fn):
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros(np.shape(den)), where=den > 0)


def post_scores(c: Cells, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Per weight row (posts' multiplicities): the 9-criterion macro-F1, micro-F1 and each
    criterion's F1, as ``metrics.post_level`` / ``metrics.per_criterion`` define them."""
    tp, fp, fn = (weights @ m for m in (c.tp, c.fp, c.fn))
    f1 = _f1(tp, fp, fn)
    out = {"post_macro_f1": f1.mean(axis=1),
           "post_micro_f1": _f1(tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1))}
    out.update({f"{cid}/f1": f1[:, j] for j, cid in enumerate(c.criteria)})
    return out


def pair_scores(c: Cells, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Per weight row: the pair-level two-class macro-F1 and the match class's F1."""
    tp, fp, fn, tn = ((weights @ m).sum(axis=1) for m in (c.tp, c.fp, c.fn, c.tn))
    f1 = _f1(tp, fp, fn)
    return {"macro_f1": (f1 + _f1(tn, fn, fp)) / 2, "f1": f1}


Statistic = Callable[[np.ndarray], dict[str, np.ndarray]]  # weights (B, n posts) -> scores


def resample_weights(n_posts: int, seed: int, resamples: int = RESAMPLES) -> np.ndarray:
    """(resamples, n_posts): how often each post is drawn in each resample."""
    if n_posts < 1:
        raise ValueError("no posts to resample")
    drawn = np.random.default_rng(seed).integers(0, n_posts, (resamples, n_posts))
    drawn += np.arange(resamples)[:, None] * n_posts  # row r counts into bins r*n .. r*n+n-1
    return np.bincount(drawn.ravel(), minlength=resamples * n_posts).reshape(resamples, n_posts)


def interval(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def intervals(statistic: Statistic, n_posts: int, seed: int, resamples: int = RESAMPLES,
              level: float = LEVEL) -> dict[str, dict[str, float]]:
    """name -> {value (on the posts as they are), low, high}."""
    point = statistic(np.ones((1, n_posts)))
    drawn = statistic(resample_weights(n_posts, seed, resamples))
    return {name: {"value": float(point[name][0]),
                   **dict(zip(("low", "high"), interval(drawn[name], level), strict=True))}
            for name in point}


def difference(a: Statistic, b: Statistic) -> Statistic:
    """The statistic ``a - b``, both scored on the same weights (a paired difference)."""
    def scored(weights):
        scores_a, scores_b = a(weights), b(weights)
        return {name: scores_a[name] - scores_b[name] for name in scores_a if name in scores_b}

    return scored


def pooled_intervals(statistics: Sequence[Statistic], n_posts: int, seed: int,
                     resamples: int = RESAMPLES, level: float = LEVEL
                     ) -> dict[str, dict[str, float]]:
    """name -> {mean (of the statistics on the posts as they are), low, high}: every
    statistic scored on the same ``resamples`` resampled posts, the percentiles taken over
    all ``len(statistics) * resamples`` values pooled."""
    ones = np.ones((1, n_posts))
    weights = resample_weights(n_posts, seed, resamples)
    points = [statistic(ones) for statistic in statistics]
    drawn = [statistic(weights) for statistic in statistics]
    return {name: {"mean": float(np.mean([point[name][0] for point in points])),
                   **dict(zip(("low", "high"),
                              interval(np.concatenate([d[name] for d in drawn]), level),
                              strict=True))}
            for name in points[0]}
