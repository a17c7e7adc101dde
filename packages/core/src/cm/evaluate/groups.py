"""A group: the runs of one experiment over seeds or cross-validation folds (``cm run
--seeds N``, ``data.folds = K``; run by ``cm.train.group``). From the members' folders:

- the aggregate: each metric's mean, sd (n - 1), min and max over the members'
  ``metrics.json``;
- the headline's pooled interval: every member's test decisions scored on the same bootstrap
  resamples of the test posts, the 2.5th and 97.5th percentiles of all members' values
  together (so it covers the seed / fold spread and the test sample's);
- the ensemble: the members' calibrated probabilities averaged, scored like a run (per
  criterion thresholds tuned on val, see ``ensemble``), with a run's reports;
- (``cm.evaluate.compare`` compares two groups: their runs paired in order.)

A group folder holds ``aggregate.json`` listing its members' run folders, in order."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import attrs
import numpy as np

from cm.errors import UserError
from cm.evaluate import decisions
from cm.evaluate.bootstrap import RESAMPLES, pooled_intervals
from cm.evaluate.compare import decisions_of, read_predictions, scored_pairs
from cm.evaluate.decisions import Decision, Pairs, statistic
from cm.evaluate.metrics import natural_sorted

AGGREGATE = "aggregate.json"


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def summarize(metrics: list[dict]) -> dict[str, dict[str, float]]:
    """name -> {mean, sd, min, max} over the members' metrics (the numbers every member
    reports); sd is the sample standard deviation (n - 1), 0 for one member."""
    names = [k for k in metrics[0] if all(is_number(m.get(k)) for m in metrics)]
    out = {}
    for name in names:
        values = np.array([m[name] for m in metrics], dtype=float)
        out[name] = {"mean": float(values.mean()),
                     "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                     "min": float(values.min()), "max": float(values.max())}
    return out


def headline(run_dirs: list[Path], seed: int, resamples: int = RESAMPLES) -> dict:
    """name -> {mean, low, high}: the members' test scores at their own decisions, the
    interval pooled over members and resampled test posts."""
    predictions = {str(d): read_predictions(d) for d in run_dirs}
    pairs = scored_pairs(predictions)
    members = [statistic(pairs, decisions_of(p)) for p in predictions.values()]
    return pooled_intervals(members, len(set(pairs.post_ids)), seed, resamples)


def averaged(runs: list[dict]) -> tuple[Pairs, list[str]]:
    """Each pair's mean calibrated probability over the runs that scored it, and the pairs'
    sentence ids ("" at post level)."""
    sums, counts, labels = defaultdict(float), defaultdict(int), {}
    for predictions in runs:
        for key, row in predictions.items():
            sums[key] += row.probability
            counts[key] += 1
            labels[key] = row.label
    keys = sorted(sums)
    return (Pairs.of([k[0] for k in keys], [k[1] for k in keys], [labels[k] for k in keys],
                     [sums[k] / counts[k] for k in keys]), [k[2] for k in keys])


@attrs.frozen
class Ensemble:
    """The averaged probabilities per split (pairs, sentence ids), the decision tuned on
    val, and each split's scores at it."""

    decision: Decision
    splits: dict  # "val" / "test" -> (Pairs, sentence ids)
    scores: dict  # "val" / "test" -> scores


def ensemble(run_dirs: list[Path], thresholds, seed: int, resamples: int = RESAMPLES
             ) -> Ensemble:
    """The members' calibrated probabilities averaged, scored like a run: val cells average
    the members that validated on them (seeds: all of them; folds: the fold's model, i.e.
    out-of-fold), thresholds (``eval.thresholds``) are tuned there, then test (every member
    scored it) is scored at them, with its bootstrap intervals."""
    test = {str(d): read_predictions(d) for d in run_dirs}
    scored_pairs(test)  # every member scored the same test pairs
    splits = {"val": averaged([read_predictions(d, "val") for d in run_dirs]),
              "test": averaged(list(test.values()))}
    val, tested = splits["val"][0], splits["test"][0]
    decision = decisions.fit(thresholds, "none", val)
    criteria = natural_sorted(set(tested.criterion_ids))
    return Ensemble(decision, splits, {
        "val": decisions.scores(val, decision, criteria),
        "test": {**decisions.scores(tested, decision, criteria),
                 **decisions.intervals(tested, decision, seed, resamples)}})


def member_dirs(group_dir: Path) -> list[Path]:
    """The run folders of a group, in order, from its ``aggregate.json``."""
    path = Path(group_dir) / AGGREGATE
    if not path.is_file():
        raise UserError(f"{group_dir}: no {AGGREGATE}; pass a group folder written by "
                        "`cm run FILE --seeds N` or a cross-validated experiment "
                        "(data.folds = K)")
    return [Path(group_dir) / member for member in json.loads(path.read_text())["members"]]


def is_group(path: Path) -> bool:
    return (Path(path) / AGGREGATE).is_file()
