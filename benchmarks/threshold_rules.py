"""Threshold rules re-measured on a group of real runs: each run's own val and test cell
probabilities (its ``*_predictions.csv``, calibrated as the run decided; at sentence level a
cell is its best sentence), thresholds re-tuned on val by each rule, test 9-criterion
macro-F1 per run and its mean over the group.

Rules: per criterion with shrinkage k toward the shared threshold (k = 0: each criterion's
own val optimum; 10: cm's default) and the shared threshold alone.
Run: python benchmarks/threshold_rules.py outputs/demo/<group folder>
"""

import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from cm.evaluate.thresholds import tune_thresholds

RULES = {"own optimum (k = 0)": 0, "k = 3": 3, "k = 10 (default)": 10, "k = 30": 30,
         "shared threshold": None}


def cells(path: Path):
    """(criterion ids, labels, probabilities) per (post, criterion) cell: the max over its
    rows (sentences or windows)."""
    best = defaultdict(lambda: [0, 0.0])
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            cell = best[(row["post_id"], row["criterion_id"])]
            cell[0] = max(cell[0], int(row["label"]))
            cell[1] = max(cell[1], float(row["probability"]))
    keys = sorted(best)
    return ([c for _, c in keys], np.array([best[k][0] for k in keys]),
            np.array([best[k][1] for k in keys]))


def macro_f1(ids, labels, probs, thresholds) -> float:
    scores = []
    for criterion in sorted(set(ids)):
        mask = np.array([c == criterion for c in ids])
        made = probs[mask] >= thresholds[criterion]
        y = labels[mask] == 1
        tp, fp, fn = (made & y).sum(), (made & ~y).sum(), (~made & y).sum()
        scores.append(2 * tp / max(2 * tp + fp + fn, 1))
    return float(np.mean(scores))


def main(group: Path) -> None:
    runs = sorted(p for p in group.iterdir()
                  if (p / "val_predictions.csv").is_file() and p.name != "ensemble")
    table = {rule: [] for rule in RULES}
    for run in runs:
        val, test = cells(run / "val_predictions.csv"), cells(run / "test_predictions.csv")
        for rule, k in RULES.items():
            mode = "global" if k is None else "per_criterion"
            tuned = tune_thresholds(mode, *val, prior=k or 0)
            table[rule].append(macro_f1(*test, tuned))
    print(f"| rule | {' | '.join(r.name for r in runs)} | mean |")
    print("|---|" + "---:|" * (len(runs) + 1))
    for rule, scores in table.items():
        print(f"| {rule} | {' | '.join(f'{s:.3f}' for s in scores)} | {np.mean(scores):.3f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
