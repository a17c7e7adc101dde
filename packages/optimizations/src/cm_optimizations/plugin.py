"""Registration of the built-in optimizations.

Factories are ``"module:attr"`` strings, imported (with torch) when a run requests them."""

from cm.hookspecs import hookimpl
from cm.optimization import OptimizationOptions
from cm_optimizations import options

PACKAGE = "cm_optimizations"


@hookimpl
def register_optimizations(register):
    def add(name, factory, options=OptimizationOptions):
        register(name, f"{PACKAGE}.{factory}", options=options)

    add("bf16", "amp:BF16")
    add("fp16", "amp:FP16")
    add("tf32", "tf32:TF32")
    add("attention", "attention:Attention", options.AttentionOptions)
    add("gradient_checkpointing", "checkpointing:GradientCheckpointing",
        options.CheckpointingOptions)
    add("fused_adamw", "adamw_kernels:FusedAdamW")
    add("adamw_8bit", "adamw_kernels:AdamW8bit")
    add("lora", "lora:LoRA", options.LoRAOptions)
    add("qlora", "lora:QLoRA", options.QLoRAOptions)
    add("compile", "torch_compile:Compile", options.CompileOptions)
    add("cuda_graphs", "torch_compile:CUDAGraphs", options.CUDAGraphsOptions)
    add("channels_last", "channels_last:ChannelsLast")
    add("bucketing", "less_padding:Bucketing")
    add("packing", "less_padding:Packing", options.PackingOptions)
    add("loader", "loader:Loader", options.LoaderOptions)
