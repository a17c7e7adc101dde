"""The terminal summary of a run's final evaluation: headline scores with their 95% intervals
(the 9-criterion macro-F1 first), one row per criterion, and sentence evidence beside its
baselines. Reads the flat ``{column}/{name}`` metrics the engine stores in ``run.metrics``."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

HEADLINE = (("post_macro_f1", "9-criterion macro-F1"), ("post_micro_f1", "criterion micro-F1"),
            ("macro_f1", "pair macro-F1 (2 classes)"), ("f1", "pair F1 (match)"),
            ("pr_auc", "pair PR-AUC"), ("roc_auc", "pair ROC-AUC"),
            ("ece", "ECE (15 bins, cells), calibrated"), ("ece_raw", "ECE before calibration"),
            ("brier", "Brier, calibrated"), ("brier_raw", "Brier before calibration"))


def _cell(metrics: dict, key: str) -> str:
    value = metrics.get(key)
    if value is None:
        return "-"
    low, high = metrics.get(f"{key}_low"), metrics.get(f"{key}_high")
    return f"{value:.3f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None else "")


def headline_table(metrics: dict,
                   columns: Sequence[str] = ("val_tuned", "test_tuned", "floor/test")) -> Table:
    """One column per split, the TF-IDF floor's test column beside them when it was fitted."""
    table = Table(title="at the tuned decisions (95% bootstrap interval over posts)",
                  title_justify="left")
    table.add_column("metric")
    columns = [c for c in columns if any(k.startswith(f"{c}/") for k in metrics)]
    for column in columns:
        table.add_column(column.removesuffix("_tuned").replace("floor/", "TF-IDF floor, "),
                         justify="right")
    for key, label in HEADLINE:
        if any(f"{c}/{key}" in metrics for c in columns):
            table.add_row(label, *(_cell(_column(metrics, c), key) for c in columns))
    return table


def floor_verdict(metrics: dict) -> str:
    """Whether the model beats the TF-IDF floor on the test 9-criterion macro-F1, said plainly."""
    model, floor = metrics["test_tuned/post_macro_f1"], metrics["floor/test/post_macro_f1"]
    if model <= floor:
        return (f"[bold red]the model does not beat the TF-IDF floor[/bold red] on test: "
                f"9-criterion macro-F1 {model:.3f} against the floor's {floor:.3f}")
    return (f"the model beats the TF-IDF floor on test by {model - floor:.3f} 9-criterion "
            f"macro-F1 ({model:.3f} against {floor:.3f}; see the intervals above)")


def calibration_line(calibrator, loss) -> str:
    """Which calibration steps were kept on val, and a note for a loss that says nothing
    about its prior shift."""
    kept = {"none": "none (each step would have made val worse, or there was nothing to fit)",
            "prior": f"the loss's prior shift ({calibrator.shift:+.3f} log-odds) subtracted",
            "platt": f"Platt (shared slope, per-criterion bias) after a shift of "
                     f"{calibrator.shift:+.3f} log-odds",
            "temperature": "a temperature per criterion (an older checkpoint)"}[calibrator.kept]
    line = f"calibration kept on val: {kept}"
    if not hasattr(loss, "prior_shift"):
        line += (f"; note: the loss {type(loss).__name__} declares no prior_shift, so none "
                 "was undone (cm.contracts.Loss)")
    return line


def criterion_table(metrics: dict, criteria: Sequence[str], column: str = "test_tuned") -> Table:
    found = _column(metrics, column)
    table = Table(title=f"{column.removesuffix('_tuned')} per criterion (calibrated logit = "
                        "slope * (logit - shift) + bias; ECE before -> after calibration)",
                  title_justify="left")
    for name in ("criterion", "threshold", "slope", "bias", "F1 [95% interval]", "ECE",
                 "positives"):
        table.add_column(name, justify="left" if name == "criterion" else "right")
    for cid in criteria:
        table.add_row(cid, f"{found[f'{cid}/threshold']:.3f}",
                      f"{metrics[f'calibration/{cid}/slope']:.2f}",
                      f"{metrics[f'calibration/{cid}/bias']:+.2f}", _cell(found, f"{cid}/f1"),
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
