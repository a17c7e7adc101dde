"""Registration of the built-in optimizations."""

from cm.hookspecs import hookimpl
from cm.optimization import OptimizationOptions
from cm_optimizations import (
    amp,
    attention,
    batching,
    channels_last,
    checkpointing,
    loader,
    lora,
    optimizer,
    tf32,
    torch_compile,
)


@hookimpl
def register_optimizations(register):
    register("bf16", amp.BF16, options=OptimizationOptions)
    register("fp16", amp.FP16, options=OptimizationOptions)
    register("tf32", tf32.TF32, options=OptimizationOptions)
    register("attention", attention.Attention, options=attention.AttentionOptions)
    register("gradient_checkpointing", checkpointing.GradientCheckpointing,
             options=checkpointing.CheckpointingOptions)
    register("fused_adamw", optimizer.FusedAdamW, options=OptimizationOptions)
    register("adamw_8bit", optimizer.AdamW8bit, options=OptimizationOptions)
    register("lora", lora.LoRA, options=lora.LoRAOptions)
    register("qlora", lora.QLoRA, options=lora.QLoRAOptions)
    register("compile", torch_compile.Compile, options=torch_compile.CompileOptions)
    register("cuda_graphs", torch_compile.CUDAGraphs, options=torch_compile.CUDAGraphsOptions)
    register("channels_last", channels_last.ChannelsLast, options=OptimizationOptions)
    register("bucketing", batching.Bucketing, options=OptimizationOptions)
    register("packing", batching.Packing, options=batching.PackingOptions)
    register("loader", loader.Loader, options=loader.LoaderOptions)
