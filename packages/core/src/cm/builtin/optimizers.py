"""Optimizers, plus ``param_groups``: the per-group LR / weight-decay split they receive.

Factories take ``(options, param_groups, lr)``; the groups already carry their own ``lr``
and ``weight_decay`` (set by the engine through ``param_groups``), ``lr`` is only the
default for a group without one.
"""

import importlib
import re

import torch
from torch import nn

from cm.builtin.options import AdamW8bitOptions, AdamWOptions
from cm.errors import UserError

_LAYER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.")
_EMBEDDINGS = re.compile(r"(?:^|\.)embeddings\.")


def _no_decay(module, name, short):
    """Biases and LayerNorm weights: decaying them toward 0 only hurts (BERT recipe)."""
    if short == "bias" or isinstance(module, nn.LayerNorm):
        return True
    return "layernorm" in name.lower() or "layer_norm" in name.lower()


def param_groups(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    head_lr: float | None = None,
    layerwise_lr_decay: float = 1.0,
    head_prefixes=("head", "pooling"),
) -> list[dict]:
    """Trainable parameters grouped by (lr, weight_decay), each group named for logging.

    Head/pooling parameters (their names start with a ``head_prefixes`` entry) are freshly
    initialised, so they may train faster: ``head_lr`` (default ``lr``). With layer-wise
    decay ``d`` < 1 the lower backbone layers, which hold the most general features, move
    less: encoder layer ``i`` of ``L`` (from names ``encoder.layer.<i>.``) gets
    ``lr * d ** (L - i)`` and the embeddings ``lr * d ** (L + 1)``; other backbone
    parameters (DeBERTa's shared ``encoder.rel_embeddings``) get the top layer's
    ``lr * d``. Frozen parameters (``requires_grad = False``) are left out.
    """
    named, seen = [], set()
    for module_name, module in model.named_modules():
        for short, param in module.named_parameters(recurse=False):
            # Tied weights are listed once: torch refuses a parameter in two groups.
            if param.requires_grad and id(param) not in seen:
                seen.add(id(param))
                name = f"{module_name}.{short}" if module_name else short
                named.append((name, param, _no_decay(module, name, short)))
    layers = [int(m.group(1)) for name, _, _ in named if (m := _LAYER.search(name))]
    num_layers = max(layers) + 1 if layers else 0
    decay = layerwise_lr_decay

    def place(name):
        if any(name == p or name.startswith(f"{p}.") for p in head_prefixes):
            return "head", lr if head_lr is None else head_lr
        if decay == 1.0:
            return "backbone", lr
        if match := _LAYER.search(name):
            i = int(match.group(1))
            return f"layer.{i}", lr * decay ** (num_layers - i)
        if _EMBEDDINGS.search(name):
            return "embeddings", lr * decay ** (num_layers + 1)
        return "backbone", lr * decay

    groups = {}
    for name, param, no_decay in named:
        where, group_lr = place(name)
        key = (where, no_decay)
        if key not in groups:
            groups[key] = {
                "params": [],
                "lr": group_lr,
                "weight_decay": 0.0 if no_decay else weight_decay,
                "name": f"{where}/{'no_decay' if no_decay else 'decay'}",
            }
        groups[key]["params"].append(param)
    return list(groups.values())


def _params(groups):
    return [p for group in groups for p in group["params"]]


def _on_cuda(groups) -> bool:
    params = _params(groups)
    return bool(params) and all(p.is_cuda for p in params)


def adamw(options: AdamWOptions, param_groups: list[dict], lr: float) -> torch.optim.AdamW:
    devices = {p.device.type for p in _params(param_groups)}
    if options.fused and not devices <= {"cpu", "cuda"}:
        raise UserError(
            f"optimizer 'adamw': fused AdamW runs on CPU and CUDA, not on {sorted(devices)}; "
            "set fused = false in [train.optimizer]"
        )
    return torch.optim.AdamW(
        param_groups,
        lr=lr,
        betas=tuple(options.betas),
        eps=options.eps,
        fused=True if options.fused else None,
    )


def _bitsandbytes():
    """The bitsandbytes module, imported only when asked for (it is an optional extra)."""
    return importlib.import_module("bitsandbytes")


def adamw_8bit(options: AdamW8bitOptions, param_groups: list[dict], lr: float):
    """bitsandbytes' AdamW8bit: 8-bit optimizer state, about 75% less optimizer memory."""
    try:
        bnb = _bitsandbytes()
    except ImportError as exc:
        reason = f"bitsandbytes is not installed ({exc})"
    else:
        if _on_cuda(param_groups):
            return bnb.optim.AdamW8bit(
                param_groups, lr=lr, betas=tuple(options.betas), eps=options.eps
            )
        reason = "the model's parameters are not on a CUDA GPU"
    raise UserError(
        f"optimizer 'adamw_8bit' cannot be used here: {reason}. It needs bitsandbytes "
        "(pip install bitsandbytes) and a CUDA GPU; otherwise use optimizer 'adamw'"
    )
