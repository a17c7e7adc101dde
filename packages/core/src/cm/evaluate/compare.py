"""``cm compare``: two runs' test decisions, the paired-bootstrap difference of each headline
score with its 95% interval. Both runs must have scored the same test pairs (same posts,
criteria, sentences and labels); anything else would compare different questions."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from cm.errors import UserError
from cm.evaluate.bootstrap import RESAMPLES, Statistic, paired_differences
from cm.evaluate.decisions import Pairs, statistic
from cm.evaluate.report import PREDICTION_COLUMNS

PREDICTIONS = "test_predictions.csv"  # written by every run (ids and numbers, no text)
SPLIT_PREDICTIONS = "{split}_predictions.csv"  # val_predictions.csv beside it
HEADLINE = ("post_macro_f1", "post_micro_f1", "macro_f1", "f1")


def read_predictions(run_dir: Path, split: str = "test"
                     ) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(post, criterion, sentence) -> (label, decision) from a run's predictions on ``split``."""
    name = SPLIT_PREDICTIONS.format(split=split)
    path = Path(run_dir) / name
    if not path.is_file():
        raise UserError(f"{run_dir}: no {name}; pass a run directory written by "
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
            rows[key] = (int(row["label"]), int(row["decision"]))
    return rows


def compare(run_a: Path, run_b: Path, *, seed: int = 0, resamples: int = RESAMPLES) -> dict:
    """name -> {a, b, difference (a - b), low, high} over the same resampled test posts."""
    stat_a, stat_b, posts = paired_statistics(run_a, run_b)
    n_posts = len(posts)
    differences = paired_differences(stat_a, stat_b, n_posts, seed, resamples)
    ones = np.ones((1, n_posts))
    point_a, point_b = stat_a(ones), stat_b(ones)
    return {name: {"a": float(point_a[name][0]), "b": float(point_b[name][0]), **row}
            for name, row in differences.items()}


def paired_statistics(run_a: Path, run_b: Path, split: str = "test"
                      ) -> tuple[Statistic, Statistic, tuple[str, ...]]:
    """The two runs' bootstrap statistics on the same posts of ``split``, and those posts
    (sorted: the statistics' weight columns); refused when the runs scored different pairs
    or labels."""
    a, b = read_predictions(run_a, split), read_predictions(run_b, split)
    if a.keys() != b.keys():
        only_a = {k[0] for k in a.keys() - b.keys()}
        only_b = {k[0] for k in b.keys() - a.keys()}
        raise UserError(f"the runs scored different {split} pairs: {len(only_a)} post(s) "
                        f"only in {run_a} (e.g. {sorted(only_a)[:3]}), {len(only_b)} only in "
                        f"{run_b} (e.g. {sorted(only_b)[:3]}); compare runs with the same data "
                        "and split (data.*, seed)")
    keys = sorted(a)
    labels_a = np.array([a[k][0] for k in keys])
    if not np.array_equal(labels_a, [b[k][0] for k in keys]):
        raise UserError(f"the runs' {split} labels differ (a different dataset version?); "
                        "compare runs on the same data")
    pairs = Pairs.of([k[0] for k in keys], [k[1] for k in keys], labels_a,
                     np.zeros(len(keys)))
    return (statistic(pairs, [a[k][1] for k in keys]), statistic(pairs, [b[k][1] for k in keys]),
            tuple(sorted({k[0] for k in keys})))


def ordered(result: dict) -> list[str]:
    """Headline scores first, then each criterion's F1."""
    return [n for n in HEADLINE if n in result] + [n for n in result if n not in HEADLINE]
