"""Deterministic, post-grouped, label-stratified train/val/test splits.

Splits are made over posts, never pairs, so the nine pairs of a post always land together and
no post text leaks between train and test. No RNG is used: the order comes from sha256 of
"seed:post_id", which gives the same split on every machine, OS and Python version.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence

from cm.data.records import PairSample
from cm.errors import UserError

SPLITS = ("train", "val", "test")


def ratios_problem(values: Sequence[float]) -> str | None:
    """What is wrong with (train, val, test) ratios, or None: the one check behind
    ``data.split`` in a config and ``split_posts``."""
    try:
        values = tuple(float(r) for r in values)
    except (TypeError, ValueError):
        return f"split ratios must be numbers, got {values!r}"
    if len(values) != 3:
        return f"split ratios must be 3 numbers (train, val, test), got {values}"
    if not all(math.isfinite(r) and r >= 0 for r in values):
        return f"split ratios must be finite and >= 0, got {values}; e.g. [0.8, 0.1, 0.1]"
    if abs(sum(values) - 1.0) > 1e-6:
        return f"split ratios must sum to 1, got {values} (sum {sum(values)})"
    if values[0] <= 0:
        return f"the train ratio must be > 0, got {values}"
    return None


def validate_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """The ratios as floats; a UserError when ``ratios_problem`` finds one."""
    problem = ratios_problem(ratios)
    if problem:
        raise UserError(problem)
    return tuple(float(r) for r in ratios)


def _stratum(ids: frozenset[str]) -> str:
    return "|".join(sorted(ids))


def _shuffle_key(seed: int, post_id: str) -> str:
    return hashlib.sha256(f"{seed}:{post_id}".encode()).hexdigest()


def split_posts(
    post_ids: Iterable[str],
    positives: dict[str, frozenset[str]],
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 42,
) -> dict[str, str]:
    """Map each post_id to "train", "val" or "test".

    Posts are ordered by (label pattern, sha256(seed:post_id)) and each goes to the split with
    the largest deficit ratio*(k+1) - count (ties to the earlier split). Walking strata in
    order spreads each label pattern proportionally, and the global counts never drift more
    than one post from ratio*n. Posts absent from `positives` count as having no positives.
    """
    weights = validate_ratios(ratios)
    order = sorted(
        set(post_ids),
        key=lambda pid: (_stratum(positives.get(pid, frozenset())), _shuffle_key(seed, pid)),
    )
    counts = [0, 0, 0]
    assignment: dict[str, str] = {}
    for k, post_id in enumerate(order):
        deficits = [w * (k + 1) - c for w, c in zip(weights, counts, strict=True)]
        best = deficits.index(max(deficits))
        counts[best] += 1
        assignment[post_id] = SPLITS[best]
    return assignment


def fold_posts(split_of: dict[str, str], positives: dict[str, frozenset[str]], folds: int,
               seed: int = 42) -> dict[str, int]:
    """Fold 1 .. ``folds`` of every train and val post of ``split_of`` (test posts get none).

    Posts are ordered as ``split_posts`` orders them (label pattern, then
    sha256(seed:post_id)) and dealt round robin: each label pattern spreads evenly over the
    folds, fold sizes differ by at most one post, and the same posts always land in the
    same folds, on every machine."""
    order = sorted(
        (pid for pid, split in split_of.items() if split != "test"),
        key=lambda pid: (_stratum(positives.get(pid, frozenset())), _shuffle_key(seed, pid)),
    )
    return {post_id: k % folds + 1 for k, post_id in enumerate(order)}


def class_balance(pairs: Iterable[PairSample]) -> tuple[int, int, float]:
    """(n_pos, n_neg, pos_weight = n_neg / n_pos) for a weighted BCE loss.

    Callers must pass TRAIN-split pairs only: weighting from val/test labels leaks them.
    """
    labels = [p.label for p in pairs]
    n_pos = sum(1 for label in labels if label == 1)
    n_neg = len(labels) - n_pos
    if n_pos == 0:
        raise UserError(
            f"no positive pairs among {len(labels)} training pairs, so pos_weight is undefined; "
            "check the annotations (status 1 rows) or use a larger train split"
        )
    return n_pos, n_neg, n_neg / n_pos
