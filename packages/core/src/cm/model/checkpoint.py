"""Best-checkpoint directories: everything needed to reload a model offline.

    model.safetensors   the whole cross-encoder's weights
    backbone/           the backbone's config (weights come from model.safetensors)
    tokenizer/          the tokenizer files
    experiment.toml     the resolved experiment
    meta.json           decision threshold, criteria, num_logits, the metrics at save time,
                        ``lineage`` (the commit of cm that trained it, the data files' digests),
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
from cm.config.schema import used_components
from cm.errors import UserError
from cm.model.crossencoder import build_cross_encoder
from cm.registry import get_registry
from cm.textfile import read_text


@attrs.frozen
class Checkpoint:
    model: object
    tokenizer: object
    experiment: object
    meta: dict
    directory: Path | None = None

    def require(self, *keys):
        """A UserError unless meta.json holds ``keys`` (what the caller is about to use)."""
        absent = [key for key in keys if key not in self.meta]
        if absent:
            raise UserError(f"checkpoint {self.directory}: meta.json has no "
                            f"{', '.join(absent)} (damaged or written by another tool); use "
                            "the checkpoint/ folder of a finished `cm run`")


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
    """Reload a finished run's checkpoint; a missing, damaged or unfinished part is a
    UserError naming it (never a half-loaded model)."""
    directory = Path(directory)
    missing = [name for name in ("model.safetensors", "backbone", "tokenizer",
                                 "experiment.toml", "meta.json")
               if not (directory / name).exists()]
    if missing:
        raise UserError(f"{directory} is not a cm checkpoint (missing: {', '.join(missing)}); "
                        "pass the checkpoint/ folder written by `cm run`")
    registry = registry or get_registry()
    meta = _part(directory, "meta.json", read_meta)
    missing = missing_providers(meta.get("providers", {}), registry)
    if missing:
        raise UserError(f"{directory}: this checkpoint needs components that are not "
                        "installed here:\n" + "\n".join(f"  {line}" for line in missing))
    experiment = _part(directory, "experiment.toml", lambda path: decode(
        read_toml(path), str(path), registry=registry))
    config = _part(directory, "backbone", AutoConfig.from_pretrained)
    model = build_cross_encoder(experiment, registry, AutoModel.from_config(config),
                                meta["num_logits"])
    _part(directory, "model.safetensors", lambda path: model.load_state_dict(load_file(path)))
    model.eval()
    tokenizer = _part(directory, "tokenizer", AutoTokenizer.from_pretrained)
    return Checkpoint(model, tokenizer, experiment, meta, directory)


def read_meta(path: Path) -> dict:
    meta = json.loads(read_text(path, "checkpoint metadata"))
    if not isinstance(meta, dict):
        raise ValueError("not a JSON object")
    if meta.get("final") is False:
        raise UserError(f"{path.parent} was saved by a run that did not finish (final: false, "
                        f"epoch {meta.get('epoch')}): it has no tuned threshold or criteria "
                        "of its own; use the checkpoint of a finished run, or train again")
    if "num_logits" not in meta:
        raise ValueError("no num_logits")
    return meta


def _part(directory: Path, name: str, load):
    """``load(directory / name)``, any failure reported as that part being damaged."""
    try:
        return load(directory / name)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever broke, this part is what to fix
        detail = " ".join(str(exc).split())[:240]
        raise UserError(f"checkpoint {directory}: {name} is damaged or does not match the "
                        f"rest ({type(exc).__name__}: {detail}); copy the checkpoint again "
                        "or use the checkpoint/ folder of another finished `cm run`") from None
