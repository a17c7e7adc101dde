"""Temperature scaling of P(match), fitted on validation, and how calibrated a set of
probabilities is (ECE over 15 equal-width bins, Brier score, reliability diagram).

Scaling works on the probability's logit: ``p' = sigmoid(logit(p) / T)``. For a one-logit
(sigmoid) head that is exactly temperature scaling of the logit; for a two-logit softmax head
``logit(p)`` is the logit difference, so it is exactly scaling both logits. ``T`` is fitted by
minimising the negative log-likelihood on validation; ``T > 1`` softens over-confident scores.
A monotone map, it changes no ranking and (thresholds tuned after it) no decision.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from cm.evaluate.metrics import checked, natural_sorted

BINS = 15
EPS = 1e-7
LOG_T_BOUNDS = (-4.0, 4.0)  # T between e^-4 and e^4


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def scale(probs: Any, temperature: float) -> np.ndarray:
    """``probs`` with their logits divided by ``temperature``."""
    z = _logit(np.asarray(probs, dtype=float)) / temperature
    return 1.0 / (1.0 + np.exp(-z))


def _nll(y: np.ndarray, z: np.ndarray, temperature: float) -> float:
    s = z / temperature  # log(1 + e^s) - y*s, written stably
    return float(np.mean(np.logaddexp(0.0, s) - y * s))


def fit_temperature(labels: Any, probs: Any) -> float:
    """The temperature minimising validation NLL (1.0 when the labels hold one class only:
    there is nothing to calibrate against)."""
    from scipy.optimize import minimize_scalar  # scikit-learn's dependency; slow import

    y, p = checked(labels, probs)
    if y.min() == y.max():
        return 1.0
    z = _logit(p)
    found = minimize_scalar(lambda log_t: _nll(y, z, np.exp(log_t)), bounds=LOG_T_BOUNDS,
                            method="bounded", options={"xatol": 1e-6})
    return float(np.exp(found.x))


def fit_temperatures(mode: str, criterion_ids: Sequence[Hashable], labels: Any,
                     probs: Any) -> dict[str, float]:
    """Criterion id -> temperature for ``eval.calibration``: ``"global"`` (one fitted on
    every cell), ``"per_criterion"`` (one per criterion) or ``"none"`` (1.0)."""
    y, p = checked(labels, probs)
    ids = np.asarray([str(c) for c in criterion_ids], dtype=object)
    names = natural_sorted(set(ids))
    if mode == "none":
        return dict.fromkeys(names, 1.0)
    if mode == "global":
        return dict.fromkeys(names, fit_temperature(y, p))
    if mode != "per_criterion":
        raise ValueError(f"calibration must be 'global', 'per_criterion' or 'none': {mode!r}")
    return {name: fit_temperature(y[ids == name], p[ids == name]) for name in names}


def apply(criterion_ids: Sequence[Hashable], probs: Any,
          temperatures: dict[str, float]) -> np.ndarray:
    """Each probability scaled by its criterion's temperature."""
    t = np.asarray([temperatures[str(c)] for c in criterion_ids], dtype=float)
    return scale(probs, t)


def _bins(p: np.ndarray, bins: int) -> np.ndarray:
    return np.minimum((p * bins).astype(np.int64), bins - 1)  # [0, 1/15), ..., [14/15, 1]


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


def reliability_png(path, labels: Any, before: Any, after: Any, title: str, bins: int = BINS):
    """Mean predicted probability vs fraction of matches per bin, before and after scaling."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6, 4.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    for name, probs in (("before", before), ("after", after)):
        y, p = checked(labels, probs)
        which = _bins(p, bins)
        count = np.bincount(which, minlength=bins)
        used = count > 0
        mean_p = np.bincount(which, weights=p, minlength=bins)[used] / count[used]
        rate = np.bincount(which, weights=y, minlength=bins)[used] / count[used]
        ax.plot(mean_p, rate, marker="o", label=f"{name} (ECE {ece(y, p, bins):.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean P(match) in bin")
    ax.set_ylabel("fraction of matches")
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
