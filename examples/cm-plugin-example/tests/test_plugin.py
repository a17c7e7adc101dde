"""cm-plugin-example tested with the fixtures cm-core ships (pytest finds them itself)."""

import json

import torch

from cm.registry import get_registry


def test_the_head_is_registered_by_this_distribution():
    head = get_registry().get("head", "scaled_linear")
    assert head.provider.distribution == "cm-plugin-example"


def test_the_head_maps_pooled_vectors_to_logits():
    head = get_registry().get("head", "scaled_linear").build(in_features=8, num_logits=1)
    assert head(torch.randn(4, 8)).shape == (4, 1)


def test_the_optimization_makes_torch_deterministic(train_context):
    context = train_context(optimizations={"deterministic": {"warn_only": True}})
    options = context.experiment.optimizations["deterministic"].options
    optimization = get_registry().get("optimization", "deterministic").build(options)
    assert optimization.unavailable(context.device) is None
    try:
        optimization.apply(context)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_a_tiny_run_trains_the_head(tiny_experiment, run_tiny):
    experiment = tiny_experiment(model={"head": {"name": "scaled_linear", "init_scale": 5.0}})
    run = run_tiny(experiment)
    assert run.status == "FINISHED"
    assert 0.0 <= run.metrics["test/macro_f1"] <= 1.0
    meta = json.loads((run.directory / "checkpoint" / "meta.json").read_text())
    assert meta["providers"]["$.model.head"]["distribution"] == "cm-plugin-example"
