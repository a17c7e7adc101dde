"""Attention backend switch. ``eager`` is transformers' DeBERTa attention (bmm + gather;
transformers 5.24 offers no SDPA / FlashAttention for DebertaV2). ``disentangled_flash``
is the ``disentangled-flash`` package: exact DeBERTa-v2/v3 disentangled attention without
materialising the [B, H, L, L] score matrix, with ``kernel = "triton"`` (fused Triton
kernels: CUDA) or ``kernel = "torch"`` (its PyTorch implementation: any device, checked
equal to eager within fp32 rounding on CPU in the tests).

It replaces each layer's self-attention module, keeping parameter names (checkpoints load into
an eager model). The Triton kernels take the batch size and sequence length as compile-time
constants, so every new batch length compiles new kernels (measured on an H200: 6 samples/s
where eager gave 145, with a length per batch); training batches are padded to a multiple of
``pad_to_multiple`` (64: at most 8 lengths at max_length 512). Two limits, declared as
conflicts: it fuses the Q/K/V projections, so LoRA adapters on
``query_proj``/``key_proj``/``value_proj`` would be silently bypassed (lora, qlora); it takes
only 2-D padding masks, not packing's 3-D block mask (packing).
"""

import importlib.util

import torch

from cm.errors import UserError
from cm.optimization import Optimization


class Attention(Optimization):
    def __init__(self, options):
        super().__init__(options)
        if options.backend == "disentangled_flash":
            self.conflicts = ("lora", "qlora", "packing")

    def unavailable(self, device):
        options = self.options
        if options.backend == "eager":
            return None
        if importlib.util.find_spec("disentangled_flash") is None:
            return "package not installed: pip install disentangled-flash"
        if options.kernel == "triton":
            if device != "cuda" or not torch.cuda.is_available():
                return "kernel 'triton' needs CUDA; kernel = \"torch\" runs anywhere"
            if importlib.util.find_spec("triton") is None:
                return "kernel 'triton' needs the triton package (pip install triton)"
        return None

    def apply(self, context):
        if self.options.backend == "eager":
            return
        from disentangled_flash import optimize_deberta_training

        backbone = context.model.backbone
        if self.options.kernel == "triton":
            context.pad_lengths_to(self.options.pad_to_multiple)
        try:
            optimize_deberta_training(backbone, backend=self.options.kernel)
        except (TypeError, ValueError) as exc:
            raise UserError(f"optimizations.{self.name}: disentangled_flash cannot take "
                            f"this backbone: {exc}; use backend = \"eager\"") from None
        # with an unsupported shape (e.g. head size not 32/64/128) the package keeps the
        # eager encoder without saying so: refuse rather than claim a speed-up
        if type(backbone.encoder).__name__ != "DebertaV2OptimizedEncoder":
            raise UserError(f"optimizations.{self.name}: disentangled_flash left the eager "
                            "attention in place (its Triton kernel supports head sizes 32, "
                            "64 and 128); use kernel = \"torch\" or backend = \"eager\"")
