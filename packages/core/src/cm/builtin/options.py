"""Options of cm-core's built-in losses, optimizers and schedulers: the TOML tables under
``[train.loss]``, ``[train.optimizer]`` and ``[train.scheduler]``. Kept apart from the
implementations so ``cm plugins`` and ``cm config`` describe and validate them without
importing torch."""

from attrs import Factory, field, frozen
from attrs.validators import and_, deep_iterable, ge, gt, le, lt, max_len, min_len, optional


@frozen
class BCEOptions:
    # Use the caller's train-split n_neg/n_pos; an explicit pos_weight wins over it.
    auto_pos_weight: bool = True
    pos_weight: float | None = field(default=None, validator=optional(gt(0.0)))


@frozen
class WeightedCEOptions:
    # [no match, match] weights: [1, pos_weight] from the train split unless class_weights
    # is given; either way normalised to mean 1.
    auto_class_weights: bool = True
    class_weights: list[float] | None = field(
        default=None,
        validator=optional(deep_iterable(gt(0.0), and_(min_len(2), max_len(2)))),
    )
    label_smoothing: float = field(default=0.0, validator=[ge(0.0), lt(1.0)])


@frozen
class FocalOptions:
    gamma: float = field(default=2.0, validator=ge(0.0))
    # Weight of the positive class (1 - alpha for negatives); None = unweighted.
    alpha: float | None = field(default=0.25, validator=optional([ge(0.0), le(1.0)]))


def _betas():
    return field(
        default=Factory(lambda: [0.9, 0.999]),
        validator=deep_iterable(and_(ge(0.0), lt(1.0)), and_(min_len(2), max_len(2))),
    )


def _eps():
    return field(default=1e-8, validator=gt(0.0))


@frozen
class AdamWOptions:
    betas: list[float] = _betas()
    eps: float = _eps()
    # torch's single-kernel step, on CUDA and (torch >= 2.4) CPU; optimizations.fused_adamw
    # turns it on.
    fused: bool = False


@frozen
class AdamW8bitOptions:
    betas: list[float] = _betas()
    eps: float = _eps()


@frozen
class WarmupOptions:
    warmup_ratio: float = field(default=0.1, validator=[ge(0.0), lt(1.0)])


@frozen
class CosineOptions:
    warmup_ratio: float = field(default=0.1, validator=[ge(0.0), lt(1.0)])
    # Final LR as a fraction of the peak: the half-cosine ends here rather than at 0.
    min_lr_ratio: float = field(default=0.0, validator=[ge(0.0), le(1.0)])
