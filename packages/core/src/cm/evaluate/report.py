"""Write one split's evaluation artifacts.

Artifacts carry ids and numbers only, never post text, so a run directory can be shared
without leaking the (licensed) Reddit posts. Plots use matplotlib's Agg canvas directly, not
pyplot, so reports work without a display and leave global plotting state alone.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cm.evaluate.calibration import reliability_png, reliability_rows
from cm.evaluate.decisions import Decision, Pairs

TARGET_NAMES = ["no_match", "match"]
CSV_COLUMNS = ["criterion", "threshold", "slope", "bias", "precision", "recall", "f1", "f1_low",
               "f1_high", "ece_raw", "ece", "support"]
RELIABILITY_COLUMNS = ["criterion", "bin_low", "bin_high", "cells", "mean_probability",
                       "match_rate"]
PREDICTION_COLUMNS = ["post_id", "criterion_id", "sentence_id", "label", "probability",
                      "decision"]


def _plain(value: Any) -> Any:
    """numpy scalars and nested containers -> plain Python, so json.dumps accepts them."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _write_json(path: Path, data: dict[str, Any]) -> Path:
    # allow_nan=False: a NaN would make the file unreadable by strict JSON parsers.
    path.write_text(json.dumps(_plain(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def _confusion_png(path: Path, matrix: np.ndarray, split: str) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2, 3.8), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax)
    total = max(int(matrix.sum()), 1)
    for (i, j), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        label = f"{count}\n({count / total:.1%})"
        ax.text(j, i, label, ha="center", va="center", color=color, fontsize=11)
    ax.set_xticks([0, 1], labels=TARGET_NAMES)
    ax.set_yticks([0, 1], labels=TARGET_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{split} pairs (tuned thresholds)")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def write_split_report(
    out_dir: Path,
    split: str,
    pairs: Pairs,
    sentence_ids: Sequence[str | None],
    decision: Decision,
    criteria: Sequence[str],
    metrics: dict[str, Any],
) -> dict[str, Path]:
    """Write ``{split}_*`` artifacts into ``out_dir``; returns artifact name -> path.

    ``pairs`` hold raw probabilities; everything written is at ``decision`` (calibrated
    probabilities, per-criterion thresholds). Names: classification_report (.json, pair
    level), confusion_matrix (.png, pair level), per_criterion (.csv: threshold, the
    calibrator's slope and bias, F1 with its interval, ECE before/after per criterion, over
    posts), predictions (.csv: ids, label, calibrated probability, decision per pair),
    reliability (.png over every cell; .csv per criterion and bin of the calibrated
    probability: cells, mean probability, fraction of matches) and metrics (.json:
    ``metrics`` plus the decision).
    """
    from sklearn.metrics import classification_report, confusion_matrix  # slow import

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    calibrated = decision.calibrate(pairs.criterion_ids, pairs.probs)
    cuts = decision.cuts(pairs.criterion_ids)
    pred = (calibrated >= cuts).astype(np.int64)
    report = classification_report(pairs.labels, pred, labels=[0, 1], target_names=TARGET_NAMES,
                                   output_dict=True, zero_division=0)
    cells = pairs.cells()
    paths = {
        "classification_report": _write_json(
            out_dir / f"{split}_classification_report.json", report),
        "confusion_matrix": _confusion_png(
            out_dir / f"{split}_confusion_matrix.png",
            confusion_matrix(pairs.labels, pred, labels=[0, 1]), split),
        "reliability": reliability_png(
            out_dir / f"{split}_reliability.png", cells.labels, cells.probs,
            decision.calibrate(cells.criterion_ids, cells.probs),
            f"{split}: (post, criterion) cells"),
    }
    paths["reliability_table"] = _write_rows(
        out_dir / f"{split}_reliability.csv", RELIABILITY_COLUMNS,
        reliability_rows(cells.criterion_ids, cells.labels,
                         decision.calibrate(cells.criterion_ids, cells.probs), criteria))
    paths["per_criterion"] = _write_rows(
        out_dir / f"{split}_per_criterion.csv", CSV_COLUMNS,
        [[cid, decision.thresholds[cid], decision.calibrator.slopes[cid],
          decision.calibrator.biases[cid],
          *(metrics.get(f"{cid}/{c}", "") for c in CSV_COLUMNS[4:])] for cid in criteria])
    paths["predictions"] = _write_rows(
        out_dir / f"{split}_predictions.csv", PREDICTION_COLUMNS,
        [[post, cid, sentence or "", label, round(float(prob), 6), made]
         for post, cid, sentence, label, prob, made in zip(
             pairs.post_ids, pairs.criterion_ids, sentence_ids, pairs.labels, calibrated, pred,
             strict=True)])
    paths["metrics"] = _write_json(out_dir / f"{split}_metrics.json",
                                   {"split": split, **decision.meta(), "metrics": metrics})
    return paths


def _write_rows(path: Path, header: Sequence[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
