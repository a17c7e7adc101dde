"""The train/evaluate engine on a very small DeBERTaV3-shaped model (seconds per run)."""

import json
import re
from pathlib import Path

import pytest
import torch
from rich.console import Console

from cm.config import load_experiment
from cm.data.loaders import encode_split, train_loader
from cm.data.prepare import prepare
from cm.distributed import resolve_device
from cm.errors import Interrupted, UserError
from cm.hookspecs import hookimpl
from cm.model.backbone import load_backbone
from cm.model.checkpoint import load_checkpoint
from cm.model.crossencoder import build_cross_encoder
from cm.registry import get_registry
from cm.testing import TINY_RUN
from cm.train import engine
from cm.train.checks import dry_run
from cm.train.lifecycle import run_directory

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

DEMO = Path(__file__).resolve().parents[3] / "experiments" / "demo-posts.toml"


def small(tmp_path, *more):
    return load_experiment(DEMO, [*TINY_RUN, f"output_dir={tmp_path}", *more],
                           registry=get_registry())


def quiet():
    return Console(file=open("/dev/null", "w"))  # noqa: SIM115


def test_same_seed_same_metrics(tmp_path, tiny_run):
    first = tiny_run  # the same tiny experiment, trained once per session
    second = engine.run_experiment(small(tmp_path), console=quiet())
    assert first.status == second.status == "FINISHED"
    assert first.directory != second.directory
    assert scores(first) == scores(second)
    other = engine.run_experiment(small(tmp_path, "seed=99"), console=quiet())
    assert scores(other) != scores(first)


MEASURED = ("train/samples_per_s", "system/peak_memory_mb")  # vary run to run; not scores


def scores(run):
    """Metrics without the measured ones (throughput, memory), which vary between runs."""
    return {k: v for k, v in run.metrics.items() if k not in MEASURED}


def test_outputs_and_reload_give_identical_predictions(tmp_path, tiny_run):
    run = tiny_run
    names = {p.name for p in run.directory.iterdir()}
    assert {"config.toml", "history.json", "metrics.json", "checkpoint",
            "test_confusion_matrix.png", "test_classification_report.json",
            "test_per_criterion.csv", "val_metrics.json"} <= names
    metrics = json.loads((run.directory / "metrics.json").read_text())
    assert {"test/macro_f1", "test_tuned/macro_f1", "val/post_macro_f1",
            "calibration/A.1/bias"} <= set(metrics)
    checkpoint = load_checkpoint(run.directory / "checkpoint")
    assert checkpoint.meta["final"]
    assert checkpoint.meta["thresholds"]["A.1"] == metrics["test_tuned/A.1/threshold"]
    assert [c["id"] for c in checkpoint.meta["criteria"]] == [f"A.{i}" for i in range(1, 10)]
    # the reloaded model scores the test split exactly as the run did
    from cm.evaluate.validation import split_metrics
    from cm.model.scoring import score

    experiment = checkpoint.experiment
    prepared = prepare(experiment, get_registry())
    split = encode_split("test", prepared.split("test"), checkpoint.tokenizer, experiment.data,
                         Path(tmp_path) / "enc")
    loss = get_registry().get("loss", "bce").build(None, pos_weight=None)
    probs, _ = score(checkpoint.model, loss, split, 64, checkpoint.tokenizer.pad_token_id,
                     "cpu")
    again = split_metrics(split, probs, 0.5, [f"A.{i}" for i in range(1, 10)])
    assert again["macro_f1"] == metrics["test/macro_f1"]
    assert again["roc_auc"] == metrics["test/roc_auc"]


def test_without_a_terminal_a_run_prints_plain_progress_lines(tiny_run):
    printed = (Path(tiny_run.experiment.output_dir).parent / "console.txt").read_text()
    steps = [line for line in printed.splitlines() if line.startswith("epoch 1: step ")]
    total = int(re.match(r"epoch 1: step \d+/(\d+)", steps[0]).group(1))
    assert total >= 10 and len(steps) == 10  # one per tenth of the epoch
    assert re.fullmatch(rf"epoch 1: step {total}/{total} \(100%\)  loss \d\.\d{{4}}  "
                        r"lr \d\.\d\de[+-]\d\d  \d+\.\d samples/s  ETA 0:00:00", steps[-1])
    assert "\x1b[" not in printed  # no terminal control sequences in a file


def test_thresholds_are_tuned_on_validation_labels_only(tmp_path, monkeypatch):
    from cm.evaluate import decisions

    seen = []
    original = decisions.tune_thresholds
    monkeypatch.setattr(decisions, "tune_thresholds", lambda mode, ids, labels, probs: seen.append(
        (list(ids), labels.copy())) or original(mode, ids, labels, probs))
    experiment = small(tmp_path, "eval.evidence=false")
    engine.run_experiment(experiment, console=quiet())
    val = [(p.criterion_id, p.label) for p in prepare(experiment, get_registry()).split("val")]
    assert seen and all(list(zip(ids, labels.tolist(), strict=True)) == val
                        for ids, labels in seen)  # every epoch's and the final tuning


def test_windows_truncation_scores_every_pair_once_and_predict_names_the_evidence(tmp_path):
    run = engine.run_experiment(small(tmp_path, "data.truncation=windows", "data.max_length=128",
                                     "data.stride=32"), console=quiet())
    assert run.status == "FINISHED"
    report = json.loads((run.directory / "test_metrics.json").read_text())
    assert report["metrics"]["n"] == len(prepare(small(tmp_path), get_registry()).split("test"))
    from cm.predict import predict

    checkpoint = load_checkpoint(run.directory / "checkpoint")
    long_post = " ".join(["I went to the park with my sister and we talked for hours."] * 12)
    rows = predict(checkpoint, [("short", "I cannot sleep at night."), ("long", long_post)],
                   with_text=True)
    short = [r for r in rows if r["post_id"] == "short"]
    long = [r for r in rows if r["post_id"] == "long"]
    assert len(short) == len(long) == 9
    assert all("evidence_window" not in r for r in short)
    from cm.data.encode import encode_pairs
    from cm.predict import post_token_ids

    data, tokenizer = checkpoint.experiment.data, checkpoint.tokenizer
    post_tokens = tokenizer(long_post, add_special_tokens=False)["input_ids"]
    criteria = {c["id"]: c["text"] for c in checkpoint.meta["criteria"]}
    for row in long:
        windows = encode_pairs([(criteria[row["criterion_id"]], long_post)], tokenizer,
                               data.max_length, "windows", data.stride)
        assert len(windows) > 1
        start, end = map(int, row["evidence_tokens"].split("-"))
        assert post_tokens[start:end] == post_token_ids(windows[row["evidence_window"]])
        assert row["window_text"].strip()


def test_dry_run_stops_before_training(tmp_path):
    run = engine.run_experiment(small(tmp_path), dry=True, console=quiet())
    assert run.status == "FINISHED" and run.metrics == {}
    assert not (run.directory / "checkpoint").exists()


def tiny_parts(tmp_path, head="linear"):
    experiment = small(tmp_path, f"model.head.name={head}")
    prepared = prepare(experiment, get_registry())
    backbone, tokenizer = load_backbone("tiny-deberta-v3", texts=prepared.tokenizer_texts(),
                                        tiny=experiment.model.tiny, cache_root=tmp_path)
    loss = get_registry().get("loss", "bce").build(None, pos_weight=1.0)
    model = build_cross_encoder(experiment, get_registry(), backbone, loss.num_logits)
    split = encode_split("train", prepared.split("train")[:64], tokenizer, experiment.data,
                         tmp_path / "enc")
    batch = next(iter(train_loader(split, 8, 0, tokenizer.pad_token_id)))
    batch.pop("index")
    return model, loss, batch, tokenizer


def test_dry_run_catches_a_tokenizer_that_does_not_segment(tmp_path):
    model, loss, batch, tokenizer = tiny_parts(tmp_path)
    real = batch["attention_mask"].bool()
    batch["input_ids"] = torch.where(real, torch.full_like(batch["input_ids"],
                                                           tokenizer.unk_token_id),
                                     batch["input_ids"])
    with pytest.raises(UserError, match=r"maps 100% of the tokens .* to \[UNK\]"):
        dry_run(model, loss, batch, tokenizer, "cpu")


def test_dry_run_catches_a_head_of_the_wrong_width(tmp_path):
    model, _, batch, tokenizer = tiny_parts(tmp_path)
    two_logits = get_registry().get("loss", "weighted_ce").build(None, pos_weight=1.0)
    with pytest.raises(UserError, match=r"logits of shape \[8, 1\], expected \[8, 2\]"):
        dry_run(model, two_logits, batch, tokenizer, "cpu")


def test_dry_run_catches_ids_outside_the_embeddings(tmp_path):
    model, loss, batch, tokenizer = tiny_parts(tmp_path)
    batch["input_ids"][0, 1] = 10**6
    with pytest.raises(UserError, match="outside the model's"):
        dry_run(model, loss, batch, tokenizer, "cpu")


@pytest.mark.parametrize("override", [
    "model.pooling.name=cls", "model.pooling.name=max", "model.pooling.name=attention",
    "model.pooling={ name = 'weighted_layers', layers = 2 }", "model.pooling.name=cls_mean",
    "model.head.name=linear", "train.loss.name=weighted_ce", "train.loss.name=focal",
    "train.scheduler.name=cosine", "train.scheduler.name=constant",
    "train.layerwise_lr_decay=0.8",
])
def test_every_component_trains_a_step(tmp_path, override):
    experiment = small(tmp_path, override)
    run = engine.run_experiment(experiment, dry=True, console=quiet())
    assert run.status == "FINISHED"
    prepared = prepare(experiment, get_registry())
    backbone, tokenizer = load_backbone("tiny-deberta-v3", texts=prepared.tokenizer_texts(),
                                        tiny=experiment.model.tiny, cache_root=tmp_path)
    registry = get_registry()
    loss = registry.build(experiment.train.loss, pos_weight=2.0)
    model = build_cross_encoder(experiment, registry, backbone, loss.num_logits)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    split = encode_split("train", prepared.split("train")[:32], tokenizer, experiment.data,
                         tmp_path / "enc")
    batch = next(iter(train_loader(split, 16, 0, tokenizer.pad_token_id)))
    batch.pop("index")
    before = [p.detach().clone() for p in model.head.parameters()]
    loss(model(batch), batch["labels"]).backward()
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.head.parameters(),
                                                      strict=True))


def test_cuda_request_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(UserError, match="no CUDA GPU is visible"):
        resolve_device("cuda")


class Recorder:
    """A listener that writes down every lifecycle call it hears, with the run's name."""

    from cm.hookspecs import hookimpl

    def __init__(self):
        self.events = []

    @hookimpl
    def run_started(self, run):
        self.events.append(("run_started", run.experiment.name))

    @hookimpl
    def step_ended(self, run, step, metrics):
        self.events.append(("step_ended", run.experiment.name, step))

    @hookimpl
    def epoch_ended(self, run, epoch, metrics):
        self.events.append(("epoch_ended", run.experiment.name, epoch))

    @hookimpl
    def evaluated(self, run, split, metrics, artifacts):
        self.events.append(("evaluated", run.experiment.name, split))

    @hookimpl
    def run_finished(self, run, status, error):
        self.events.append(("run_finished", run.experiment.name, status,
                            type(error).__name__))


def test_failed_run_reports_failed_to_its_listeners(tmp_path):
    recorder = Recorder()
    with pytest.raises(UserError):
        engine.run_experiment(small(tmp_path, "train.optimizer.name=adamw_8bit"),
                              console=quiet(), listeners=[recorder])
    assert recorder.events == [("run_started", "demo"),
                               ("run_finished", "demo", "FAILED", "UserError")]


def test_a_listener_hears_its_own_run_only_and_the_installed_plugins_stay_as_they_were(
        tmp_path):
    manager = get_registry().plugins.manager
    installed = manager.list_name_plugin()
    first, second = Recorder(), Recorder()
    run = engine.run_experiment(small(tmp_path, "name='first'"), console=quiet(),
                                listeners=[first])
    engine.run_experiment(small(tmp_path, "name='second'"), console=quiet(),
                          listeners=[second])
    assert manager.list_name_plugin() == installed
    assert {event[1] for event in first.events} == {"first"}
    assert {event[1] for event in second.events} == {"second"}
    kinds = [event[0] for event in first.events]
    steps = [event[2] for event in first.events if event[0] == "step_ended"]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert steps == list(range(1, len(steps) + 1)) and steps
    assert [e[2] for e in first.events if e[0] == "epoch_ended"] == list(
        range(1, run.experiment.train.epochs + 1))
    assert [e[2] for e in first.events if e[0] == "evaluated"] == ["val", "test"]
    assert first.events[-1] == ("run_finished", "first", "FINISHED", "NoneType")


def test_nonfinite_loss_stops_the_run_with_the_fix(tmp_path):
    from cm.optimization import TrainContext
    from cm.progress import Progress
    from cm.train.loop import Loop, train_epoch
    from cm.train.trainer import Trainer

    class Diverged(torch.nn.Module):  # what a model whose weights overflowed returns
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, batch):
            return self.w * torch.full((len(batch["labels"]), 1), float("nan"))

    model = Diverged()
    loss = get_registry().get("loss", "bce").build(None, pos_weight=None)
    loader = [{"index": torch.arange(2), "labels": torch.tensor([0, 1])}] * 2
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    trainer = Trainer(loss, model, TrainContext(small(tmp_path), "cpu", model), optimizer,
                      torch.amp.GradScaler("cpu", enabled=False), [], 1)
    loop = Loop(trainer, model, scheduler, epoch=1)
    with Progress(quiet()) as progress, pytest.raises(
            UserError, match="the loss is nan at epoch 1, batch 1; lower train.lr"):
        train_epoch(loop, loader, progress, "epoch 1")


def test_nonfinite_loss_with_the_scaler_is_counted_not_averaged(tmp_path):
    from cm.optimization import TrainContext
    from cm.train.loop import Loop, check_nonfinite
    from cm.train.trainer import Trainer

    scaler = torch.amp.GradScaler("cpu", enabled=True)
    loop = Loop(Trainer(None, None, TrainContext(small(tmp_path), "cpu", None), None, scaler,
                        [], 0), None, None)
    check_nonfinite(loop, float("inf"), 3)
    check_nonfinite(loop, float("nan"), 4)
    assert loop.nonfinite_losses == 2


def test_runs_started_in_the_same_second_claim_different_folders(tmp_path, monkeypatch):
    """Another process may create the timestamp folder between any check and our mkdir (CI
    saw FileExistsError from two runs started together): each folder is claimed by mkdir."""
    import time as clock
    from types import SimpleNamespace

    monkeypatch.setattr(clock, "strftime", lambda fmt: "20261130-215039")
    experiment = SimpleNamespace(output_dir=str(tmp_path), name="demo")
    real_mkdir = Path.mkdir

    def raced(self, *args, **kwargs):  # the other run wins the first name
        if self.name == "20261130-215039" and not self.exists():
            real_mkdir(self)
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", raced)
    first = run_directory(experiment)
    second = run_directory(experiment)
    assert (first.name, second.name) == ("20261130-215039-1", "20261130-215039-2")
    assert first.is_dir() and second.is_dir()


class CtrlCWhileSaving:
    """A listener that gets ``presses`` Ctrl-Cs while it saves at run_finished."""

    def __init__(self, presses):
        self.presses, self.saved, self.calls = presses, [], 0

    @hookimpl
    def run_finished(self, run, status, error):
        import signal

        self.calls += 1
        for _ in range(self.presses):
            signal.raise_signal(signal.SIGINT)
        self.saved.append(status)


@pytest.fixture
def stray_ctrl_c_fails():
    """A Ctrl-C that cm lets through fails the test instead of stopping the whole session."""
    import signal

    def fail(signum, frame):
        raise AssertionError("a Ctrl-C reached the caller of run_experiment")

    previous = signal.signal(signal.SIGINT, fail)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_while_the_run_is_saved_waits_for_the_save(tmp_path, capsys,
                                                            stray_ctrl_c_fails):
    listener = CtrlCWhileSaving(presses=1)
    with pytest.raises(Interrupted):  # raised once saved: a sweep stops too
        engine.run_experiment(small(tmp_path), dry=True, console=quiet(),
                              listeners=[listener])
    assert (listener.calls, listener.saved) == (1, ["FINISHED"])
    assert "saving what the run logged; press Ctrl-C again" in capsys.readouterr().err


def test_a_second_ctrl_c_while_the_run_is_saved_stops_it(tmp_path, stray_ctrl_c_fails):
    listener = CtrlCWhileSaving(presses=2)
    with pytest.raises(Interrupted):
        engine.run_experiment(small(tmp_path), dry=True, console=quiet(), listeners=[listener])
    assert (listener.calls, listener.saved) == (1, [])  # stopped; no KILLED save after it


def test_a_run_that_fails_before_it_starts_still_leaves_the_torchrun_group(tmp_path,
                                                                             monkeypatch):
    """A tracker that cannot be built (say) must not leave this rank in the process group."""
    from cm.train import lifecycle

    left = []
    monkeypatch.setattr(lifecycle, "stop", left.append)

    def broken(*args):
        raise RuntimeError("tracker store unreachable")

    monkeypatch.setattr(lifecycle, "run_hooks", broken)
    with pytest.raises(RuntimeError, match="unreachable"):
        engine.run_experiment(small(tmp_path), dry=True, console=quiet())
    assert len(left) == 1
