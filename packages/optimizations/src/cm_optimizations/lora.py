"""LoRA and QLoRA (peft): train small low-rank adapters on the attention projections and
keep the backbone frozen; the pooling and head (outside the backbone) stay trainable.

The adapters are injected into the backbone in place (``peft.inject_adapter_in_model``),
so it is still a ``DebertaV2Model``: the packed path (``cm.model.packed``, which calls
``embeddings``/``encoder`` directly) runs through the adapted layers unchanged.
Checkpoints hold the merged weights (``cm.model.checkpoint.plain_state_dict``), so they
load into a plain model and ``cm predict`` needs no peft.

QLoRA first replaces the targeted linear layers with bitsandbytes 4-bit NF4 layers that
compute in bf16 (frozen base weights in ~0.5 byte per parameter), then adds the adapters.
"""

import importlib.util

import torch

from cm.errors import UserError
from cm.optimization import Optimization


def _missing(package: str, pip_name: str) -> str | None:
    if importlib.util.find_spec(package) is None:
        return f"package not installed: pip install {pip_name}"
    return None


def _targets(options) -> list[str]:
    return [*options.target_modules, *(["dense"] if options.include_dense else [])]


def add_adapters(backbone, options, name) -> str:
    """Inject LoRA adapters into ``backbone`` in place; everything in it but them freezes.
    Returns the telemetry details: how many backbone parameters still train."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=options.r, lora_alpha=options.alpha, lora_dropout=options.dropout,
                        target_modules=_targets(options))
    try:
        inject_adapter_in_model(config, backbone)
    except ValueError as exc:  # peft: none of the target modules exist in the model
        raise UserError(f"optimizations.{name}.target_modules: {exc}") from None
    for param_name, param in backbone.named_parameters():
        param.requires_grad = "lora_" in param_name
    trainable = sum(p.numel() for p in backbone.parameters() if p.requires_grad)
    total = sum(p.numel() for p in backbone.parameters())
    return f"r={options.r}: {trainable:,} of {total:,} backbone parameters train"


class LoRA(Optimization):
    conflicts = ("qlora",)

    def unavailable(self, device):
        return _missing("peft", "peft")

    def apply(self, context):
        self.details = add_adapters(context.model.backbone, self.options, self.name)


class QLoRA(Optimization):
    conflicts = ("lora", "fp16")

    def unavailable(self, device):
        missing = _missing("peft", "peft") or _missing("bitsandbytes", "bitsandbytes")
        if missing:
            return missing
        if device != "cuda" or not torch.cuda.is_available():
            return "needs CUDA (bitsandbytes' 4-bit matmul kernels are GPU kernels)"
        if not torch.cuda.is_bf16_supported():
            return "needs a GPU with bf16 (Ampere or newer): the 4-bit layers compute in bf16"
        return None

    def apply(self, context):
        backbone = context.model.backbone
        quantize(backbone, _targets(self.options), self.options.quant_type)
        self.details = add_adapters(backbone, self.options, self.name)


def quantize(backbone, targets, quant_type):
    """Swap each ``nn.Linear`` whose name ends in a target for a 4-bit bitsandbytes layer."""
    import bitsandbytes as bnb

    for name, module in list(backbone.named_modules()):
        if not isinstance(module, torch.nn.Linear) or name.rsplit(".", 1)[-1] not in targets:
            continue
        layer = bnb.nn.Linear4bit(module.in_features, module.out_features,
                                  bias=module.bias is not None, compute_dtype=torch.bfloat16,
                                  quant_type=quant_type)
        layer.weight = bnb.nn.Params4bit(module.weight.data.cpu(), requires_grad=False,
                                         quant_type=quant_type)
        if module.bias is not None:
            layer.bias = torch.nn.Parameter(module.bias.data, requires_grad=False)
        layer.register_forward_hook(autocast_output)
        parent_name, _, child = name.rpartition(".")
        setattr(backbone.get_submodule(parent_name), child, layer.to(module.weight.device))


def autocast_output(module, inputs, output):
    """bitsandbytes returns a 4-bit layer's output in its input's dtype: fp32 after a
    LayerNorm, even under bf16 autocast, where an ``nn.Linear`` gives bf16. DeBERTa then mixes
    fp32 queries with bf16 scores (``masked_fill(finfo(query.dtype).min)`` overflows bf16);
    give the autocast dtype, as the layer it replaced did."""
    device = output.device.type
    if torch.is_autocast_enabled(device):
        return output.to(torch.get_autocast_dtype(device))
    return output
