"""Optimization plugins through the real engine on a very small DeBERTaV3-shaped model."""

import math

import pytest
import torch

from cm.data.loaders import encode_split, train_loader
from cm.data.prepare import prepare
from cm.errors import UserError
from cm.model.backbone import load_backbone
from cm.optimization import Telemetry, TrainContext, resolve
from cm.registry import get_registry
from cm.testing import make_tiny_experiment as small
from cm.testing import run_quietly as run

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`


def test_cuda_only_optimization_is_an_error_when_strict(tmp_path):
    with pytest.raises(UserError) as info:
        run(small(tmp_path, "optimizations.tf32={}"))
    message = str(info.value)
    assert "optimizations.tf32: cannot be used here: needs CUDA" in message
    assert 'optimizations.tf32.mode = "auto"' in message


def test_auto_mode_skips_with_the_reason_and_trains(tmp_path):
    result = run(small(tmp_path, "optimizations.tf32={ mode = 'auto' }",
                       "optimizations.fp16={ mode = 'auto' }"))
    assert result.status == "FINISHED"
    assert result.telemetry == [
        Telemetry("tf32", "skipped", "needs CUDA (TF32 is a tensor-core matmul mode)"),
        Telemetry("fp16", "skipped",
                  "needs CUDA (fp16 autocast with loss scaling is a GPU mode)")]


def test_declared_conflicts(tmp_path):
    registry = get_registry()
    experiment = small(tmp_path, "optimizations.bucketing={}", "optimizations.packing={}")
    with pytest.raises(UserError, match="optimizations.packing: .*conflicts with bucketing"):
        resolve(experiment.optimizations, registry, "cpu")
    experiment = small(tmp_path, "optimizations.bucketing={}",
                       "optimizations.packing={ mode = 'auto' }")
    active, rows = resolve(experiment.optimizations, registry, "cpu")
    assert [o.name for o in active] == ["bucketing"]
    assert rows[1] == Telemetry("packing", "skipped", "conflicts with bucketing")


def loader_cells(tmp_path, *optimizations):
    """(computed token cells, real tokens, examples) over one epoch of the train loader."""
    experiment = small(tmp_path, "data.max_length=1024", *optimizations)
    prepared = prepare(experiment, get_registry())
    backbone, tokenizer = load_backbone("tiny-deberta-v3", texts=prepared.tokenizer_texts(),
                                        tiny=experiment.model.tiny, cache_root=tmp_path)
    context = TrainContext(experiment, "cpu", torch.nn.Module(), token_budget=1024)
    context.model.backbone = backbone
    active, _ = resolve(experiment.optimizations, get_registry(), "cpu")
    for optimization in active:
        optimization.apply(context)
    split = encode_split("train", prepared.split("train"), tokenizer, experiment.data,
                         tmp_path / "enc")
    cells = real = examples = 0
    for batch in train_loader(split, 16, 0, tokenizer.pad_token_id, context.batching,
                              context.token_budget):
        cells += batch["input_ids"].numel()
        real += int(batch.get("token_mask", batch["attention_mask"]).sum())
        examples += len(batch["labels"])
    return cells, real, examples


def test_bucketing_and_packing_cut_padding_and_keep_every_example(tmp_path):
    plain = loader_cells(tmp_path)
    bucketed = loader_cells(tmp_path, "optimizations.bucketing={}")
    packed = loader_cells(tmp_path, "optimizations.packing={}")
    assert plain[1] == bucketed[1] == packed[1]  # the same real tokens
    assert plain[2] == bucketed[2] == packed[2]  # every example once
    assert bucketed[0] / bucketed[1] < 0.6 * plain[0] / plain[1]
    assert packed[0] / packed[1] < 1.1


def test_packed_training_runs_end_to_end(tmp_path):
    result = run(small(tmp_path, "optimizations.packing={}"))
    assert result.status == "FINISHED"
    assert result.telemetry == [Telemetry("packing", "active", details="rows of 32 tokens")]
    assert math.isfinite(result.metrics["test/macro_f1"])


def test_packing_budget_defaults_to_half_of_max_length(tmp_path):
    from cm_optimizations.less_padding import Packing
    from cm_optimizations.options import PackingOptions

    for options, budget in ((PackingOptions(), 32), (PackingOptions(token_budget=48), 48)):
        context = TrainContext(small(tmp_path), "cpu", torch.nn.Module(), token_budget=64)
        context.model.backbone = torch.nn.Module()
        context.model.backbone.embeddings = context.model.backbone.encoder = torch.nn.Module()
        Packing(options).apply(context)
        assert (context.batching, context.token_budget) == ("packing", budget)


def test_bf16_autocast_on_cpu_trains(tmp_path):
    result = run(small(tmp_path, "optimizations.bf16={}"))
    assert result.telemetry == [Telemetry("bf16", "active")]
    assert math.isfinite(result.metrics["test/roc_auc"])


def test_gradient_checkpointing_gives_the_same_run(tmp_path, tiny_run):
    plain = tiny_run  # the same tiny run without optimizations, trained once per session
    checkpointed = run(small(tmp_path, "optimizations.gradient_checkpointing={}"))
    assert checkpointed.metrics["test/roc_auc"] == pytest.approx(plain.metrics["test/roc_auc"],
                                                                 abs=1e-6)


def test_loader_workers_give_the_same_run(tmp_path, tiny_run):
    plain = tiny_run
    workers = run(small(tmp_path, "optimizations.loader={ num_workers = 2 }"))
    assert workers.metrics["test/macro_f1"] == plain.metrics["test/macro_f1"]


def test_run_reports_throughput_and_peak_memory(tiny_run):
    metrics = tiny_run.metrics
    assert metrics["train/samples_per_s"] > 0 and metrics["system/peak_memory_mb"] > 50


def checkpointing_context(tmp_path, options="{}"):
    """(the gradient_checkpointing optimization resolved, a context with a tiny backbone)."""
    experiment = small(tmp_path, f"optimizations.gradient_checkpointing={options}")
    backbone, _ = load_backbone("tiny-deberta-v3", texts=["a b c"] * 50,
                                tiny=experiment.model.tiny, cache_root=tmp_path)
    context = TrainContext(experiment, "cpu", torch.nn.Module())
    context.model.backbone = backbone
    active, _ = resolve(experiment.optimizations, get_registry(), "cpu")
    return active[0], context


def test_gradient_checkpointing_switches_the_backbone_on(tmp_path):
    checkpointing, context = checkpointing_context(tmp_path, "{ every_n_layers = 1 }")
    assert not context.model.backbone.is_gradient_checkpointing
    checkpointing.apply(context)
    assert context.model.backbone.is_gradient_checkpointing


def test_gradient_checkpointing_on_a_transformers_before_5_23(tmp_path, monkeypatch):
    """transformers 5.17 (the GPU machine's) has only ``gradient_checkpointing_enable``; 4.x
    has it without every_n_layers and offload, which is then a clear error."""
    from transformers import PreTrainedModel

    def like_5_17(self, gradient_checkpointing_kwargs=None, every_n_layers=1, offload=False):
        self._activation_checkpointing_enable(gradient_checkpointing_kwargs, every_n_layers,
                                              offload)

    monkeypatch.delattr(PreTrainedModel, "activation_checkpointing_enable")
    monkeypatch.setattr(PreTrainedModel, "gradient_checkpointing_enable", like_5_17)
    checkpointing, context = checkpointing_context(tmp_path, "{ every_n_layers = 2 }")
    checkpointing.apply(context)
    assert context.model.backbone.is_gradient_checkpointing

    def before_5(self, gradient_checkpointing_kwargs=None):
        raise AssertionError("not reached")

    monkeypatch.setattr(PreTrainedModel, "gradient_checkpointing_enable", before_5)
    checkpointing, context = checkpointing_context(tmp_path, "{ every_n_layers = 2 }")
    with pytest.raises(UserError, match="every_n_layers needs a newer transformers than 5"):
        checkpointing.apply(context)


def test_offloaded_checkpointing_needs_cuda(tmp_path):
    experiment = small(tmp_path, "optimizations.gradient_checkpointing={ offload = true }")
    with pytest.raises(UserError, match="offload = true needs CUDA"):
        resolve(experiment.optimizations, get_registry(), "cpu")
