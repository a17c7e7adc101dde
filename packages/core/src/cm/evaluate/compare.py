"""``cm compare``: two runs' test decisions, the paired-bootstrap difference of each headline
score with its 95% interval. Both runs must have scored the same test pairs (same posts,
criteria, sentences and labels); anything else would compare different questions. Two
groups of runs (seeds, folds: ``cm.evaluate.groups``) compare run by run, in order."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np

from cm.errors import UserError
from cm.evaluate.bootstrap import RESAMPLES, difference, pooled_intervals
from cm.evaluate.decisions import Pairs, statistic
from cm.evaluate.report import PREDICTION_COLUMNS
from cm.textfile import csv_records, text_lines

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
    records = csv_records(path, text_lines(path, "predictions file"))
    _, header = next(records, (1, []))
    missing = set(PREDICTION_COLUMNS) - set(header)
    if missing:
        raise UserError(f"{path}: missing column(s) {sorted(missing)}")
    rows = {}
    for line, fields in records:
        row = dict(zip(header, fields, strict=False))
        key = (row.get("post_id"), row.get("criterion_id"), row.get("sentence_id"))
        try:
            rows[key] = Predicted(int(row["label"]), float(row["probability"]),
                                  int(row["decision"]))
        except (KeyError, ValueError):
            raise UserError(f"{path} (line {line}): not a row of `cm run`'s predictions (label "
                            "and decision 0 or 1, probability a number); use the file the run "
                            "wrote") from None
    return rows


def differing_pairs(a: set, b: set, run_a, run_b) -> str:
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


def scored_pairs(runs: dict[str, dict]) -> Pairs:
    """The test pairs every run of ``runs`` (name -> predictions) scored, sorted, with their
    labels (probabilities zero); a UserError when two runs scored different pairs or labels."""
    (first, a), *others = runs.items()
    for name, b in others:
        if a.keys() != b.keys():
            raise UserError(differing_pairs(set(a), set(b), first, name))
        if any(a[k].label != b[k].label for k in a):
            raise UserError(f"the test labels differ between {first} and {name} (a "
                            "different dataset version?); compare runs on the same data")
    keys = sorted(a)
    return Pairs.of([k[0] for k in keys], [k[1] for k in keys], [a[k].label for k in keys],
                    np.zeros(len(keys)))


def decisions_of(predictions: dict) -> list[int]:
    """A run's decision per pair, in the order ``scored_pairs`` sorts them."""
    return [predictions[key].decision for key in sorted(predictions)]


def compare(runs_a: list[Path], runs_b: list[Path], *, seed: int = 0,
            resamples: int = RESAMPLES) -> dict:
    """name -> {a, b (the runs' mean scores), difference (the mean of the paired differences
    a_i - b_i), low, high, excludes_zero}: the i-th run of A against the i-th of B (one run
    each, or a group's seeds / folds in order), all scored on the same resampled test
    posts, the 95% interval pooled over the pairs and the resamples."""
    if len(runs_a) != len(runs_b):
        raise UserError(f"A holds {len(runs_a)} runs and B {len(runs_b)}: compare groups "
                        "with as many seeds and folds (--seeds, data.folds)")
    runs = {f"{side} {d}": read_predictions(d)
            for side, dirs in (("A", runs_a), ("B", runs_b)) for d in dirs}
    pairs = scored_pairs(runs)
    made = [statistic(pairs, decisions_of(p)) for p in runs.values()]
    made_a, made_b = made[:len(runs_a)], made[len(runs_a):]
    n_posts = len(set(pairs.post_ids))
    found = pooled_intervals([difference(a, b) for a, b in zip(made_a, made_b, strict=True)],
                             n_posts, seed, resamples)
    ones = np.ones((1, n_posts))
    means = [{name: float(np.mean([m(ones)[name][0] for m in side])) for name in found}
             for side in (made_a, made_b)]
    return {name: {"a": means[0][name], "b": means[1][name], "difference": row["mean"],
                   "low": row["low"], "high": row["high"], "excludes_zero": excludes_zero(row)}
            for name, row in found.items()}


def excludes_zero(row: dict) -> bool:
    return row["low"] > 0 or row["high"] < 0


def ordered(result: dict) -> list[str]:
    """Headline scores first, then each criterion's F1."""
    return [n for n in HEADLINE if n in result] + [n for n in result if n not in HEADLINE]
