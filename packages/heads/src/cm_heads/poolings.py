"""Poolings: token states -> one vector per sequence, for the head.

Contract (cm's pooling hook): ``factory(options, hidden_size, num_layers)`` returns a module
with ``out_features``; ``forward(hidden [B,T,H], mask [B,T], all_hidden)`` -> [B, out].
``mask`` is 1 on real tokens (position 0 is [CLS]) and 0 on padding; packed batches are
unpacked into this padded form first, so every pooling here must give a sequence the same
vector whatever padding sits beside it. Padding is therefore removed with ``torch.where``
(never by multiplying with the mask): ``0 * inf`` and ``0 * nan`` are nan, and a padded
position must not leak into the result or receive gradient.

Each module also says ``needs_all_hidden``: whether the model must run the backbone with
``output_hidden_states=True`` (only ``weighted_layers`` does).
"""

import torch
from torch import nn

from cm.errors import UserError
from cm_heads.options import AttentionPoolingOptions, NoPoolingOptions, WeightedLayersOptions


def _keep(mask: torch.Tensor) -> torch.Tensor:
    """[B,T] 0/1 mask of any dtype -> [B,T,1] bool, ready to broadcast over H."""
    return mask.bool().unsqueeze(-1)


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens ([CLS] and [SEP] included); an all-padding row gives zeros."""
    keep = _keep(mask)
    total = torch.where(keep, hidden, 0.0).sum(dim=1)
    count = keep.sum(dim=1).clamp(min=1).to(total.dtype)
    return total / count


def masked_max(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over real tokens; padding is filled with the dtype's lowest finite value, so it
    cannot win even against very negative states (and -inf never reaches the graph)."""
    lowest = torch.finfo(hidden.dtype).min
    return torch.where(_keep(mask), hidden, lowest).amax(dim=1)


class ClsPooling(nn.Module):
    """The [CLS] state of the last layer: what the cross-encoder was pre-trained to use."""

    needs_all_hidden = False

    def __init__(self, options: NoPoolingOptions, hidden_size: int, num_layers: int):
        super().__init__()
        self.out_features = hidden_size

    def forward(self, hidden, mask, all_hidden=None):
        return hidden[:, 0]


class MeanPooling(nn.Module):
    needs_all_hidden = False

    def __init__(self, options: NoPoolingOptions, hidden_size: int, num_layers: int):
        super().__init__()
        self.out_features = hidden_size

    def forward(self, hidden, mask, all_hidden=None):
        return masked_mean(hidden, mask)


class MaxPooling(nn.Module):
    needs_all_hidden = False

    def __init__(self, options: NoPoolingOptions, hidden_size: int, num_layers: int):
        super().__init__()
        self.out_features = hidden_size

    def forward(self, hidden, mask, all_hidden=None):
        return masked_max(hidden, mask)


class ClsMeanPooling(nn.Module):
    """[CLS] next to the masked mean (same mean as ``mean``): out_features = 2H."""

    needs_all_hidden = False

    def __init__(self, options: NoPoolingOptions, hidden_size: int, num_layers: int):
        super().__init__()
        self.out_features = 2 * hidden_size

    def forward(self, hidden, mask, all_hidden=None):
        return torch.cat([hidden[:, 0], masked_mean(hidden, mask)], dim=-1)


class AttentionPooling(nn.Module):
    """A learned scalar score per token, softmax over real tokens, weighted sum of states."""

    needs_all_hidden = False

    def __init__(self, options: AttentionPoolingOptions, hidden_size: int, num_layers: int):
        super().__init__()
        self.out_features = hidden_size
        # No bias on the last Linear: softmax ignores a shift shared by all tokens, so that
        # bias would never get a gradient.
        if options.hidden_dim is None:
            self.scorer = nn.Linear(hidden_size, 1, bias=False)
        else:
            self.scorer = nn.Sequential(
                nn.Linear(hidden_size, options.hidden_dim),
                nn.Tanh(),
                nn.Linear(options.hidden_dim, 1, bias=False),
            )

    def weights(self, hidden, mask):
        """[B,T] float32 attention weights: sum to 1 over real tokens, exactly 0 on padding.

        Padding states are zeroed before scoring, so a nan there cannot reach the scorer's
        gradient. Softmax runs in float32 so bf16/fp16 autocast does not flatten the
        distribution; padding gets float32's lowest value rather than -inf, so exp()
        underflows to 0 and a row without real tokens gives uniform weights, never nan.
        """
        return self._weights(torch.where(_keep(mask), hidden, 0.0), mask)

    def _weights(self, states, mask):
        scores = self.scorer(states).squeeze(-1).float()
        scores = scores.masked_fill(~mask.bool(), torch.finfo(torch.float32).min)
        return torch.softmax(scores, dim=-1)

    def forward(self, hidden, mask, all_hidden=None):
        states = torch.where(_keep(mask), hidden, 0.0)
        weights = self._weights(states, mask).unsqueeze(-1)
        return (weights * states).sum(dim=1).to(hidden.dtype)


class WeightedLayersPooling(nn.Module):
    """A learned, softmax-normalised scalar mix of the last ``layers`` hidden states, then
    ``reduce`` (CLS by default) -- ELMo's scalar mix, without its global scale, since the
    head's first Linear can learn any scale.

    The mix weights start equal (zero logits). Reducing each layer before mixing is the same
    as mixing then reducing (both are linear) and avoids a [k,B,T,H] copy of the states.
    """

    needs_all_hidden = True

    def __init__(self, options: WeightedLayersOptions, hidden_size: int, num_layers: int):
        super().__init__()
        available = num_layers + 1
        if options.layers > available:
            raise UserError(
                f"model.pooling: weighted_layers mixes layers = {options.layers} hidden states, "
                f"but a backbone with {num_layers} layers has only {available} (embeddings + "
                f"layers); set model.pooling.layers <= {available}"
            )
        self.out_features = hidden_size
        self.reduce = options.reduce
        self.layer_logits = nn.Parameter(torch.zeros(options.layers))

    def layer_weights(self):
        """Mix weights, oldest of the mixed layers first (the last one is the top layer)."""
        return torch.softmax(self.layer_logits, dim=0)

    def forward(self, hidden, mask, all_hidden=None):
        k = self.layer_logits.numel()
        if all_hidden is None:
            raise ValueError(
                "weighted_layers pooling needs every layer's hidden states: run the backbone "
                "with output_hidden_states=True and pass them as all_hidden"
            )
        if len(all_hidden) < k:
            raise ValueError(
                f"weighted_layers pooling mixes the last {k} hidden states but all_hidden has "
                f"only {len(all_hidden)}; lower 'layers'"
            )
        if self.reduce == "cls":
            reduced = [states[:, 0] for states in all_hidden[-k:]]
        else:
            reduced = [masked_mean(states, mask) for states in all_hidden[-k:]]
        stacked = torch.stack(reduced)  # [k, B, H]
        mixed = (self.layer_weights()[:, None, None] * stacked).sum(dim=0)
        return mixed.to(hidden.dtype)
