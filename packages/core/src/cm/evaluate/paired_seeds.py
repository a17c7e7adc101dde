"""Two configs run over the same seeds: the paired difference (a - b) over seeds and posts.

Per seed there is one pair of runs (a, b) that scored the same posts. The point difference
is the mean over seeds of each seed's difference. Its 95% interval comes from a bootstrap
that resamples seeds and posts together: each resample draws k seeds with replacement and,
for each distinct set of posts, n posts with replacement. Seeds that scored the same posts
share the post draw (a small test set's luck does not average out over seeds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cm.evaluate.bootstrap import LEVEL, RESAMPLES, interval, resample_weights
from cm.evaluate.compare import decisions_of, read_predictions, scored_pairs
from cm.evaluate.decisions import statistic


def paired_statistics(run_a: Path, run_b: Path, split: str):
    """The two runs' bootstrap statistics on the same pairs of ``split`` and those pairs'
    posts (sorted: the statistics' weight columns)."""
    runs = {str(run_a): read_predictions(run_a, split), str(run_b): read_predictions(run_b, split)}
    pairs = scored_pairs(runs)
    stat_a, stat_b = (statistic(pairs, decisions_of(p)) for p in runs.values())
    return stat_a, stat_b, tuple(sorted({str(p) for p in pairs.post_ids}))


def paired_over_seeds(runs: list[tuple[Path, Path]], split: str = "test", seed: int = 0,
                      resamples: int = RESAMPLES, level: float = LEVEL) -> dict[str, dict]:
    """name -> {a, b, difference (means over seeds), low, high, per_seed} for ``runs``, one
    (run a, run b) pair of run directories per seed, read from their ``split`` predictions."""
    if not runs:
        raise ValueError("no pair of runs to compare")
    stats = [paired_statistics(a, b, split) for a, b in runs]
    post_sets = sorted({posts for _, _, posts in stats})
    draws = {posts: resample_weights(len(posts), seed + i, resamples)
             for i, posts in enumerate(post_sets)}
    picked = resample_weights(len(runs), seed + len(post_sets), resamples)  # (B, seeds)
    points = [(a(np.ones((1, len(posts)))), b(np.ones((1, len(posts)))))
              for a, b, posts in stats]
    drawn = [(a(draws[posts]), b(draws[posts])) for a, b, posts in stats]
    names = [name for name in points[0][0] if all(name in p[1] for p in points)]
    result = {}
    for name in names:
        per_seed = [float(a[name][0] - b[name][0]) for a, b in points]
        differences = np.stack([a[name] - b[name] for a, b in drawn])  # (seeds, B)
        resampled = (picked * differences.T).sum(axis=1) / len(runs)
        low, high = interval(resampled, level)
        result[name] = {"a": float(np.mean([a[name][0] for a, _ in points])),
                        "b": float(np.mean([b[name][0] for _, b in points])),
                        "difference": float(np.mean(per_seed)), "low": low, "high": high,
                        "per_seed": per_seed}
    return result
