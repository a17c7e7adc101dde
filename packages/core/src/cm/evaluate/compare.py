"""``cm compare``: two runs' test decisions, the paired-bootstrap difference of each headline
score with its 95% interval. Both runs must have scored the same test pairs (same posts,
criteria, sentences and labels); anything else would compare different questions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cm.errors import UserError
from cm.evaluate.bootstrap import RESAMPLES, paired_differences
from cm.evaluate.decisions import Pairs, statistic
from cm.evaluate.report import PREDICTION_COLUMNS
from cm.textfile import csv_records, read_text

PREDICTIONS = "test_predictions.csv"  # written by every run (ids and numbers, no text)
HEADLINE = ("post_macro_f1", "post_micro_f1", "macro_f1", "f1")


def read_predictions(run_dir: Path) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(post, criterion, sentence) -> (label, decision) from a run's test predictions."""
    path = Path(run_dir) / PREDICTIONS
    if not path.is_file():
        raise UserError(f"{run_dir}: no {PREDICTIONS}; pass a run directory written by "
                        "`cm run` (outputs/<name>/<timestamp>) that finished its evaluation, "
                        "or an MLflow run id (with cm-tracking installed)")
    records = csv_records(path, read_text(path, "predictions file"))
    _, header = next(records, (1, []))
    missing = set(PREDICTION_COLUMNS) - set(header)
    if missing:
        raise UserError(f"{path}: missing column(s) {sorted(missing)}")
    rows = {}
    for line, fields in records:
        row = dict(zip(header, fields, strict=False))
        key = (row.get("post_id"), row.get("criterion_id"), row.get("sentence_id"))
        try:
            rows[key] = (int(row["label"]), int(row["decision"]))
        except (KeyError, ValueError):
            raise UserError(f"{path} (line {line}): not a row of `cm run`'s test predictions "
                            "(label and decision are 0 or 1); use the file the run wrote"
                            ) from None
    return rows


def differing_pairs(a: set, b: set, run_a: Path, run_b: Path) -> str:
    """What differs between two runs' test pairs: the posts, else the criteria, else the
    sentences, naming a few of each side's own."""
    for index, what, fix in ((0, "posts", "the same data and split (data.*, seed)"),
                             (1, "criteria", "the same criteria file"),
                             (2, "sentences", "the same data.level and sentence splitting")):
        only_a = sorted({k[index] for k in a} - {k[index] for k in b})
        only_b = sorted({k[index] for k in b} - {k[index] for k in a})
        if only_a or only_b:
            return (f"the runs scored different test {what}: {len(only_a)} only in {run_a} "
                    f"({only_a[:5]}), {len(only_b)} only in {run_b} ({only_b[:5]}); "
                    f"compare runs with {fix}")
    return (f"the runs scored different test pairs ({len(a - b)} only in {run_a}, "
            f"{len(b - a)} only in {run_b}); compare runs with the same data and settings")


def compare(run_a: Path, run_b: Path, *, seed: int = 0, resamples: int = RESAMPLES) -> dict:
    """name -> {a, b, difference (a - b), low, high} over the same resampled test posts."""
    a, b = read_predictions(run_a), read_predictions(run_b)
    if a.keys() != b.keys():
        raise UserError(differing_pairs(set(a), set(b), run_a, run_b))
    keys = sorted(a)
    labels_a = np.array([a[k][0] for k in keys])
    if not np.array_equal(labels_a, [b[k][0] for k in keys]):
        raise UserError("the runs' test labels differ (a different dataset version?); "
                        "compare runs on the same data")
    pairs = Pairs.of([k[0] for k in keys], [k[1] for k in keys], labels_a,
                     np.zeros(len(keys)))
    stat_a = statistic(pairs, [a[k][1] for k in keys])
    stat_b = statistic(pairs, [b[k][1] for k in keys])
    n_posts = len({k[0] for k in keys})
    differences = paired_differences(stat_a, stat_b, n_posts, seed, resamples)
    ones = np.ones((1, n_posts))
    point_a, point_b = stat_a(ones), stat_b(ones)
    return {name: {"a": float(point_a[name][0]), "b": float(point_b[name][0]), **row}
            for name, row in differences.items()}


def ordered(result: dict) -> list[str]:
    """Headline scores first, then each criterion's F1."""
    return [n for n in HEADLINE if n in result] + [n for n in result if n not in HEADLINE]
