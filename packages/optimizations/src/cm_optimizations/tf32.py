"""TF32 matmuls and convolutions on Ampere+ GPUs: ~fp32 range, 10-bit mantissa, far faster
tensor-core matmuls. No effect (and so unavailable) on CPU."""

import torch

from cm.optimization import Optimization


class TF32(Optimization):
    def unavailable(self, device):
        if device != "cuda" or not torch.cuda.is_available():
            return "needs CUDA (TF32 is a tensor-core matmul mode)"
        return None

    def apply(self, context):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
