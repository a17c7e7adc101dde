"""Every hook, as cm calls it: one tiny run whose components all come from a recording
plugin (wrapping cm's own) and whose tracker and plugin record every lifecycle call.
tests/test_docs.py requires a ``test_hook_<name>`` for every hookspec."""

import inspect
from collections import defaultdict
from pathlib import Path

import pytest

from cm import contracts
from cm.hookspecs import hookimpl
from cm.optimization import Optimization, OptimizationOptions, TrainContext
from cm.plugins import discover
from cm.registry import build_registry
from cm.testing import make_tiny_experiment
from cm.train.engine import run_experiment

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

LIFECYCLE = ("run_started", "step_ended", "epoch_ended", "evaluated", "run_finished")


class Listener:
    """Records each lifecycle call as (hook, arguments)."""

    def __init__(self):
        self.calls = []

    def seen(self, hook):
        return [arguments for name, arguments in self.calls if name == hook]

    @hookimpl
    def run_started(self, run):
        self.calls.append(("run_started", {"run": run}))

    @hookimpl
    def step_ended(self, run, step, metrics):
        self.calls.append(("step_ended", {"run": run, "step": step, "metrics": metrics}))

    @hookimpl
    def epoch_ended(self, run, epoch, metrics):
        self.calls.append(("epoch_ended", {"run": run, "epoch": epoch, "metrics": metrics}))

    @hookimpl
    def evaluated(self, run, split, metrics, artifacts):
        self.calls.append(("evaluated", {"run": run, "split": split, "metrics": metrics,
                                         "artifacts": artifacts}))

    @hookimpl
    def run_finished(self, run, status, error):
        self.calls.append(("run_finished", {"run": run, "status": status, "error": error}))


class Recording(Listener):
    """Registers one component of every kind, named ``rec``, each built by cm's own."""

    def __init__(self, builtin):
        super().__init__()
        self.builtin = builtin
        self.built = defaultdict(list)  # kind -> (keyword arguments, result) per build
        self.trackers = []

    def wrap(self, kind, name):
        def factory(options, **kwargs):
            result = self.builtin.get(kind, name).build(None, **kwargs)
            self.built[kind].append((kwargs, result))
            return result

        return factory

    @hookimpl
    def register_heads(self, register):
        register("rec", self.wrap("head", "linear"))

    @hookimpl
    def register_poolings(self, register):
        register("rec", self.wrap("pooling", "mean"))

    @hookimpl
    def register_losses(self, register):
        register("rec", self.wrap("loss", "bce"))

    @hookimpl
    def register_optimizers(self, register):
        register("rec", self.wrap("optimizer", "adamw"))

    @hookimpl
    def register_schedulers(self, register):
        register("rec", self.wrap("scheduler", "linear"))

    @hookimpl
    def register_datasets(self, register):
        register("rec", self.wrap("dataset", "demo"))

    @hookimpl
    def register_optimizations(self, register):
        def factory(options, **kwargs):
            optimization = Applied(options)
            self.built["optimization"].append((kwargs, optimization))
            return optimization

        register("rec", factory, options=OptimizationOptions)

    @hookimpl
    def register_trackers(self, register):
        def factory(options, **kwargs):
            tracker = Listener()
            self.built["tracker"].append((kwargs, tracker))
            return tracker

        register("rec", factory)


class Applied(Optimization):
    """Acts where docs/plugins.md says an optimization may: in apply, and after each
    backward through a gradient hook installed there."""

    backwards = 0

    def apply(self, context):
        self.context = context
        next(context.model.parameters()).register_post_accumulate_grad_hook(self.count)
        self.details = "counts backward passes"

    def count(self, parameter):
        self.backwards += 1


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    builtin = build_registry(discover())
    plugins = discover()
    recording = Recording(builtin)
    plugins.manager.register(recording, name="recording")
    registry = build_registry(plugins)
    rec = {"name": "rec"}
    experiment = make_tiny_experiment(
        tmp_path_factory.mktemp("hooks"), registry=registry,
        data={"dataset": rec}, model={"head": rec, "pooling": rec},
        train={"loss": rec, "optimizer": rec, "scheduler": rec},
        optimizations={"rec": {}}, tracking={"rec": {}})
    run = run_experiment(experiment, registry=registry)
    return recording, run


def arguments_of(factory_protocol) -> list[str]:
    """The keyword arguments a contracts.*Factory lists after ``options``."""
    return list(inspect.signature(factory_protocol.__call__).parameters)[2:]


def built(recorded, kind, protocol):
    recording, _ = recorded
    [(kwargs, result)] = recording.built[kind]
    assert sorted(kwargs) == sorted(arguments_of(protocol))
    return kwargs, result


def test_hook_register_heads(recorded):
    kwargs, head = built(recorded, "head", contracts.HeadFactory)
    assert kwargs["num_logits"] == 1
    assert kwargs["in_features"] == recorded[0].built["pooling"][0][1].out_features == 32


def test_hook_register_poolings(recorded):
    kwargs, pooling = built(recorded, "pooling", contracts.PoolingFactory)
    assert kwargs == {"hidden_size": 32, "num_layers": 1}
    assert isinstance(pooling, contracts.Pooling)


def test_hook_register_losses(recorded):
    kwargs, loss = built(recorded, "loss", contracts.LossFactory)
    assert kwargs["pos_weight"] > 1  # negatives outnumber positives in the demo's train split
    assert isinstance(loss, contracts.Loss)


def test_hook_register_optimizers(recorded):
    kwargs, optimizer = built(recorded, "optimizer", contracts.OptimizerFactory)
    assert kwargs["lr"] == 1e-3 and optimizer.param_groups


def test_hook_register_schedulers(recorded):
    kwargs, _ = built(recorded, "scheduler", contracts.SchedulerFactory)
    assert kwargs["optimizer"] is recorded[0].built["optimizer"][0][1]
    assert kwargs["num_training_steps"] == len(recorded[0].seen("step_ended"))


def test_hook_register_datasets(recorded):
    kwargs, corpus = built(recorded, "dataset", contracts.DatasetFactory)
    assert kwargs == {} and len(corpus.posts) == 300


def test_hook_register_optimizations(recorded):
    # built twice: by the preflight check (availability and conflicts on the device, nothing
    # applied) and by the trainer, whose instance is the one that trains
    (checked, probe), (kwargs, optimization) = recorded[0].built["optimization"]
    assert sorted(kwargs) == sorted(checked) == sorted(
        arguments_of(contracts.OptimizationFactory))
    assert getattr(probe, "context", None) is None  # the checked one was never applied
    assert isinstance(optimization.context, TrainContext)
    # one per training batch, plus the dry run's backward (cm.train.checks) before them
    assert optimization.backwards == len(recorded[0].seen("step_ended")) + 1
    assert [(row.status, row.details) for row in recorded[1].telemetry] == [
        ("active", "counts backward passes")]


def test_hook_register_trackers(recorded):
    kwargs, tracker = built(recorded, "tracker", contracts.TrackerFactory)
    assert kwargs["experiment"] is recorded[1].experiment
    assert [name for name, _ in tracker.calls if name in ("run_started", "run_finished")] \
        == ["run_started", "run_finished"]


@pytest.mark.parametrize("who", ["plugin", "tracker"])
def test_hook_run_started(recorded, who):
    [call] = listener(recorded, who).seen("run_started")
    assert call["run"] is recorded[1] and Path(call["run"].directory).is_dir()


def test_hook_step_ended(recorded):
    steps = recorded[0].seen("step_ended")
    assert [call["step"] for call in steps] == list(range(1, len(steps) + 1))
    assert {"train/loss", "train/lr"} <= set(steps[0]["metrics"])


def test_hook_epoch_ended(recorded):
    epochs = recorded[0].seen("epoch_ended")
    assert [call["epoch"] for call in epochs] == [1]  # TINY_RUN trains one epoch
    assert 0.0 <= epochs[0]["metrics"]["val/macro_f1"] <= 1.0


def test_hook_evaluated(recorded):
    calls = recorded[0].seen("evaluated")
    assert [call["split"] for call in calls] == ["val", "test"]
    assert calls[1]["metrics"]["macro_f1"] == recorded[1].metrics["test/macro_f1"]
    assert all(Path(path).exists() for path in calls[1]["artifacts"].values())


@pytest.mark.parametrize("who", ["plugin", "tracker"])
def test_hook_run_finished(recorded, who):
    [call] = listener(recorded, who).seen("run_finished")
    assert (call["status"], call["error"]) == ("FINISHED", None)
    assert listener(recorded, who).calls[-1][0] == "run_finished"


def listener(recorded, who):
    return recorded[0] if who == "plugin" else recorded[0].built["tracker"][0][1]


def test_a_bare_train_context_needs_no_experiment():
    context = TrainContext(experiment=None, device="cpu", model=None)
    assert (context.optimizer, context.batching, context.autocast_dtype) == (None, "random", None)


class RunSource:
    """A run source: runs by id, each a run directory; records what it was asked."""

    def __init__(self, runs):
        self.runs, self.asked = runs, []

    @hookimpl
    def fetch_run(self, run_id, part, tracking_uri, into):
        self.asked.append((run_id, part, tracking_uri, into.is_dir()))
        if run_id not in self.runs:
            return None
        return self.runs[run_id] / "checkpoint" if part == "checkpoint" else self.runs[run_id]


def test_hook_fetch_run(tiny_run, tmp_path, monkeypatch):
    """``cm compare ID`` and ``cm predict --run-id ID`` ask the run sources; a run no source
    knows is a UserError naming the fix."""
    import json

    from click.testing import CliRunner

    from cm.cli.compare_cmd import compare
    from cm.cli.run_cmd import predict
    from cm.errors import UserError

    plugins = discover(entry_points=[])
    source = RunSource({"run-1": tiny_run.directory})
    plugins.manager.register(source)
    monkeypatch.setattr("cm.plugins.installed_plugins", lambda: plugins)
    runner, here = CliRunner(), str(tiny_run.directory)
    compared = runner.invoke(compare, ["run-1", here, "--json", "--resamples", "100",
                                       "--tracking-uri", "store:x"])
    assert compared.exit_code == 0, compared.output
    assert json.loads(compared.stdout)["post_macro_f1"]["difference"] == 0.0
    assert source.asked == [("run-1", "predictions", "store:x", True)]
    posts = tmp_path / "posts.csv"
    posts.write_text("post_id,text\np1,I cannot sleep and I feel worthless\n")
    by_id = runner.invoke(predict, [str(posts), "--run-id", "run-1"])
    by_dir = runner.invoke(predict, [str(posts), "--model", f"{here}/checkpoint"])
    assert by_id.exit_code == by_dir.exit_code == 0 and by_id.stdout == by_dir.stdout
    assert source.asked[-1] == ("run-1", "checkpoint", None, True)
    unknown = runner.invoke(compare, ["nope", here])
    assert isinstance(unknown.exception, UserError)
    assert "no installed plugin fetches runs by id" in str(unknown.exception)
    both = runner.invoke(predict, [str(posts), "--run-id", "run-1", "--model", here])
    assert both.exit_code == 2 and "exactly one of --model DIR or --run-id ID" in both.output
