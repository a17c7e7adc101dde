"""Best-checkpoint directories: everything needed to reload a model offline.

    model.safetensors   the whole cross-encoder's weights
    backbone/           the backbone's config (weights come from model.safetensors)
    tokenizer/          the tokenizer files
    experiment.toml     the resolved experiment
    meta.json           decision threshold, criteria, num_logits, the metrics at save time,
                        and ``providers``: which distribution provided each component, so
                        loading where a plugin is missing names the package to install
"""

import json
from pathlib import Path

import attrs
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoTokenizer

from cm.config.decode import decode
from cm.config.dump import dumps
from cm.config.load import read_toml
from cm.config.schema import Spec
from cm.errors import UserError
from cm.model.crossencoder import build_cross_encoder
from cm.registry import get_registry


@attrs.frozen
class Checkpoint:
    model: object
    tokenizer: object
    experiment: object
    meta: dict


def save_checkpoint(directory: Path, model, tokenizer, experiment, meta: dict,
                    registry=None) -> Path:
    directory = Path(directory)
    meta = {**meta, "providers": providers(experiment, registry or get_registry())}
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in plain_state_dict(model).items()}
    save_file(state, directory / "model.safetensors")
    model.backbone.config.save_pretrained(directory / "backbone")
    tokenizer.save_pretrained(directory / "tokenizer")
    (directory / "experiment.toml").write_text(dumps(experiment))
    (directory / "meta.json").write_text(json.dumps(meta, indent=2))
    return directory


def plain_state_dict(model) -> dict:
    """``model.state_dict()`` with LoRA adapters (peft layers: ``base_layer`` + adapters)
    merged into plain ``weight``/``bias`` entries, so the checkpoint loads into the model
    without adapters and ``cm predict`` needs no peft. The model itself is not changed."""
    state = model.state_dict()
    for name, module in model.named_modules():
        if not (hasattr(module, "base_layer") and hasattr(module, "get_delta_weight")):
            continue
        base = module.base_layer
        weight = _dequantized(base).detach().clone()
        for adapter in module.active_adapters:
            if adapter not in module.merged_adapters:
                weight += module.get_delta_weight(adapter).to(weight.dtype)
        state = {k: v for k, v in state.items() if not k.startswith(f"{name}.")}
        state[f"{name}.weight"] = weight
        if base.bias is not None:
            state[f"{name}.bias"] = base.bias.detach()
    return state


def used_components(obj, path="$"):
    """(path, Spec) for every component an experiment names: ``$.model.head``, ..."""
    if isinstance(obj, Spec):
        yield path, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from used_components(value, f"{path}.{key}")
    elif attrs.has(type(obj)):
        for field in attrs.fields(type(obj)):
            yield from used_components(getattr(obj, field.name), f"{path}.{field.name}")


def providers(experiment, registry) -> dict:
    """Config path -> kind, name and the plugin distribution that provided it."""
    found = {}
    for path, spec in used_components(experiment):
        component = registry.components[spec.kind].get(spec.name)
        info = component.provider if component else None
        found[path] = {"kind": spec.kind, "name": spec.name,
                       "plugin": getattr(info, "name", "unknown"),
                       "distribution": getattr(info, "distribution", "unknown"),
                       "version": getattr(info, "version", "unknown")}
    return found


def missing_providers(recorded: dict, registry) -> list[str]:
    """A line naming the package to install for each recorded component not registered."""
    lines = []
    for path, p in recorded.items():
        if p["name"] in registry.components[p["kind"]]:
            continue
        install = (f"pip install '{p['distribution']}=={p['version']}'"
                   if p["distribution"] != "unknown" else "its plugin is not known")
        lines.append(f"{path}: {p['kind']} {p['name']!r} comes from {p['distribution']} "
                     f"{p['version']} (plugin {p['plugin']}): {install}")
    return lines


def _dequantized(layer):
    """A linear layer's weight in float; QLoRA's 4-bit (bitsandbytes) weights dequantized."""
    if hasattr(layer.weight, "quant_state"):
        from peft.utils.integrations import dequantize_module_weight

        return dequantize_module_weight(layer).float()
    return layer.weight


def load_checkpoint(directory: Path, registry=None) -> Checkpoint:
    directory = Path(directory)
    missing = [name for name in ("model.safetensors", "backbone", "tokenizer",
                                 "experiment.toml", "meta.json")
               if not (directory / name).exists()]
    if missing:
        raise UserError(f"{directory} is not a cm checkpoint (missing: {', '.join(missing)}); "
                        "pass the checkpoint/ folder written by `cm run`")
    registry = registry or get_registry()
    meta = json.loads((directory / "meta.json").read_text())
    missing = missing_providers(meta.get("providers", {}), registry)
    if missing:
        raise UserError(f"{directory}: this checkpoint needs components that are not "
                        "installed here:\n" + "\n".join(f"  {line}" for line in missing))
    experiment = decode(read_toml(directory / "experiment.toml"),
                        str(directory / "experiment.toml"), registry)
    backbone = AutoModel.from_config(AutoConfig.from_pretrained(directory / "backbone"))
    model = build_cross_encoder(experiment, registry, backbone, meta["num_logits"])
    model.load_state_dict(load_file(directory / "model.safetensors"))
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(directory / "tokenizer")
    return Checkpoint(model, tokenizer, experiment, meta)
