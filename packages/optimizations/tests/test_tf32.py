import torch

from cm.optimization import OptimizationOptions
from cm_optimizations.tf32 import TF32


def test_tf32_reports_needs_cuda_on_cpu():
    reason = TF32(OptimizationOptions()).unavailable("cpu")
    assert reason is not None and "needs CUDA" in reason


def test_tf32_available_only_with_cuda_device():
    reason = TF32(OptimizationOptions()).unavailable("cuda")
    assert (reason is None) == torch.cuda.is_available()
