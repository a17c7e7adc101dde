"""Optimizer kernels as optimizations: they change which optimizer the engine builds
(``context.optimizer``, the experiment's ``train.optimizer`` until one of them rewrites it).

fused_adamw turns on torch's single-kernel AdamW (``fused = true`` on the ``adamw``
optimizer): on CUDA one launch per step instead of several per parameter; torch 2.13 has
it on CPU too, where the optimizer step measured ~4.5x faster than the foreach loop here.

adamw_8bit switches the optimizer to the built-in ``adamw_8bit`` (bitsandbytes: 8-bit
optimizer state, about 75% less optimizer memory), carrying over betas and eps. Asking for
``optimizer = { name = "adamw_8bit" }`` directly does the same thing but fails off CUDA;
the optimization adds the availability check, so ``mode = "auto"`` falls back to AdamW.
"""

import importlib.util

import attrs
import torch

from cm.config import OptimizerSpec
from cm.errors import UserError
from cm.optimization import Optimization


class FusedAdamW(Optimization):
    conflicts = ("adamw_8bit",)

    def unavailable(self, device):
        if device not in ("cpu", "cuda"):
            return f"torch has no fused AdamW kernel for {device} here; use cpu or cuda"
        return None

    def apply(self, context):
        spec = context.optimizer
        if "fused" not in attrs.fields_dict(type(spec.options)):
            raise UserError(f"optimizations.fused_adamw: train.optimizer {spec.name!r} has no "
                            "fused kernel; use optimizer = { name = \"adamw\" } or remove "
                            "[optimizations.fused_adamw]")
        context.optimizer = attrs.evolve(spec, options=attrs.evolve(spec.options, fused=True))


class AdamW8bit(Optimization):
    conflicts = ("fused_adamw",)

    def unavailable(self, device):
        if importlib.util.find_spec("bitsandbytes") is None:
            return "package not installed: pip install bitsandbytes"
        if device != "cuda" or not torch.cuda.is_available():
            return "needs CUDA (bitsandbytes' 8-bit optimizer kernels are GPU kernels)"
        return None

    def apply(self, context):
        spec = context.optimizer
        if spec.name not in ("adamw", "adamw_8bit"):
            raise UserError(f"optimizations.adamw_8bit: replaces AdamW, but train.optimizer is "
                            f"{spec.name!r}; use optimizer = {{ name = \"adamw\" }} or remove "
                            "[optimizations.adamw_8bit]")
        options_class = context.registry.get("optimizer", "adamw_8bit").options
        options = options_class(betas=spec.options.betas, eps=spec.options.eps)
        context.optimizer = OptimizerSpec("adamw_8bit", options)
