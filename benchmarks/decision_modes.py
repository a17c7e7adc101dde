"""A finished run's decisions under each threshold rule, without retraining: the run's val
and test predictions (``*_predictions.csv``, calibrated probabilities) re-decided with one
threshold of 0.5, the shared threshold, per-criterion thresholds without shrinkage (k = 0)
and with cm's (k = 10), each tuned on val; test 9-criterion macro-F1 with its bootstrap
interval. Run: python benchmarks/decision_modes.py outputs/demo/<timestamp>
"""

import csv
import sys
from pathlib import Path

from cm.evaluate.decisions import Decision, Pairs, intervals, scores
from cm.evaluate.thresholds import PRIOR_POSITIVES, tune_thresholds


def read(path: Path) -> Pairs:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return Pairs.of([r["post_id"] for r in rows], [r["criterion_id"] for r in rows],
                    [int(r["label"]) for r in rows], [float(r["probability"]) for r in rows])


def main(run_dir: Path):
    val, test = read(run_dir / "val_predictions.csv"), read(run_dir / "test_predictions.csv")
    cells = val.cells()
    ids = sorted(set(cells.criterion_ids))
    rules = {"0.5 for every criterion": dict.fromkeys(ids, 0.5),
             "shared threshold (global)": tune_thresholds("global", cells.criterion_ids,
                                                          cells.labels, cells.probs)}
    for k in (0, PRIOR_POSITIVES):
        rules[f"per criterion, k = {k}"] = tune_thresholds(
            "per_criterion", cells.criterion_ids, cells.labels, cells.probs, prior=k)
    print(f"{run_dir}: test 9-criterion macro-F1 [95% interval], thresholds tuned on val")
    for name, cut in rules.items():
        decision = Decision.identity(cut)  # probabilities already calibrated
        found = intervals(test, decision, seed=0, resamples=1000)
        value = scores(test, decision, ids)["post_macro_f1"]
        print(f"  {name:28s} {value:.3f} [{found['post_macro_f1_low']:.3f}, "
              f"{found['post_macro_f1_high']:.3f}]")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
