"""P(match) made true on validation: the loss's prior shift undone, then a Platt calibrator.

Both steps work on the logit ``z`` of a probability (for a two-logit softmax head that is the
logit difference):

1. prior: ``z - shift``, where ``shift`` is the log-odds the training loss adds to the data's
   (``bce`` with ``pos_weight`` w: ``log w``; see ``cm.contracts.Loss``);
2. platt: ``slope * (z - shift) + bias_c``: one slope shared by the criteria, one bias per
   criterion, shrunk toward the shared bias by the criterion's number of positives
   (``b_c = w * own_c + (1 - w) * shared``, ``w = n_pos / (n_pos + PRIOR_POSITIVES)``).

Each is fitted on the validation cells the headline decides (posts; at sentence level a
cell's probability is its highest sentence's) and kept only when it lowers their NLL without
raising their ECE, so calibration never makes validation worse: ``kept`` records which steps
survived (``none``, ``prior``, ``platt``). Per criterion the map is monotone, so it changes no
ranking, and thresholds tuned after it make the same decisions.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import attrs
import numpy as np

from cm.errors import UserError
from cm.evaluate.calibration import ece
from cm.evaluate.metrics import checked, natural_sorted

EPS = 1e-7
PRIOR_POSITIVES = 10  # pseudo-positives pulling a criterion's bias toward the shared one
BIAS_BOUND = 30.0  # |bias| and the criterion's own bias search stay inside this
STEPS = ("none", "prior", "platt")


def logit(p: Any) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def nll(labels: np.ndarray, z: np.ndarray) -> float:
    """Mean negative log-likelihood of 0/1 ``labels`` under logits ``z``, written stably."""
    return float(np.mean(np.logaddexp(0.0, z) - labels * z))


@attrs.frozen
class Calibrator:
    """``p' = sigmoid(slopes[c] * (logit(p) - shift) + biases[c])`` per criterion ``c``."""

    kept: str  # the last step kept: "none", "prior" or "platt" ("temperature": an old checkpoint)
    shift: float
    slopes: dict[str, float]
    biases: dict[str, float]

    @classmethod
    def identity(cls, criteria: Sequence[str]) -> Calibrator:
        return cls("none", 0.0, dict.fromkeys(criteria, 1.0), dict.fromkeys(criteria, 0.0))

    def apply(self, criterion_ids: Sequence[Hashable], probs: Any) -> np.ndarray:
        ids = [str(c) for c in criterion_ids]
        slope = np.asarray([self.slopes[c] for c in ids], dtype=float)
        bias = np.asarray([self.biases[c] for c in ids], dtype=float)
        return sigmoid(slope * (logit(probs) - self.shift) + bias)

    def meta(self) -> dict:
        return attrs.asdict(self)

    @classmethod
    def from_meta(cls, meta: dict) -> Calibrator:
        """From a checkpoint's meta.json: ``calibrator``, or an older checkpoint's
        ``temperatures`` (logit / T: slope 1 / T, no shift, no bias)."""
        if "calibrator" in meta:
            found = meta["calibrator"]
            fields = [f.name for f in attrs.fields(cls)]
            if not isinstance(found, dict) or sorted(found) != sorted(fields):
                raise UserError("checkpoint meta.json: 'calibrator' must be a table of "
                                f"{', '.join(fields)}; re-save the checkpoint with "
                                "`cm replay --run-id ID --eval-only`")
            return cls(**found)
        slopes = {c: 1.0 / t for c, t in meta["temperatures"].items()}
        return cls("temperature", 0.0, slopes, dict.fromkeys(slopes, 0.0))

    def metrics(self) -> dict[str, float]:
        """``calibration/prior_kept`` (1: the shift is subtracted), ``calibration/platt_kept``,
        ``calibration/shift`` and per criterion ``calibration/<id>/slope`` and ``.../bias``:
        numbers, so a tracker logs them."""
        out = {"calibration/prior_kept": float(bool(self.shift)),
               "calibration/platt_kept": float(self.kept == "platt"),
               "calibration/shift": self.shift}
        for cid in self.slopes:
            out.update({f"calibration/{cid}/slope": self.slopes[cid],
                        f"calibration/{cid}/bias": self.biases[cid]})
        return out


def fit_platt(ids: np.ndarray, y: np.ndarray, z: np.ndarray,
              prior: float = PRIOR_POSITIVES) -> tuple[float, dict[str, float]]:
    """The shared slope and each criterion's bias (shrunk toward the shared bias)."""
    from scipy.optimize import minimize  # scikit-learn's dependency

    shared = minimize(lambda ab: nll(y, ab[0] * z + ab[1]), x0=np.array([1.0, 0.0]),
                      method="L-BFGS-B", bounds=[(1e-3, 1e3), (-BIAS_BOUND, BIAS_BOUND)])
    slope, bias = (float(v) for v in shared.x)
    biases = {}
    for cid in natural_sorted(set(ids)):
        mine = ids == cid
        positives = int(y[mine].sum())
        weight = positives / (positives + prior)
        own = own_bias(y[mine], slope * z[mine]) if 0 < positives < mine.sum() else bias
        biases[cid] = weight * own + (1 - weight) * bias
    return slope, biases


def own_bias(y: np.ndarray, scaled: np.ndarray) -> float:
    """The bias minimising the NLL of ``y`` under logits ``scaled + bias``."""
    from scipy.optimize import minimize_scalar

    return float(minimize_scalar(lambda b: nll(y, scaled + b), bounds=(-BIAS_BOUND, BIAS_BOUND),
                                 method="bounded").x)


def fit_calibrator(mode: str, criterion_ids: Sequence[Hashable], labels: Any, probs: Any,
                   shift: float | None) -> Calibrator:
    """The calibrator for ``eval.calibration`` (``"platt"``, ``"prior"`` or ``"none"``) from
    validation cells; ``shift``: the loss's prior shift (None: the loss cannot say)."""
    y, p = checked(labels, probs)
    ids = np.asarray([str(c) for c in criterion_ids], dtype=object)
    names = natural_sorted(set(ids))
    chosen = Calibrator.identity(names)
    if mode not in STEPS:
        raise ValueError(f"calibration must be one of {STEPS}: {mode!r}")
    if mode == "none" or y.min() == y.max():
        return chosen
    candidates = []
    if shift:
        candidates.append(attrs.evolve(chosen, kept="prior", shift=float(shift)))
    if mode == "platt":
        slope, biases = fit_platt(ids, y, logit(p) - (shift or 0.0))
        candidates.append(Calibrator("platt", float(shift or 0.0), dict.fromkeys(names, slope),
                                     biases))
    for candidate in candidates:
        if better(y, ids, p, candidate, chosen):
            chosen = candidate
    return chosen


def better(y: np.ndarray, ids: np.ndarray, p: np.ndarray, candidate: Calibrator,
           incumbent: Calibrator) -> bool:
    """Lower validation NLL and no higher validation ECE than ``incumbent``."""
    new, old = candidate.apply(ids, p), incumbent.apply(ids, p)
    return nll(y, logit(new)) < nll(y, logit(old)) and ece(y, new) <= ece(y, old)
