"""Checkpoints record which distribution provided each component; loading one where a
plugin is missing names the package to install."""

import json

import pytest

from cm.errors import UserError
from cm.model.checkpoint import load_checkpoint, providers
from cm.plugins import discover
from cm.registry import build_registry, get_registry
from cm.testing import make_tiny_experiment


def test_providers_name_every_component_with_its_distribution(tmp_path):
    experiment = make_tiny_experiment(tmp_path, "optimizations.bucketing={}")
    found = providers(experiment, get_registry())
    assert found["$.model.head"] == {"kind": "head", "name": "mlp", "plugin": "heads",
                                     "distribution": "cm-heads", "version": "0.1.0"}
    assert found["$.train.loss"]["distribution"] == "cm-core"
    assert found["$.optimizations.bucketing"]["distribution"] == "cm-optimizations"
    assert set(found) == {"$.data.dataset", "$.model.pooling", "$.model.head",
                          "$.train.loss", "$.train.optimizer", "$.train.scheduler",
                          "$.optimizations.bucketing"}


def test_loading_without_the_plugin_names_the_package_to_install(tmp_path):
    experiment = make_tiny_experiment(tmp_path)
    for name in ("model.safetensors", "backbone", "tokenizer", "experiment.toml"):
        (tmp_path / name).touch()
    meta = {"num_logits": 1, "providers": providers(experiment, get_registry())}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    core_only = build_registry(discover(allow={"core"}))
    with pytest.raises(UserError) as info:
        load_checkpoint(tmp_path, registry=core_only)
    message = str(info.value)
    assert "this checkpoint needs components that are not installed here" in message
    assert ("$.model.head: head 'mlp' comes from cm-heads 0.1.0 (plugin heads): "
            "pip install 'cm-heads==0.1.0'") in message
    assert "$.train.loss" not in message  # cm-core's own loss is there
