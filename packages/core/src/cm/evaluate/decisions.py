"""From scored pairs to decisions: the post view, what validation fixes (the calibrator
and thresholds per criterion), and every score of a split at those decisions.

The decision unit is a (post, criterion) cell: at post level one pair per cell; at sentence
level a cell is a match when any of its sentences is (its probability is the highest
sentence probability). The calibrator is fitted on validation cells first, thresholds are
then tuned on the calibrated validation cells; test is scored with both as they are.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import attrs
import numpy as np

from cm.evaluate import bootstrap, calibration
from cm.evaluate.calibrator import Calibrator, fit_calibrator
from cm.evaluate.metrics import pair_metrics, per_criterion, post_level
from cm.evaluate.thresholds import tune_thresholds


@attrs.frozen
class Pairs:
    """One split's scored pairs as arrays (sentence level: one pair per sentence)."""

    post_ids: np.ndarray
    criterion_ids: np.ndarray
    labels: np.ndarray
    probs: np.ndarray

    @classmethod
    def of(cls, post_ids: Sequence[Hashable], criterion_ids: Sequence[Hashable], labels: Any,
           probs: Any) -> Pairs:
        return cls(np.asarray([str(p) for p in post_ids], dtype=object),
                   np.asarray([str(c) for c in criterion_ids], dtype=object),
                   np.asarray(labels, dtype=np.int64), np.asarray(probs, dtype=float))

    def cells(self) -> Pairs:
        """The post view: per (post, criterion), the highest probability and any label."""
        keys = list(zip(self.post_ids, self.criterion_ids, strict=True))
        first: dict[tuple, int] = {}
        group = np.asarray([first.setdefault(k, len(first)) for k in keys], dtype=np.int64)
        if len(first) == len(keys):
            return self
        labels = np.zeros(len(first), dtype=np.int64)
        probs = np.full(len(first), -np.inf)
        np.maximum.at(labels, group, self.labels)
        np.maximum.at(probs, group, self.probs)
        return Pairs(np.asarray([k[0] for k in first], dtype=object),
                     np.asarray([k[1] for k in first], dtype=object), labels, probs)

    def with_probs(self, probs: np.ndarray) -> Pairs:
        return attrs.evolve(self, probs=np.asarray(probs, dtype=float))


@attrs.frozen
class Decision:
    """The calibrator (cm.evaluate.calibrator) and, per criterion, the threshold on the
    calibrated probability (a cell is a match when it is >= the threshold)."""

    calibrator: Calibrator
    thresholds: dict[str, float]

    def calibrate(self, criterion_ids: Sequence[Hashable], probs: Any) -> np.ndarray:
        return self.calibrator.apply(criterion_ids, probs)

    def cuts(self, criterion_ids: Sequence[Hashable]) -> np.ndarray:
        return np.asarray([self.thresholds[str(c)] for c in criterion_ids], dtype=float)

    def meta(self) -> dict:
        return {"calibrator": self.calibrator.meta(), "thresholds": dict(self.thresholds)}

    @classmethod
    def identity(cls, thresholds: dict[str, float]) -> Decision:
        """Probabilities as they are, decided at ``thresholds``."""
        return cls(Calibrator.identity(list(thresholds)), dict(thresholds))

    @classmethod
    def from_meta(cls, meta: dict) -> Decision:
        return cls(Calibrator.from_meta(meta), dict(meta["thresholds"]))


def fit(threshold_mode: str | float, calibration_mode: str, val: Pairs,
        shift: float | None = None) -> Decision:
    """The calibrator fitted on the validation cells (``shift``: the loss's prior shift), then
    thresholds tuned on them calibrated by ``threshold_mode`` (``eval.thresholds``:
    per_criterion, global or a fixed number)."""
    cells = val.cells()
    calibrator = fit_calibrator(calibration_mode, cells.criterion_ids, cells.labels,
                                cells.probs, shift)
    calibrated = calibrator.apply(cells.criterion_ids, cells.probs)
    return Decision(calibrator, tune_thresholds(threshold_mode, cells.criterion_ids,
                                                cells.labels, calibrated))


def scores(split: Pairs, decision: Decision, criteria: Sequence[str]) -> dict[str, Any]:
    """Pair-level scores and the post view's (``post_*``) at the decision's thresholds, on
    calibrated probabilities; per criterion ``<id>/threshold`` and ``<id>/f1``."""
    calibrated = split.with_probs(decision.calibrate(split.criterion_ids, split.probs))
    out = pair_metrics(calibrated.labels, calibrated.probs, decision.cuts(split.criterion_ids))
    cells = calibrated.cells()
    cuts = decision.cuts(cells.criterion_ids)
    posts = post_level(cells.post_ids, cells.criterion_ids, cells.labels, cells.probs, cuts,
                       criteria)
    out.update({f"post_{k}": v for k, v in posts.items()})
    for cid, row in per_criterion(cells.criterion_ids, cells.labels, cells.probs, cuts).items():
        out.update({f"{cid}/threshold": decision.thresholds[cid], f"{cid}/f1": row["f1"],
                    f"{cid}/precision": row["precision"], f"{cid}/recall": row["recall"],
                    f"{cid}/support": row["support"]})
    return out


def calibration_scores(split: Pairs, decision: Decision, seed: int,
                       resamples: int) -> dict[str, float]:
    """ECE (15 bins, with its 95% bootstrap interval over posts: ``ece_low``, ``ece_high``)
    and Brier of the cells before (``_raw``) and after calibration, overall and per criterion
    (``<id>/ece_raw``, ``<id>/ece``)."""
    cells = split.cells()
    after = decision.calibrate(cells.criterion_ids, cells.probs)
    posts = {p: i for i, p in enumerate(sorted(set(cells.post_ids)))}
    drawn = bootstrap.resample_weights(len(posts), seed, resamples)
    resampled = calibration.ece_resampled(
        cells.labels, after, drawn[:, [posts[p] for p in cells.post_ids]])
    low, high = bootstrap.interval(resampled, bootstrap.LEVEL)
    out = {"ece_raw": calibration.ece(cells.labels, cells.probs),
           "ece": calibration.ece(cells.labels, after),
           "ece_low": low, "ece_high": high,
           "brier_raw": calibration.brier(cells.labels, cells.probs),
           "brier": calibration.brier(cells.labels, after)}
    for cid in decision.thresholds:
        mask = cells.criterion_ids == cid
        if mask.any():
            out[f"{cid}/ece_raw"] = calibration.ece(cells.labels[mask], cells.probs[mask])
            out[f"{cid}/ece"] = calibration.ece(cells.labels[mask], after[mask])
    return out


def decided(split: Pairs, decision: Decision) -> np.ndarray:
    """0/1 per pair: its calibrated probability against its criterion's threshold."""
    calibrated = decision.calibrate(split.criterion_ids, split.probs)
    return (calibrated >= decision.cuts(split.criterion_ids)).astype(np.int64)


def statistic(split: Pairs, made: Any) -> bootstrap.Statistic:
    """The bootstrap statistic of ``split`` with decisions ``made`` (0/1 per pair): post view
    and pair-level F1s. A cell is decided a match when any of its pairs is."""
    made = np.asarray(made, dtype=np.int64)
    pair_cells = bootstrap.cells(split.post_ids, split.criterion_ids, split.labels, made)
    view = split.with_probs(made).cells()
    post_cells = bootstrap.cells(view.post_ids, view.criterion_ids, view.labels,
                                 view.probs.astype(np.int64))
    return lambda w: {**bootstrap.post_scores(post_cells, w),
                      **bootstrap.pair_scores(pair_cells, w)}


def intervals(split: Pairs, decision: Decision, seed: int, resamples: int) -> dict[str, float]:
    """``<name>_low`` / ``<name>_high``: the 95% bootstrap interval over posts of each
    headline score (post_macro_f1, post_micro_f1, macro_f1, f1, <id>/f1)."""
    n_posts = len(set(split.post_ids))
    found = bootstrap.intervals(statistic(split, decided(split, decision)), n_posts, seed,
                                resamples)
    return {f"{name}_{end}": row[end] for name, row in found.items() for end in ("low", "high")}
