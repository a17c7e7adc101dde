"""One head and one optimization, registered the way any third-party plugin does it: the
options classes here, the factories as ``"module:attr"`` strings, so listing and validating
(``cm plugins``, ``cm config``) do not import torch."""

import attrs
from attrs.validators import gt

from cm.hookspecs import hookimpl
from cm.optimization import OptimizationOptions


@attrs.frozen
class ScaledLinearOptions:
    init_scale: float = attrs.field(default=1.0, validator=gt(0.0))


@attrs.frozen
class DeterministicOptions(OptimizationOptions):
    warn_only: bool = False


@hookimpl
def register_heads(register):
    register("scaled_linear", "cm_plugin_example.components:ScaledLinear",
             options=ScaledLinearOptions)


@hookimpl
def register_optimizations(register):
    register("deterministic", "cm_plugin_example.components:Deterministic",
             options=DeterministicOptions)
