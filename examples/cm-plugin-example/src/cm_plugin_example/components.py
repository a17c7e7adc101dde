"""The example's torch code, imported only when a run builds one of its components."""

import torch
from torch import nn

from cm.optimization import Optimization


class ScaledLinear(nn.Module):
    """A linear head on the L2-normalised pooled vector with a learned temperature."""

    def __init__(self, options, in_features, num_logits):
        super().__init__()
        self.linear = nn.Linear(in_features, num_logits)
        self.scale = nn.Parameter(torch.tensor(float(options.init_scale)))

    def forward(self, pooled):
        return self.scale * self.linear(nn.functional.normalize(pooled, dim=-1))


class Deterministic(Optimization):
    """torch.use_deterministic_algorithms: reproducibility at some speed cost."""

    def apply(self, context):
        torch.use_deterministic_algorithms(True, warn_only=self.options.warn_only)
