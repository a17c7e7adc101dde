"""Best-checkpoint directories: everything needed to reload a model offline.

    model.safetensors   the whole cross-encoder's weights
    backbone/           the backbone's config (weights come from model.safetensors)
    tokenizer/          the tokenizer files
    experiment.toml     the resolved experiment
    meta.json           decision threshold, criteria, num_logits, the metrics at save time
"""

import json
from pathlib import Path

import attrs
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoTokenizer

from cm.config.decode import decode
from cm.config.dump import dumps
from cm.config.load import read_toml
from cm.errors import UserError
from cm.model.crossencoder import build_cross_encoder


@attrs.frozen
class Checkpoint:
    model: object
    tokenizer: object
    experiment: object
    meta: dict


def save_checkpoint(directory: Path, model, tokenizer, experiment, meta: dict) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, directory / "model.safetensors")
    model.backbone.config.save_pretrained(directory / "backbone")
    tokenizer.save_pretrained(directory / "tokenizer")
    (directory / "experiment.toml").write_text(dumps(experiment))
    (directory / "meta.json").write_text(json.dumps(meta, indent=2))
    return directory


def load_checkpoint(directory: Path, registry=None) -> Checkpoint:
    directory = Path(directory)
    missing = [name for name in ("model.safetensors", "backbone", "tokenizer",
                                 "experiment.toml", "meta.json")
               if not (directory / name).exists()]
    if missing:
        raise UserError(f"{directory} is not a cm checkpoint (missing: {', '.join(missing)}); "
                        "pass the checkpoint/ folder written by `cm run`")
    experiment = decode(read_toml(directory / "experiment.toml"),
                        str(directory / "experiment.toml"), registry)
    meta = json.loads((directory / "meta.json").read_text())
    backbone = AutoModel.from_config(AutoConfig.from_pretrained(directory / "backbone"))
    from cm.registry import get_registry

    model = build_cross_encoder(experiment, registry or get_registry(), backbone,
                                meta["num_logits"])
    model.load_state_dict(load_file(directory / "model.safetensors"))
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(directory / "tokenizer")
    return Checkpoint(model, tokenizer, experiment, meta)
