"""Classification heads: pooled vector [B, in_features] -> logits [B, num_logits].

Factories follow cm's head contract ``factory(options, in_features, num_logits)``; the
options classes are the TOML tables under ``[model.head]``.
"""

from typing import Literal

import attrs
from attrs import field, frozen
from attrs.validators import deep_iterable, ge, lt, min_len
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


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
        validator=deep_iterable(member_validator=ge(1), iterable_validator=min_len(1)),
    )
    activation: Literal["relu", "gelu", "silu", "tanh"] = field(
        default="relu", validator=attrs.validators.in_(tuple(ACTIVATIONS))
    )
    dropout: float = _dropout()
    layer_norm: bool = False


def linear_head(options: LinearHeadOptions, in_features: int, num_logits: int) -> nn.Module:
    """Dropout then one Linear: the classic BERT classification head."""
    return nn.Sequential(nn.Dropout(options.dropout), nn.Linear(in_features, num_logits))


def mlp_head(options: MLPHeadOptions, in_features: int, num_logits: int) -> nn.Module:
    """``len(hidden_dims) + 1`` Linear layers; each is preceded by dropout (as in ``linear``)
    and each hidden one is followed by an optional LayerNorm and the activation.

    The default is the baseline 768 -> 256 -> 2 ReLU head with dropout 0.1.
    """
    layers = []
    width = in_features
    for dim in options.hidden_dims:
        layers += [nn.Dropout(options.dropout), nn.Linear(width, dim)]
        if options.layer_norm:
            layers.append(nn.LayerNorm(dim))
        layers.append(ACTIVATIONS[options.activation]())
        width = dim
    layers += [nn.Dropout(options.dropout), nn.Linear(width, num_logits)]
    return nn.Sequential(*layers)
