"""Classification heads: pooled vector [B, in_features] -> logits [B, num_logits].

Factories follow cm's head contract ``factory(options, in_features, num_logits)``; the
options classes are the TOML tables under ``[model.head]``.
"""


from torch import nn

from cm_heads.options import ACTIVATION_NAMES, LinearHeadOptions, MLPHeadOptions

ACTIVATIONS = dict(zip(ACTIVATION_NAMES, (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh), strict=True))


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
