"""How calibrated a set of probabilities is: ECE over 15 equal-width bins (with a bootstrap
interval over posts), Brier score, reliability per bin (a table per criterion, a diagram).
What makes them calibrated is ``cm.evaluate.calibrator``."""

from __future__ import annotations

from typing import Any

import numpy as np

from cm.evaluate.metrics import checked

BINS = 15


def _bins(p: np.ndarray, bins: int) -> np.ndarray:
    return np.minimum((p * bins).astype(np.int64), bins - 1)  # [0, 1/15), ..., [14/15, 1]


def ece_resampled(labels: Any, probs: Any, weights: np.ndarray, bins: int = BINS) -> np.ndarray:
    """ECE under each row of ``weights`` (resamples x cells: how often each cell is drawn)."""
    y, p = checked(labels, probs)
    onehot = np.eye(bins)[_bins(p, bins)]  # cells x bins
    gap = np.abs(weights @ (onehot * (p - y)[:, None]))
    return gap.sum(axis=1) / weights.sum(axis=1)


def ece(labels: Any, probs: Any, bins: int = BINS) -> float:
    """Expected calibration error of P(match): over equal-width probability bins, the
    share-weighted gap between the mean probability and the fraction of matches."""
    y, p = checked(labels, probs)
    which = _bins(p, bins)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, weights=p, minlength=bins)
                 - np.bincount(which, weights=y, minlength=bins))
    return float(gap.sum() / count.sum())


def brier(labels: Any, probs: Any) -> float:
    """Mean squared difference between P(match) and the 0/1 label."""
    y, p = checked(labels, probs)
    return float(np.mean((p - y) ** 2))


def reliability(labels: Any, probs: Any, bins: int = BINS):
    """Per non-empty bin: its index, the mean probability and the fraction of matches."""
    y, p = checked(labels, probs)
    which = _bins(p, bins)
    count = np.bincount(which, minlength=bins)
    used = np.flatnonzero(count)
    mean_p = np.bincount(which, weights=p, minlength=bins)[used] / count[used]
    rate = np.bincount(which, weights=y, minlength=bins)[used] / count[used]
    return used, mean_p, rate


def reliability_rows(criterion_ids: Any, labels: Any, probs: Any, criteria: Any,
                     bins: int = BINS) -> list[list]:
    """Per criterion and non-empty bin: criterion, bin bounds, cells, mean probability,
    fraction of matches (the reliability diagram of each criterion, as numbers)."""
    ids = np.asarray([str(c) for c in criterion_ids], dtype=object)
    y, p = checked(labels, probs)
    rows = []
    for cid in criteria:
        mine = ids == cid
        if not mine.any():
            continue
        counts = np.bincount(_bins(p[mine], bins), minlength=bins)
        for b, mean_p, rate in zip(*reliability(y[mine], p[mine], bins), strict=True):
            rows.append([cid, round(b / bins, 6), round((b + 1) / bins, 6), int(counts[b]),
                         round(float(mean_p), 6), round(float(rate), 6)])
    return rows


def reliability_png(path, labels: Any, before: Any, after: Any, title: str, bins: int = BINS):
    """Mean predicted probability vs fraction of matches per bin, before and after scaling."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6, 4.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    for name, probs in (("before", before), ("after", after)):
        _, mean_p, rate = reliability(labels, probs, bins)
        ax.plot(mean_p, rate, marker="o", label=f"{name} (ECE {ece(labels, probs, bins):.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean P(match) in bin")
    ax.set_ylabel("fraction of matches")
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
