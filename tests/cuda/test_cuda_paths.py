"""Every CUDA-only path of cm, on a real GPU (``pytest -m cuda``; scripts/gpu-check).

Training checks use a DeBERTaV3-base-shaped model (hidden 768, 12 layers, 12 heads,
intermediate 3072; random init, as no weights exist offline) on the demo data: 32 optimizer
steps on one batch of 16 examples, through cm's own trainer and loop, must give finite losses
that fall (the model memorises the batch). Four batches of 16 seen 8 times were tried first on
an H200: a randomly initialised 12-layer model then learns too slowly for the check to tell a
working path from a broken one (fp32 + TF32: the loss fell 3% in 32 steps). Compile and CUDA
graphs compile forward and backward per shape, so their checks use 2 layers of that width at
128 tokens (one or two shapes). Equality checks compare a path with eager on the same weights
in eval mode, within bf16 tolerance.
"""

import copy
import math
import os
from pathlib import Path

import pytest
import torch
from rich.console import Console

from cm.bench.runner import subset
from cm.cachedir import cache_root
from cm.config import load_experiment
from cm.data.loaders import encode_split, to_device
from cm.data.prepare import prepare
from cm.data.splits import class_balance
from cm.model.backbone import load_backbone
from cm.model.checkpoint import load_checkpoint, save_checkpoint
from cm.predict import predict
from cm.progress import Progress
from cm.registry import get_registry
from cm.train.engine import peak_memory_mb
from cm.train.lifecycle import seed_everything
from cm.train.loop import Loop, train_epoch
from cm.train.trainer import build_trainer

pytestmark = pytest.mark.cuda

DEMO = Path(__file__).resolve().parents[2] / "experiments" / "demo-posts.toml"
BASE = ["model.tiny.hidden_size=768", "model.tiny.num_layers=12", "model.tiny.num_heads=12",
        "model.tiny.intermediate_size=3072", "data.max_length=256", "train.batch_size=16",
        "train.device=cuda", "train.lr=1e-4", "train.head_lr=1e-3",
        "train.scheduler={ name = 'constant' }", "model.tiny.dropout=0.0"]
# compile / CUDA graphs: 2 layers at 128 tokens, so one or two shapes compile
SHORT = ["model.tiny.num_layers=2", "data.max_length=128", "data.stride=32"]
EXAMPLES, EPOCHS = 16, 32  # one batch of 16, 32 times: 32 optimizer steps
BF16_TOLERANCE = 2e-2  # relative L2 error between two bf16 computations of the same thing


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    if "CM_CACHE_DIR" not in os.environ:
        monkeypatch.setenv("CM_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cm-cache"))


def experiment_of(tmp_path, *more):
    return load_experiment(DEMO, [*BASE, f"output_dir={tmp_path}", *more], registry=get_registry())


class Built:
    """A trainer as cm builds it, with the tokenizer and 64 encoded train examples."""

    def __init__(self, experiment):
        seed_everything(experiment.seed)
        registry = get_registry()
        prepared = prepare(experiment, registry)
        self.backbone, self.tokenizer = load_backbone(
            experiment.model.backbone, texts=prepared.tokenizer_texts(),
            tiny=experiment.model.tiny, cache_root=cache_root(), seed=experiment.seed)
        split = encode_split("train", prepared.split("train"), self.tokenizer, experiment.data,
                             cache_root() / "encoded")
        self.examples = subset(split, range(EXAMPLES))
        self.experiment, self.registry = experiment, registry
        self.trainer = build_trainer(experiment, registry, "cuda", self.backbone,
                                     class_balance(split.pairs)[2])

    def loader(self):
        return self.trainer.loader(self.examples, self.tokenizer.pad_token_id)

    def batch(self):
        batch = next(iter(self.loader()))
        batch.pop("index")
        return to_device(batch, "cuda")


class Steps:
    """What training reported: each optimizer step's loss, the fp16 steps skipped."""

    def __init__(self):
        self.losses, self.nonfinite = [], 0

    def __call__(self, step, metrics):
        self.losses.append(metrics["train/loss"])


def train(built) -> Steps:
    trainer = built.trainer
    loader = built.loader()
    loop = Loop(trainer, trainer.context.model,
                trainer.scheduler(built.registry, len(loader) * EPOCHS))
    steps = Steps()
    with Progress(Console(file=open(os.devnull, "w"))) as progress:  # noqa: SIM115
        for epoch in range(1, EPOCHS + 1):
            loop.epoch = epoch
            loader.batch_sampler.set_epoch(epoch)
            train_epoch(loop, loader, progress, f"epoch {epoch}", steps)
    steps.nonfinite = loop.nonfinite_losses
    return steps


def assert_learns(steps: Steps):
    losses = steps.losses
    assert len(losses) == EPOCHS * math.ceil(EXAMPLES / 16)
    finite = [loss for loss in losses if math.isfinite(loss)]
    # fp16 may meet an overflow, which its scaler skips and counts; nothing else may
    assert len(losses) - len(finite) <= steps.nonfinite
    first, last = sum(finite[:4]) / 4, sum(finite[-4:]) / 4
    assert last < 0.9 * first, f"loss did not fall: first 4 steps {first:.4f}, last {last:.4f}"


def relative_error(a, b) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def assert_telemetry_active(built, *names):
    rows = {row.name: row.status for row in built.trainer.telemetry}
    assert rows == dict.fromkeys(names, "active"), built.trainer.telemetry


TRAINING = {  # name -> the optimizations that run together (all in bf16 but fp16's)
    "bf16": ["bf16"],
    "tf32": ["tf32"],
    "fused_adamw": ["bf16", "fused_adamw"],
    "adamw_8bit": ["bf16", "adamw_8bit"],
    "lora": ["bf16", "lora"],
    "gradient_checkpointing_offload": ["bf16", "gradient_checkpointing={ offload = true }"],
    "bucketing": ["bf16", "bucketing"],
    "packing": ["bf16", "packing"],
    "loader": ["bf16", "bucketing", "loader"],
    "triton_attention": ["bf16", "attention={ backend = 'disentangled_flash' }"],
}


def optimizations(names):
    sets = []
    for name in names:
        key, _, value = name.partition("=")
        sets.append(f"optimizations.{key}={value or '{}'}")
    return sets


@pytest.mark.parametrize("case", list(TRAINING))
def test_each_optimization_trains_a_base_shaped_model(tmp_path, case):
    built = Built(experiment_of(tmp_path, *optimizations(TRAINING[case])))
    assert_telemetry_active(built, *(n.partition("=")[0] for n in TRAINING[case]))
    if case == "triton_attention":  # its kernels compile per length: at most 4 here
        assert built.trainer.context.pad_to_multiple == 64
    assert_learns(train(built))
    assert all(torch.isfinite(p).all() for p in built.trainer.model.parameters())
    assert peak_memory_mb("cuda:0") == torch.cuda.max_memory_allocated() / 2**20 > 0


@pytest.mark.parametrize("case", ["compile", "cuda_graphs"])
def test_compiled_training_learns(tmp_path, case):
    built = Built(experiment_of(tmp_path, *SHORT, "optimizations.bf16={}",
                                f"optimizations.{case}={{}}"))
    assert built.trainer.context.model is not built.trainer.model  # the compiled wrapper
    assert_learns(train(built))


def test_fp16_with_its_scaler_trains_and_keeps_the_weights_finite(tmp_path):
    built = Built(experiment_of(tmp_path, "optimizations.fp16={}"))
    steps = train(built)
    assert_learns(steps)
    scaler = built.trainer.scaler
    assert scaler.is_enabled() and math.isfinite(scaler.get_scale()) and scaler.get_scale() > 0
    assert all(torch.isfinite(p).all() for p in built.trainer.model.parameters())


def test_fp16_scaler_skips_a_step_whose_gradients_overflow(tmp_path):
    """DeBERTa-v3's fp16 history: an inf in the gradients must skip the step, not corrupt
    the weights; the scaler lowers its scale and training goes on."""
    built = Built(experiment_of(tmp_path, "optimizations.fp16={}"))
    trainer = built.trainer
    model, scaler = trainer.model, trainer.scaler
    batch = built.batch()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    scale = scaler.get_scale()
    with torch.autocast("cuda", dtype=torch.float16):
        value = trainer.loss(model(batch).float(), batch["labels"])
    scaler.scale(value * float("inf")).backward()
    scaler.step(trainer.optimizer)
    scaler.update()
    assert scaler.get_scale() < scale
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def eager_and(tmp_path, optimization, *more):
    """(logits of the path, logits of eager) on one batch, same weights, eval mode, bf16."""
    eager = Built(experiment_of(tmp_path, *more, "optimizations.bf16={}"))
    state = copy.deepcopy(eager.trainer.model.state_dict())
    other = Built(experiment_of(tmp_path, *more, "optimizations.bf16={}", optimization))
    other.trainer.model.load_state_dict(state)
    batch = other.batch()  # padded as the path needs (compile: to a multiple of 64)
    outputs = []
    for model in (other.trainer.context.model, eager.trainer.model):
        model.eval()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            outputs.append([model(batch).float() for _ in range(3)][-1])  # graphs: replayed
    return outputs


@pytest.mark.parametrize("optimization", ["optimizations.compile={}",
                                          "optimizations.cuda_graphs={}"])
def test_compiled_outputs_equal_eager(tmp_path, optimization):
    path, eager = eager_and(tmp_path, optimization, *SHORT)
    assert relative_error(path, eager) < BF16_TOLERANCE


def test_triton_attention_outputs_equal_eager(tmp_path):
    path, eager = eager_and(tmp_path, "optimizations.attention={ backend = "
                                      "'disentangled_flash' }")
    assert relative_error(path, eager) < BF16_TOLERANCE


def test_triton_attention_gradients_equal_eager(tmp_path):
    """The gradients of one batch through the Triton kernels (forward and backward), in bf16,
    are as close to eager's fp32 gradients as eager's own bf16 gradients are: for the whole
    model and for its worst weight matrix. Eval mode: the head's dropout would differ."""
    attention = "optimizations.attention={ backend = 'disentangled_flash' }"
    eager = Built(experiment_of(tmp_path, "optimizations.bf16={}"))
    path = Built(experiment_of(tmp_path, "optimizations.bf16={}", attention))
    path.trainer.model.load_state_dict(eager.trainer.model.state_dict())
    assert path.trainer.context.pad_to_multiple == 64
    batch = path.batch()
    reference = gradients(eager, batch, bf16=False)
    errors = {name: gradient_errors(gradients(built, batch, bf16=True), reference)
              for name, built in (("kernels", path), ("eager", eager))}
    (whole, worst), (eager_whole, eager_worst) = errors["kernels"], errors["eager"]
    assert whole <= max(2 * eager_whole, BF16_TOLERANCE), errors
    assert worst[1] <= max(2 * eager_worst[1], 2 * BF16_TOLERANCE), errors


def gradients(built, batch, bf16) -> dict:
    model = built.trainer.context.model
    model.eval()
    model.zero_grad()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
        built.trainer.loss(model(batch).float(), batch["labels"]).backward()
    return {n: p.grad.float().clone() for n, p in built.trainer.model.named_parameters()
            if p.grad is not None}


def gradient_errors(grads, reference) -> tuple:
    """(relative error of the whole gradient, (name, error) of the worst weight matrix)."""
    assert grads.keys() == reference.keys()
    whole = relative_error(torch.cat([grads[n].flatten() for n in reference]),
                           torch.cat([reference[n].flatten() for n in reference]))
    worst = max(((n, relative_error(grads[n], reference[n])) for n in reference
                 if reference[n].dim() == 2), key=lambda item: item[1])
    return whole, worst


def test_qlora_trains_saves_reloads_and_predicts(tmp_path):
    built = Built(experiment_of(tmp_path, "optimizations.bf16={}", "optimizations.qlora={}"))
    assert_telemetry_active(built, "bf16", "qlora")
    import bitsandbytes as bnb

    model = built.trainer.model
    quantized = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(quantized) == 12 * 3  # query, key and value of every layer
    assert_learns(train(built))
    criteria = [{"id": f"A.{i}", "text": f"criterion text {i}"} for i in range(1, 10)]
    save_checkpoint(tmp_path / "checkpoint", model, built.tokenizer, built.experiment,
                    {"num_logits": built.trainer.loss.num_logits, "criteria": criteria,
                     "thresholds": {c["id"]: 0.5 for c in criteria},
                     "temperatures": {c["id"]: 1.0 for c in criteria}})
    checkpoint = load_checkpoint(tmp_path / "checkpoint")
    assert not any("lora" in key for key in checkpoint.model.state_dict())
    batch = built.batch()
    model.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        trained = model(batch).float()
        reloaded = checkpoint.model.to("cuda")(batch).float()
    assert relative_error(reloaded, trained) < 5 * BF16_TOLERANCE  # 4-bit weights dequantized
    posts = [("p1", "I cannot sleep and I feel worthless every day."),
             ("p2", "We went hiking and had a great time.")]
    rows = predict(checkpoint, posts, device="cuda")
    assert len(rows) == 2 * 9
    assert all(0.0 <= row["probability"] <= 1.0 and row["decision"] in (0, 1) for row in rows)
