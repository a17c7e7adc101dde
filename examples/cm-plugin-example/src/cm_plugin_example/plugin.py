"""One head and one optimization, registered the way any third-party plugin does it."""

import attrs
import torch
from attrs.validators import gt
from torch import nn

from cm.hookspecs import hookimpl
from cm.optimization import Optimization, OptimizationOptions


@attrs.frozen
class ScaledLinearOptions:
    init_scale: float = attrs.field(default=1.0, validator=gt(0.0))


class ScaledLinear(nn.Module):
    """A linear head on the L2-normalised pooled vector with a learned temperature."""

    def __init__(self, options, in_features, num_logits):
        super().__init__()
        self.linear = nn.Linear(in_features, num_logits)
        self.scale = nn.Parameter(torch.tensor(float(options.init_scale)))

    def forward(self, pooled):
        return self.scale * self.linear(nn.functional.normalize(pooled, dim=-1))


@attrs.frozen
class DeterministicOptions(OptimizationOptions):
    warn_only: bool = False


class Deterministic(Optimization):
    """torch.use_deterministic_algorithms: reproducibility at some speed cost."""

    def apply(self, context):
        torch.use_deterministic_algorithms(True, warn_only=self.options.warn_only)


@hookimpl
def register_heads(register):
    register("scaled_linear", ScaledLinear, options=ScaledLinearOptions)


@hookimpl
def register_optimizations(register):
    register("deterministic", Deterministic, options=DeterministicOptions)
