"""The optimizer's parameter groups: per-group learning rate and weight decay (no decay on
biases / LayerNorm, a head learning rate, layer-wise learning-rate decay), each group named
for logging."""

import re

from torch import nn

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
