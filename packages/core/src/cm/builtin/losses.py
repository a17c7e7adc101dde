"""Binary match losses: logits [N, num_logits] and 0/1 labels [N] -> a scalar.

Each loss owns ``num_logits`` (so the engine sizes the head from the loss, not the other
way round), ``probabilities`` (so evaluation turns logits into P(match) the same way the
loss was trained) and ``prior_shift`` (the log-odds its weighting adds to those
probabilities, which calibration subtracts; None where no such constant exists).
``pos_weight`` is n_neg / n_pos from the train split, or None when the caller does not
know it; ReDSM5 criteria are mostly negatives, hence the weighting.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from cm.builtin.options import BCEOptions, FocalOptions, WeightedCEOptions


def _single(logits):
    """[N, 1] or [N] -> [N]: one-logit losses accept both, and refuse a two-logit head."""
    if logits.dim() == 2 and logits.shape[1] == 1:
        return logits[:, 0]
    if logits.dim() == 1:
        return logits
    raise ValueError(f"expected logits of shape [N, 1], got {list(logits.shape)}")


class BCELoss(nn.Module):
    """BCE with logits on one logit; ``pos_weight`` scales the positive term."""

    num_logits = 1

    def __init__(self, pos_weight: float | None = None):
        super().__init__()
        # A buffer so ``.to(device)`` moves it with the model; None means unweighted.
        weight = None if pos_weight is None else torch.tensor(float(pos_weight))
        self.register_buffer("pos_weight", weight)

    def forward(self, logits, labels):
        weight = None if self.pos_weight is None else self.pos_weight.to(logits.dtype)
        return F.binary_cross_entropy_with_logits(
            _single(logits), labels.reshape(-1).to(logits.dtype), pos_weight=weight
        )

    def probabilities(self, logits):
        return torch.sigmoid(_single(logits))

    @property
    def prior_shift(self) -> float:
        """Weighting positives by w multiplies the fitted odds by w: log w."""
        return 0.0 if self.pos_weight is None else math.log(float(self.pos_weight))


def bce(options: BCEOptions, pos_weight: float | None) -> BCELoss:
    if options.pos_weight is not None:
        return BCELoss(options.pos_weight)
    return BCELoss(pos_weight if options.auto_pos_weight else None)


def normalised(weights):
    """Scale class weights to mean 1, so only their ratio matters, not the user's units."""
    total = sum(weights)
    return [len(weights) * w / total for w in weights]


class WeightedCELoss(nn.Module):
    """Cross-entropy over two logits [no match, match] with optional class weights."""

    num_logits = 2

    def __init__(self, class_weights=None, label_smoothing: float = 0.0):
        super().__init__()
        weight = None if class_weights is None else torch.tensor(normalised(class_weights))
        self.register_buffer("class_weights", weight)
        self.label_smoothing = label_smoothing

    def forward(self, logits, labels):
        return F.cross_entropy(
            logits,
            labels.reshape(-1).long(),
            weight=None if self.class_weights is None else self.class_weights.to(logits.dtype),
            label_smoothing=self.label_smoothing,
        )

    def probabilities(self, logits):
        return torch.softmax(logits, dim=-1)[:, 1]

    @property
    def prior_shift(self) -> float:
        """Class weights [w0, w1] multiply the fitted odds by w1 / w0 (label smoothing also
        pulls probabilities toward 0.5; the Platt step fits what remains)."""
        if self.class_weights is None:
            return 0.0
        return math.log(float(self.class_weights[1] / self.class_weights[0]))


def weighted_ce(options: WeightedCEOptions, pos_weight: float | None) -> WeightedCELoss:
    weights = options.class_weights
    if weights is None and options.auto_class_weights and pos_weight is not None:
        weights = [1.0, pos_weight]
    return WeightedCELoss(weights, options.label_smoothing)


class FocalLoss(nn.Module):
    """Sigmoid focal loss (Lin et al., 2017): BCE scaled by (1 - p_t) ** gamma so easy,
    confidently-right pairs (most negatives here) stop dominating the gradient."""

    num_logits = 1
    # (1 - p_t) ** gamma and alpha distort the probabilities, not by a constant log-odds:
    # nothing to subtract, the Platt step of calibration is what corrects them.
    prior_shift = None

    def __init__(self, gamma: float = 2.0, alpha: float | None = 0.25):
        super().__init__()
        self.gamma = gamma
        self.alpha = alpha

    def forward(self, logits, labels):
        logits = _single(logits)
        labels = labels.reshape(-1).to(logits.dtype)
        ce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        p = torch.sigmoid(logits)
        p_t = p * labels + (1 - p) * (1 - labels)
        loss = ce * (1 - p_t) ** self.gamma
        if self.alpha is not None:
            loss = loss * (self.alpha * labels + (1 - self.alpha) * (1 - labels))
        return loss.mean()

    def probabilities(self, logits):
        return torch.sigmoid(_single(logits))


def focal(options: FocalOptions, pos_weight: float | None) -> FocalLoss:
    """``pos_weight`` is not used: ``alpha`` is focal loss's own class balance."""
    return FocalLoss(options.gamma, options.alpha)
