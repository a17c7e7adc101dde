"""fused/8-bit AdamW, LoRA/QLoRA, compile/CUDA graphs, attention backends, channels-last:
availability and conflicts on this CPU, and the ones that run here, run for real."""

import importlib.util
import json
import math
import re

import attrs
import pytest
import torch
from click.testing import CliRunner

from cm.cli.main import cli
from cm.data.loaders import encode_split, train_loader
from cm.data.prepare import prepare
from cm.errors import UserError
from cm.evaluate.validation import split_metrics
from cm.model.backbone import load_backbone
from cm.model.checkpoint import load_checkpoint, save_checkpoint
from cm.model.crossencoder import build_cross_encoder
from cm.model.scoring import score
from cm.optimization import Telemetry, TrainContext, resolve
from cm.registry import get_registry
from cm.testing import make_tiny_experiment as small
from cm.testing import run_quietly as run

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

ALL = {"bf16", "fp16", "tf32", "attention", "gradient_checkpointing", "fused_adamw",
       "adamw_8bit", "lora", "qlora", "compile", "cuda_graphs", "channels_last", "bucketing",
       "packing", "loader"}
needs_peft = pytest.mark.skipif(importlib.util.find_spec("peft") is None,
                                reason="peft is not installed (pip install peft)")
needs_flash = pytest.mark.skipif(importlib.util.find_spec("disentangled_flash") is None,
                                 reason="pip install disentangled-flash")


def resolved(tmp_path, *optimizations, device="cpu"):
    return resolve(small(tmp_path, *optimizations).optimizations, get_registry(), device)


def model_of(experiment, tmp_path):
    backbone, tokenizer = load_backbone("tiny-deberta-v3", texts=["a b c d e"] * 50,
                                        tiny=experiment.model.tiny, cache_root=tmp_path)
    return build_cross_encoder(experiment, get_registry(), backbone, 1), tokenizer


def applied(experiment, model, device="cpu"):
    context = TrainContext(experiment, device, model, registry=get_registry())
    for optimization in resolve(experiment.optimizations, get_registry(), device)[0]:
        optimization.apply(context)
    return context


def test_cm_plugins_lists_every_optimization_with_its_options():
    result = CliRunner().invoke(cli, ["plugins", "--kind", "optimization", "--json"])
    listed = {c["name"]: {o["name"] for o in c["options"]}
              for c in json.loads(result.output)["components"]["optimization"]}
    assert ALL <= set(listed)
    assert {"r", "alpha", "dropout", "target_modules", "include_dense"} <= listed["lora"]
    assert {"compile_mode", "dynamic", "pad_to_multiple"} <= listed["compile"]
    assert {"backend", "kernel"} <= listed["attention"]
    assert all("mode" in options for options in listed.values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusals on a CPU machine")
def test_cuda_only_ones_say_so_on_cpu(tmp_path):
    names = ["adamw_8bit", "qlora", "cuda_graphs", "tf32", "fp16"]
    extra = ["optimizations.compile={ mode = 'auto', compile_mode = 'reduce-overhead' }",
             "optimizations.attention={ mode = 'auto', backend = 'disentangled_flash' }"]
    active, rows = resolved(tmp_path, *[f"optimizations.{n}={{ mode = 'auto' }}" for n in names],
                            *extra)
    assert active == [] and [row.status for row in rows] == ["skipped"] * 7
    reasons = {row.name: row.reason for row in rows}
    for name in ("cuda_graphs", "tf32", "fp16", "compile", "attention"):
        assert "needs CUDA" in reasons[name], name
    for name in ("adamw_8bit", "qlora"):  # bitsandbytes is not installed here, or no CUDA
        assert ("pip install bitsandbytes" in reasons[name] or "needs CUDA" in reasons[name])


def test_a_missing_package_is_the_reason_and_the_fix(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("bitsandbytes", "peft",
                                                          "disentangled_flash") else real(name))
    with pytest.raises(UserError, match="optimizations.adamw_8bit: cannot be used here: "
                                        "package not installed: pip install bitsandbytes"):
        resolved(tmp_path, "optimizations.adamw_8bit={}")
    with pytest.raises(UserError, match="package not installed: pip install peft"):
        resolved(tmp_path, "optimizations.lora={}")
    with pytest.raises(UserError, match="pip install disentangled-flash"):
        resolved(tmp_path, "optimizations.attention={ backend = 'disentangled_flash' }")


def test_channels_last_is_not_applicable_to_text(tmp_path):
    with pytest.raises(UserError) as info:
        resolved(tmp_path, "optimizations.channels_last={}")
    assert "optimizations.channels_last: cannot be used here: not applicable to text: " \
           "channels-last is a memory layout for 4-D image tensors" in str(info.value)
    _, rows = resolved(tmp_path, "optimizations.channels_last={ mode = 'auto' }")
    assert rows[0].status == "skipped" and rows[0].reason.startswith("not applicable to text")


def test_declared_conflicts(tmp_path, monkeypatch):
    registry = get_registry()

    def conflicts(name, **options):
        component = registry.get("optimization", name)
        return set(component.build(component.options(**options)).conflicts)

    assert {"fp16", "lora"} <= conflicts("qlora") and "qlora" in conflicts("lora")
    assert "adamw_8bit" in conflicts("fused_adamw")
    assert {"compile", "packing"} <= conflicts("cuda_graphs")
    assert "packing" in conflicts("compile") and "packing" not in conflicts("compile",
                                                                          dynamic=True)
    assert conflicts("attention") == set()
    assert {"lora", "qlora", "packing"} <= conflicts("attention", backend="disentangled_flash")
    # strict names the clash; auto drops the later one and says why
    with pytest.raises(UserError, match="optimizations.packing: .*conflicts with compile"):
        resolved(tmp_path, "optimizations.compile={}", "optimizations.packing={}")
    active, rows = resolved(tmp_path, "optimizations.compile={ dynamic = true }",
                            "optimizations.packing={ mode = 'auto' }")
    assert [o.name for o in active] == ["compile", "packing"]


def test_fused_adamw_switches_the_kernel_on_and_needs_adamw(tmp_path):
    experiment = small(tmp_path, "optimizations.fused_adamw={}")
    context = applied(experiment, torch.nn.Module())
    assert context.optimizer.name == "adamw" and context.optimizer.options.fused
    assert not experiment.train.optimizer.options.fused  # the experiment is not changed
    experiment = small(tmp_path, "optimizations.fused_adamw={}",
                       "train.optimizer={ name = 'adamw_8bit' }")
    with pytest.raises(UserError, match="optimizations.fused_adamw: train.optimizer "
                                        "'adamw_8bit' has no fused kernel"):
        applied(experiment, torch.nn.Module())


def test_adamw_8bit_optimization_switches_to_the_builtin_optimizer(tmp_path, monkeypatch):
    from cm_optimizations import adamw_kernels

    monkeypatch.setattr(adamw_kernels.AdamW8bit, "unavailable", lambda self, device: None)
    experiment = small(tmp_path, "optimizations.adamw_8bit={}",
                       "train.optimizer={ name = 'adamw', betas = [0.9, 0.98] }")
    context = applied(experiment, torch.nn.Module())
    assert context.optimizer.name == "adamw_8bit"
    assert context.optimizer.options.betas == [0.9, 0.98]


@needs_peft
def test_lora_trains_adapters_head_and_pooling_only(tmp_path):
    experiment = small(tmp_path, "optimizations.lora={ r = 4 }")
    model, _ = model_of(experiment, tmp_path)
    total = sum(p.numel() for p in model.parameters())
    applied(experiment, model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith(("head.", "pooling."))
                             for n in trainable)
    assert {n.split(".")[-4] for n in trainable if "lora_" in n} == {
        "query_proj", "key_proj", "value_proj"}
    counted = sum(p.numel() for p in model.parameters() if p.requires_grad)
    head = sum(p.numel() for m in (model.head, model.pooling) for p in m.parameters())
    adapters = 1 * 3 * 4 * (32 + 32)  # layers x (q, k, v) x r x (in + out)
    assert counted == adapters + head < 0.2 * total
    dense = small(tmp_path, "optimizations.lora={ include_dense = true }")
    model, _ = model_of(dense, tmp_path)
    applied(dense, model)
    assert any(".dense.lora_A" in n for n, _ in model.named_parameters())


@needs_peft
def test_lora_checkpoint_holds_merged_weights_and_reloads(tmp_path):
    experiment = small(tmp_path, "optimizations.lora={ r = 4, dropout = 0.0 }")
    model, tokenizer = model_of(experiment, tmp_path)
    applied(experiment, model)
    with torch.no_grad():  # B starts at zero (adapters a no-op): move it so merging matters
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.1)
    model.eval()
    batch = {"input_ids": torch.tensor([[1, 5, 6, 2, 7, 8, 2]]),
             "token_type_ids": torch.tensor([[0, 0, 0, 0, 1, 1, 1]]),
             "attention_mask": torch.ones(1, 7, dtype=torch.long)}
    save_checkpoint(tmp_path / "ckpt", model, tokenizer, experiment, {"num_logits": 1})
    reloaded = load_checkpoint(tmp_path / "ckpt").model
    assert not any("lora" in key for key in reloaded.state_dict())
    torch.testing.assert_close(reloaded(batch), model(batch), rtol=1e-5, atol=1e-5)


@needs_peft
def test_lora_run_with_packing_trains_and_the_checkpoint_scores_the_same(tmp_path):
    result = run(small(tmp_path, "optimizations.lora={}", "optimizations.packing={}"))
    lora, packing = result.telemetry
    assert (lora.name, lora.status, packing) == (
        "lora", "active", Telemetry("packing", "active", details="rows of 32 tokens"))
    assert re.fullmatch(r"r=\d+: [\d,]+ of [\d,]+ backbone parameters train", lora.details)
    checkpoint = load_checkpoint(result.directory / "checkpoint")
    total = sum(p.numel() for p in checkpoint.model.parameters())
    assert result.metrics["model/trainable_parameters"] < 0.2 * total
    experiment = checkpoint.experiment
    pairs = prepare(experiment, get_registry()).split("test")
    split = encode_split("test", pairs, checkpoint.tokenizer,
                         experiment.data, tmp_path / "enc")
    loss = get_registry().get("loss", experiment.train.loss.name).build(
        experiment.train.loss.options, pos_weight=1.0)
    probs, _ = score(checkpoint.model, loss, split, 64, checkpoint.tokenizer.pad_token_id,
                     "cpu")
    again = split_metrics(split, probs, 0.5, [f"A.{i}" for i in range(1, 10)])
    # float noise between batchings (~1e-7 in a probability) may swap two near-tied pairs,
    # which moves ROC-AUC by ~5e-6; a checkpoint that lost the adapters moves it by far more
    assert again["roc_auc"] == pytest.approx(result.metrics["test/roc_auc"], abs=1e-4)


def test_compile_pads_to_static_lengths(tmp_path):
    experiment = small(tmp_path, "data.max_length=256", "optimizations.compile={}")
    model, tokenizer = model_of(experiment, tmp_path)
    context = applied(experiment, model)
    assert context.pad_to_multiple == 64 and context.model is not model
    prepared = prepare(experiment, get_registry())
    split = encode_split("train", prepared.split("train"), tokenizer, experiment.data,
                         tmp_path / "enc")
    widths = {batch["input_ids"].size(1) for batch in train_loader(
        split, 8, 0, tokenizer.pad_token_id, pad_to_multiple=context.pad_to_multiple)}
    assert widths <= {64, 128, 192, 256}


def test_compiled_training_runs_on_cpu(tmp_path):
    """The one slow test: compiling forward + backward of a 1-layer model (one shape: a
    single batch per epoch, padded to 64)."""
    compiled = run(small(tmp_path, "train.batch_size=4096", "optimizations.compile={}"))
    assert compiled.telemetry == [Telemetry("compile", "active")]
    history = json.loads((compiled.directory / "history.json").read_text())
    assert math.isfinite(history[0]["train/epoch_loss"])
    assert math.isfinite(compiled.metrics["test/roc_auc"])
    state = load_checkpoint(compiled.directory / "checkpoint").model.state_dict()
    assert not any(key.startswith("_orig_mod") for key in state)


@needs_flash
def test_disentangled_flash_torch_kernel_matches_eager(tmp_path):
    experiment = small(tmp_path, "model.tiny.num_layers=2", "model.tiny.dropout=0.0",
                       "optimizations.attention={ backend = 'disentangled_flash', "
                       "kernel = 'torch' }")
    eager, _ = model_of(experiment, tmp_path)
    flash, _ = model_of(experiment, tmp_path)
    flash.load_state_dict(eager.state_dict())  # the same head and pooling too
    applied(experiment, flash)
    assert type(flash.backbone.encoder).__name__ == "DebertaV2OptimizedEncoder"
    assert eager.state_dict().keys() == flash.state_dict().keys()
    compare(eager, flash, "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the Triton kernel needs CUDA")
@needs_flash
def test_disentangled_flash_triton_kernel_matches_eager(tmp_path):
    experiment = small(tmp_path, "model.tiny.num_layers=2", "model.tiny.dropout=0.0",
                       "optimizations.attention={ backend = 'disentangled_flash' }")
    eager, _ = model_of(experiment, tmp_path)
    flash, _ = model_of(experiment, tmp_path)
    flash.load_state_dict(eager.state_dict())  # the same head and pooling too
    applied(experiment, flash.cuda(), device="cuda")
    compare(eager.cuda(), flash, "cuda")


def compare(eager, flash, device):
    """Same logits and same gradients on a padded batch (the second row is half padding)."""
    eager.eval(), flash.eval()  # the head's dropout; gradients still flow
    torch.manual_seed(0)
    ids = torch.randint(5, eager.backbone.config.vocab_size, (2, 24), device=device)
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    batch = {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": mask}
    outputs = [model(batch) for model in (eager, flash)]
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-4, atol=1e-5)
    for output in outputs:
        output.sum().backward()
    for (name, a), b in zip(eager.named_parameters(), flash.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_options_are_validated(tmp_path):
    with pytest.raises(UserError):
        small(tmp_path, "optimizations.lora={ r = 0 }")
    with pytest.raises(UserError):
        small(tmp_path, "optimizations.compile={ compile_mode = 'fast' }")
    assert attrs.fields_dict(get_registry().get("optimization", "qlora").options)[
        "quant_type"].default == "nf4"


def test_quantized_layers_give_the_autocast_dtype():
    """bitsandbytes returns a 4-bit layer's output in its input's dtype (fp32 after a
    LayerNorm); the hook QLoRA puts on each gives autocast's dtype, as nn.Linear does, or
    DeBERTa's attention mixes fp32 queries with bf16 scores and overflows (seen on an H200)."""
    from cm_optimizations.lora import autocast_output

    output = torch.ones(2, 3)
    assert autocast_output(None, (), output).dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert autocast_output(None, (), output).dtype == torch.bfloat16
        assert torch.nn.functional.linear(output, torch.ones(4, 3)).dtype == torch.bfloat16
