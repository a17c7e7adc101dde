"""Automatic mixed precision. bf16 keeps fp32's exponent range, so DeBERTa-v3's attention
scores do not overflow; it runs on recent GPUs and on CPUs (torch CPU autocast). fp16 is
CUDA only and needs loss scaling: the scaler skips any step whose gradients hold inf/NaN,
the known failure of DeBERTa-v3 in fp16."""

import torch

from cm.optimization import Optimization


class BF16(Optimization):
    conflicts = ("fp16",)

    def unavailable(self, device):
        if device == "cuda" and not torch.cuda.is_bf16_supported():
            return "this GPU has no bf16 support (needs Ampere or newer); use fp16"
        if device not in ("cpu", "cuda"):
            return f"bf16 autocast is not supported on {device}"
        return None

    def apply(self, context):
        context.autocast_dtype = torch.bfloat16


class FP16(Optimization):
    conflicts = ("bf16",)

    def unavailable(self, device):
        if device != "cuda":
            return "needs CUDA (fp16 autocast with loss scaling is a GPU mode)"
        return None

    def apply(self, context):
        context.autocast_dtype = torch.float16
        context.grad_scaler = True
