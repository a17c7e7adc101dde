"""The terminal summary of a run's final evaluation: headline scores with their 95% intervals
(the macro-F1 over the criteria first, named by their number: "9-criterion macro-F1" only
when there are nine), one row per criterion, and sentence evidence beside its
baselines. Reads the flat ``{column}/{name}`` metrics the engine stores in ``run.metrics``."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

HEADLINE = (("post_macro_f1", "{n}-criterion macro-F1"), ("post_micro_f1", "criterion micro-F1"),
            ("macro_f1", "pair macro-F1 (2 classes)"), ("f1", "pair F1 (match)"),
            ("pr_auc", "pair PR-AUC"), ("roc_auc", "pair ROC-AUC"),
            ("ece", "ECE (15 bins), calibrated"), ("ece_raw", "ECE before calibration"),
            ("brier", "Brier, calibrated"), ("brier_raw", "Brier before calibration"))


def _cell(metrics: dict, key: str) -> str:
    value = metrics.get(key)
    if value is None:
        return "-"
    low, high = metrics.get(f"{key}_low"), metrics.get(f"{key}_high")
    return f"{value:.3f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None else "")


def headline_table(metrics: dict, criteria: int,
                   columns: Sequence[str] = ("val_tuned", "test_tuned")) -> Table:
    """The headline scores of ``columns``; ``criteria``: how many criteria the run scored."""
    table = Table(title="at the tuned decisions (95% bootstrap interval over posts)",
                  title_justify="left")
    table.add_column("metric")
    for column in columns:
        table.add_column(column.removesuffix("_tuned"), justify="right")
    for key, label in HEADLINE:
        if any(f"{c}/{key}" in metrics for c in columns):
            table.add_row(label.format(n=criteria),
                          *(_cell(_column(metrics, c), key) for c in columns))
    return table


def criterion_table(metrics: dict, criteria: Sequence[str], column: str = "test_tuned") -> Table:
    found = _column(metrics, column)
    table = Table(title=f"{column.removesuffix('_tuned')} per criterion (T: temperature; ECE "
                        "before -> after calibration)", title_justify="left")
    for name in ("criterion", "threshold", "T", "F1 [95% interval]", "ECE", "positives"):
        table.add_column(name, justify="left" if name == "criterion" else "right")
    for cid in criteria:
        table.add_row(cid, f"{found[f'{cid}/threshold']:.3f}",
                      f"{metrics[f'temperature/{cid}']:.2f}", _cell(found, f"{cid}/f1"),
                      f"{found[f'{cid}/ece_raw']:.3f} -> {found[f'{cid}/ece']:.3f}",
                      str(found[f"{cid}/support"]))
    return table


def evidence_table(metrics: dict, columns: Sequence[str] = ("val_tuned", "test_tuned")) -> Table:
    table = Table(title="sentence evidence: an annotated sentence among the top 1 / top 3, "
                        "over positive (post, criterion) cells", title_justify="left")
    for name in ("split", "cells", "model", "random sentence", "most word overlap"):
        table.add_column(name, justify="left" if name == "split" else "right")
    for column in columns:
        found = _column(metrics, column)
        if "evidence_pairs" not in found:
            continue
        table.add_row(column.removesuffix("_tuned"), str(int(found["evidence_pairs"])),
                      *(f"{found[f'evidence_{who}hit_at_1']:.3f} / "
                        f"{found[f'evidence_{who}hit_at_3']:.3f}"
                        for who in ("", "random_", "overlap_")))
    return table


def _column(metrics: dict, column: str) -> dict:
    prefix = f"{column}/"
    return {k.removeprefix(prefix): v for k, v in metrics.items() if k.startswith(prefix)}
