"""``cm compare``: two runs' test decisions, the paired-bootstrap difference of each headline
score with its 95% interval. Both runs must have scored the same test pairs (same posts,
criteria, sentences and labels); anything else would compare different questions. Two
groups of runs (seeds, folds: ``cm.evaluate.groups``) compare member by member."""

from __future__ import annotations

import csv
from pathlib import Path

import attrs
import numpy as np

from cm.errors import UserError
from cm.evaluate.bootstrap import RESAMPLES, paired_differences
from cm.evaluate.decisions import Pairs, statistic
from cm.evaluate.report import PREDICTION_COLUMNS

PREDICTIONS = "test_predictions.csv"  # written by every run (ids and numbers, no text)
HEADLINE = ("post_macro_f1", "post_micro_f1", "macro_f1", "f1")


@attrs.frozen
class Predicted:
    """One pair as a run's predictions file holds it."""

    label: int
    probability: float  # calibrated
    decision: int


def read_predictions(run_dir: Path, split: str = "test"
                     ) -> dict[tuple[str, str, str], Predicted]:
    """(post, criterion, sentence) -> the pair's label, probability and decision, from a
    run's ``{split}_predictions.csv``."""
    path = Path(run_dir) / f"{split}_predictions.csv"
    if not path.is_file():
        raise UserError(f"{run_dir}: no {path.name}; pass a run directory written by "
                        "`cm run` (outputs/<name>/<timestamp>) that finished its evaluation, "
                        "or an MLflow run id (with cm-tracking installed)")
    rows = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = set(PREDICTION_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise UserError(f"{path}: missing column(s) {sorted(missing)}")
        for row in reader:
            key = (row["post_id"], row["criterion_id"], row["sentence_id"])
            rows[key] = Predicted(int(row["label"]), float(row["probability"]),
                                  int(row["decision"]))
    return rows


def scored_pairs(runs: dict[str, dict]) -> Pairs:
    """The test pairs every run of ``runs`` (name -> predictions) scored, sorted, with their
    labels (probabilities zero); a UserError when two runs scored different pairs or labels."""
    (first, a), *others = runs.items()
    for name, b in others:
        if a.keys() != b.keys():
            only_a = {k[0] for k in a.keys() - b.keys()}
            only_b = {k[0] for k in b.keys() - a.keys()}
            raise UserError(f"the runs scored different test pairs: {len(only_a)} post(s) only "
                            f"in {first} (e.g. {sorted(only_a)[:3]}), {len(only_b)} only in "
                            f"{name} (e.g. {sorted(only_b)[:3]}); compare runs with the same "
                            "data and split (data.*, seed)")
        if any(a[k].label != b[k].label for k in a):
            raise UserError(f"the test labels differ between {first} and {name} (a "
                            "different dataset version?); compare runs on the same data")
    keys = sorted(a)
    return Pairs.of([k[0] for k in keys], [k[1] for k in keys], [a[k].label for k in keys],
                    np.zeros(len(keys)))


def decisions_of(predictions: dict) -> list[int]:
    """A run's decision per pair, in the order ``scored_pairs`` sorts them."""
    return [predictions[key].decision for key in sorted(predictions)]


def compare(run_a: Path, run_b: Path, *, seed: int = 0, resamples: int = RESAMPLES) -> dict:
    """name -> {a, b, difference (a - b), low, high, excludes_zero} over the same resampled
    test posts."""
    a, b = read_predictions(run_a), read_predictions(run_b)
    pairs = scored_pairs({str(run_a): a, str(run_b): b})
    stat_a = statistic(pairs, decisions_of(a))
    stat_b = statistic(pairs, decisions_of(b))
    n_posts = len(set(pairs.post_ids))
    differences = paired_differences(stat_a, stat_b, n_posts, seed, resamples)
    ones = np.ones((1, n_posts))
    point_a, point_b = stat_a(ones), stat_b(ones)
    return {name: {"a": float(point_a[name][0]), "b": float(point_b[name][0]), **row,
                   "excludes_zero": excludes_zero(row)}
            for name, row in differences.items()}


def excludes_zero(row: dict) -> bool:
    return row["low"] > 0 or row["high"] < 0


def ordered(result: dict) -> list[str]:
    """Headline scores first, then each criterion's F1."""
    return [n for n in HEADLINE if n in result] + [n for n in result if n not in HEADLINE]
