"""Options of the heads (``[model.head]``) and poolings (``[model.pooling]``), kept apart
from the torch modules so ``cm plugins`` and ``cm config`` use them without importing torch."""

from typing import Literal

from attrs import field, frozen
from attrs.validators import and_, deep_iterable, ge, in_, le, lt, min_len, optional

from cm import limits

ACTIVATION_NAMES = ("relu", "gelu", "silu", "tanh")


def _dropout():
    """Shared by both heads so "dropout = 1.0" fails the same way everywhere: p=1 zeroes
    the pooled vector in training and the head could only learn its bias."""
    return field(default=0.1, validator=[ge(0.0), lt(1.0)])


@frozen
class LinearHeadOptions:
    dropout: float = _dropout()


@frozen
class MLPHeadOptions:
    # A tuple so the frozen options stay hashable; TOML arrays decode into it and a Python
    # list is converted. Empty is rejected: that is the ``linear`` head.
    hidden_dims: tuple[int, ...] = field(
        default=(256,),
        converter=tuple,
        validator=deep_iterable(member_validator=and_(ge(1), le(limits.HIDDEN_SIZE)),
                                iterable_validator=min_len(1)),
    )
    activation: Literal["relu", "gelu", "silu", "tanh"] = field(
        default="relu", validator=in_(ACTIVATION_NAMES)
    )
    dropout: float = _dropout()
    layer_norm: bool = False


@frozen
class NoPoolingOptions:
    """``cls``, ``mean``, ``max`` and ``cls_mean`` have nothing to tune."""


@frozen
class AttentionPoolingOptions:
    # None: one Linear(H, 1) scores each token. An int d: Linear(H, d) -> tanh -> Linear(d, 1),
    # the additive attention of Bahdanau et al., for scores that are not linear in the state.
    hidden_dim: int | None = field(default=None,
                                  validator=optional(and_(ge(1), le(limits.HIDDEN_SIZE))))


@frozen
class WeightedLayersOptions:
    # How many of the last hidden states to mix; all_hidden holds the embeddings output plus
    # every layer, so a 12-layer backbone allows up to 13.
    layers: int = field(default=4, validator=ge(1))
    # Token reduction applied to every mixed layer: its [CLS] state, or the masked mean.
    reduce: Literal["cls", "mean"] = field(default="cls", validator=in_(("cls", "mean")))
