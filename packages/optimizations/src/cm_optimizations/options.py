"""Options of the built-in optimizations (the tables under ``[optimizations]``), kept apart
from their implementations so ``cm plugins`` and ``cm config`` use them without torch."""

from typing import Literal

import attrs
from attrs.validators import and_, ge, gt, le, lt, min_len, optional

from cm import limits
from cm.optimization import OptimizationOptions

ATTENTION = ["query_proj", "key_proj", "value_proj"]  # DeBERTa's names


@attrs.frozen
class AttentionOptions(OptimizationOptions):
    backend: Literal["eager", "disentangled_flash"] = "eager"
    kernel: Literal["triton", "torch"] = "triton"  # disentangled_flash only
    # triton: its kernels are compiled per batch length; pad lengths to a multiple of this
    pad_to_multiple: int = attrs.field(default=64, validator=ge(1))


@attrs.frozen
class PackingOptions(OptimizationOptions):
    # tokens per packed row; longer examples get a row alone. Default: data.max_length / 2
    # (a packed row's attention spans the row: short rows cost less; docs/research.md)
    token_budget: int | None = attrs.field(
        default=None, validator=optional(and_(ge(16), le(limits.POSITIONS))))


@attrs.frozen
class CheckpointingOptions(OptimizationOptions):
    every_n_layers: int = attrs.field(default=1, validator=ge(1))  # >1 trades memory for speed
    offload: bool = False  # keep the saved activations in pinned host memory (CUDA only)


@attrs.frozen
class LoaderOptions(OptimizationOptions):
    num_workers: int = attrs.field(default=2, validator=ge(0))
    pin_memory: bool = True
    persistent_workers: bool = True


@attrs.frozen
class LoRAOptions(OptimizationOptions):
    r: int = attrs.field(default=8, validator=and_(ge(1), le(limits.HIDDEN_SIZE)))
    alpha: float = attrs.field(default=16.0, validator=gt(0))
    dropout: float = attrs.field(default=0.1, validator=and_(ge(0.0), lt(1.0)))
    target_modules: list[str] = attrs.field(default=attrs.Factory(lambda: list(ATTENTION)),
                                            validator=min_len(1))
    include_dense: bool = False  # also the feed-forward and attention-output `dense` layers


@attrs.frozen
class QLoRAOptions(LoRAOptions):
    quant_type: Literal["nf4", "fp4"] = "nf4"


@attrs.frozen
class CompileOptions(OptimizationOptions):
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = "default"
    dynamic: bool = False  # true: one shape-polymorphic graph, no length padding
    pad_to_multiple: int = attrs.field(default=64, validator=ge(1))


@attrs.frozen
class CUDAGraphsOptions(OptimizationOptions):
    pad_to_multiple: int = attrs.field(default=64, validator=ge(1))
