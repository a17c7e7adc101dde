"""Registration of the built-in optimizations."""

from cm.hookspecs import hookimpl
from cm.optimization import OptimizationOptions
from cm_optimizations import amp, batching, checkpointing, loader, tf32


@hookimpl
def register_optimizations(register):
    register("bf16", amp.BF16, options=OptimizationOptions)
    register("fp16", amp.FP16, options=OptimizationOptions)
    register("tf32", tf32.TF32, options=OptimizationOptions)
    register("bucketing", batching.Bucketing, options=OptimizationOptions)
    register("packing", batching.Packing, options=batching.PackingOptions)
    register("loader", loader.Loader, options=loader.LoaderOptions)
    register("gradient_checkpointing", checkpointing.GradientCheckpointing,
             options=checkpointing.CheckpointingOptions)
