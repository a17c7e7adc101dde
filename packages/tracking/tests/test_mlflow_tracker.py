"""The mlflow tracker against real stores: a sqlite file and a loopback `mlflow server`."""

import csv
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
from mlflow import MlflowClient
from rich.console import Console

from cm.config import load_experiment
from cm.data.prepare import prepare
from cm.hookspecs import hookimpl
from cm.registry import get_registry
from cm.testing import TINY_RUN
from cm.train import engine
from cm_tracking.mlflow_tracker import MlflowTracker, dataset_digest

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "experiments" / "demo-posts.toml"
SMALL = [*TINY_RUN, "train.epochs=2", "eval.evidence=true"]


@pytest.fixture(autouse=True)
def no_tracking_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def tiny(tmp_path, uri, *more):
    return load_experiment(DEMO, [*SMALL, f"output_dir={tmp_path}",
                                  f"tracking.mlflow={{ tracking_uri = '{uri}' }}", *more],
                           registry=get_registry())


def run_quietly(experiment, listeners=()):
    with open(os.devnull, "w") as sink:
        return engine.run_experiment(experiment, console=Console(file=sink),
                                     listeners=listeners)


def only_run(client, name="demo"):
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    return runs[0]


def git(*args):
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_finished_run_is_logged_in_full(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the commit comes from cm's own sources, not the cwd
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment = tiny(tmp_path, uri, "optimizations.tf32={ mode = 'auto' }",
                      "optimizations.bucketing={}")
    run = run_quietly(experiment)
    client = MlflowClient(tracking_uri=uri)
    logged = only_run(client)

    assert logged.info.status == "FINISHED"
    assert logged.info.run_name == run.directory.name
    assert run.links["mlflow"] == {"run_id": logged.info.run_id,
                                   "experiment_id": logged.info.experiment_id,
                                   "tracking_uri": uri}
    params = logged.data.params
    assert params["train.lr"] == "0.001"
    assert params["train.epochs"] == "2"
    assert params["model.tiny.hidden_size"] == "32"
    assert params["data.split"] == "[0.4, 0.3, 0.3]"
    assert not any(k.startswith("tracking.") for k in params)

    history = client.get_metric_history(logged.info.run_id, "val/macro_f1")
    assert sorted(m.step for m in history) == [1, 2]
    steps = client.get_metric_history(logged.info.run_id, "train/loss")
    assert len(steps) >= 2 and [m.step for m in steps] == sorted({m.step for m in steps})
    assert len(client.get_metric_history(logged.info.run_id, "train/lr")) == len(steps)
    # the running rate per step, then the run's figure at the last step: its latest value
    rates = client.get_metric_history(logged.info.run_id, "train/samples_per_s")
    assert len(rates) == len(steps) + 1
    assert max(r.step for r in rates) == max(m.step for m in steps)
    assert logged.data.metrics["train/samples_per_s"] == pytest.approx(
        run.metrics["train/samples_per_s"])
    assert not any(k.startswith("best/train") for k in logged.data.metrics)
    assert len(client.get_metric_history(logged.info.run_id, "train/epoch_loss")) == 2
    metrics = logged.data.metrics
    tests = {k: v for k, v in run.metrics.items() if k.startswith("test/")}
    assert tests and {k: metrics[k] for k in tests} == pytest.approx(tests, rel=1e-12)
    for key in ("calibration/A.1/bias", "calibration/platt_kept", "floor/test/post_macro_f1",
                "floor/test/post_macro_f1_low", "floor/val/A.1/f1"):
        assert metrics[key] == pytest.approx(run.metrics[key])
    for key in ("post_macro_f1", "post_macro_f1_low", "A.1/threshold", "A.1/ece",
                "evidence_hit_at_1", "evidence_overlap_hit_at_3"):
        assert metrics[f"test_tuned/{key}"] == pytest.approx(run.metrics[f"test_tuned/{key}"])
    # the epochs' history of the selection metric stays; the best checkpoint's value is best/
    history = client.get_metric_history(logged.info.run_id, "val_tuned/post_macro_f1")
    assert len(history) == 2
    final = run.metrics["val_tuned/post_macro_f1"]
    assert metrics.get("best/val_tuned/post_macro_f1", history[-1].value) == pytest.approx(final)
    assert metrics["best_epoch"] == run.metrics["best_epoch"]
    assert metrics["best/val/macro_f1"] == pytest.approx(run.metrics["val/macro_f1"])
    assert metrics["test_tuned/macro_f1"] == pytest.approx(run.metrics["test_tuned/macro_f1"])
    assert metrics["system/peak_memory_mb"] > 0
    with (run.directory / "test_per_criterion.csv").open() as table:
        rows = list(csv.DictReader(table))
    assert [r["criterion"] for r in rows] == [f"A.{i}" for i in range(1, 10)]
    for row in rows:
        assert metrics[f"test_tuned/{row['criterion']}/f1"] == float(row["f1"])

    tags = logged.data.tags
    assert tags["mlflow.source.git.commit"] == git("rev-parse", "HEAD")
    assert tags["cm.git_dirty"] == str(bool(git("status", "--porcelain"))).lower()
    digests = prepare(experiment, get_registry()).corpus.digests
    assert digests
    assert {k.removeprefix("cm.dataset.sha256."): v for k, v in tags.items()
            if k.startswith("cm.dataset.sha256.")} == digests
    assert tags["cm.version.python"] == ".".join(map(str, sys.version_info[:3]))
    for name in ("torch", "transformers", "mlflow", "cm-core", "cm-tracking"):
        assert tags[f"cm.version.{name}"] == importlib.metadata.version(name)
    assert tags["cm.device"] == "cpu" and tags["cm.device_name"]

    assert tags["cm.optimization.tf32"] == "skipped"
    assert tags["cm.optimization.bucketing"] == "active"

    [given] = logged.inputs.dataset_inputs
    assert given.dataset.name == "demo"
    assert given.dataset.digest == dataset_digest(digests)
    assert json.loads(given.dataset.source)["tags"]["posts"] == 300
    assert [(t.key, t.value) for t in given.tags] == [("mlflow.data.context", "training")]

    names = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"config.toml", "metrics.json", "history.json", "optimizations.json"} <= names
    for split in ("val", "test"):
        assert {f"{split}_confusion_matrix.png", f"{split}_classification_report.json",
                f"{split}_per_criterion.csv", f"{split}_metrics.json"} <= names
    assert "checkpoint" not in names  # log_checkpoint is off by default
    saved = Path(client.download_artifacts(logged.info.run_id, "optimizations.json",
                                           str(tmp_path)))
    assert {(r["name"], r["status"]) for r in json.loads(saved.read_text())} == {
        ("tf32", "skipped"), ("bucketing", "active")}
    config = Path(client.download_artifacts(logged.info.run_id, "config.toml", str(tmp_path)))
    assert config.read_text() == (run.directory / "config.toml").read_text()
    saved = Path(client.download_artifacts(logged.info.run_id, "metrics.json", str(tmp_path)))
    assert json.loads(saved.read_text()) == json.loads(
        (run.directory / "metrics.json").read_text())
    # artifacts land beside the sqlite file, not in the working directory
    assert (tmp_path / "mlruns").is_dir()

    # privacy: no post text in params, tags, dataset metadata or any artifact
    everything = Path(client.download_artifacts(logged.info.run_id, "", str(tmp_path / "all")))
    stored = [str(params), str(tags), given.dataset.source] + [
        f.read_text(errors="ignore") for f in everything.rglob("*") if f.is_file()]
    posts = prepare(experiment, get_registry()).corpus.posts
    snippets = [p.text[:40] for p in posts if len(p.text) >= 40]
    assert len(snippets) > 100
    assert not [s for s in snippets if any(s in blob for blob in stored)]


def test_the_tracker_logs_the_run_it_is_handed_without_checking_whose_it_is(tmp_path):
    """A tracker hears only its own run (it is that run's listener), so it does not compare
    identities: a run of another experiment object is logged all the same."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment = tiny(tmp_path, uri)
    tracker = MlflowTracker(experiment.tracking["mlflow"].options, experiment)
    run = engine.Run(attrs.evolve(experiment, name="other"), tmp_path, "cpu",
                     prepare(experiment, get_registry()), epoch=1)
    tracker.run_started(run=run)
    tracker.epoch_ended(run=run, epoch=1, metrics={"val/macro_f1": 0.25})
    tracker.run_finished(run=run, status="FINISHED", error=None)
    logged = MlflowClient(tracking_uri=uri).get_run(run.links["mlflow"]["run_id"])
    assert logged.info.status == "FINISHED"
    assert logged.data.metrics["val/macro_f1"] == 0.25
    assert logged.data.tags["cm.experiment"] == "other"


class CrashAtEpoch:
    """A plugin that raises at the end of an epoch, after the tracker has logged it."""

    def __init__(self, error):
        self.error = error

    @hookimpl
    def epoch_ended(self, run, epoch, metrics):
        if epoch == 2:
            raise self.error


@pytest.mark.parametrize(("error", "status"), [(RuntimeError("disk full"), "FAILED"),
                                               (KeyboardInterrupt(), "KILLED")])
def test_a_crashed_run_keeps_what_it_logged(tmp_path, error, status):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(type(error)):  # a run's listeners hear each event after its trackers
        run_quietly(tiny(tmp_path, uri, "name='broken'"), listeners=[CrashAtEpoch(error)])
    client = MlflowClient(tracking_uri=uri)
    logged = only_run(client, "broken")
    assert logged.info.status == status
    assert logged.info.end_time is not None
    assert logged.data.params["train.epochs"] == "2"
    assert type(error).__name__ in logged.data.tags["cm.error"]
    history = client.get_metric_history(logged.info.run_id, "val/macro_f1")
    assert sorted(m.step for m in history) == [1, 2]
    assert client.get_metric_history(logged.info.run_id, "train/loss")
    assert not any(k.startswith("test") for k in logged.data.metrics)
    names = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert "config.toml" in names and "metrics.json" not in names
    assert len(logged.inputs.dataset_inputs) == 1


@pytest.fixture
def server(tmp_path, mlflow_server_at):
    with mlflow_server_at(f"sqlite:///{tmp_path}/srv.db", tmp_path / "art") as url:
        yield url


def test_logs_to_a_tracking_server_with_the_checkpoint(tmp_path, server):
    """Everything over HTTP, artifacts proxied by the server (mlflow-artifacts:)."""
    run = run_quietly(tiny(tmp_path / "out", server,
                           "tracking.mlflow.log_checkpoint=true",
                           "tracking.mlflow.tags={ team = 'nlp' }",
                           "tracking.mlflow.experiment_name='shared'"))
    client = MlflowClient(tracking_uri=server)
    logged = only_run(client, "shared")
    assert logged.info.status == "FINISHED"
    assert logged.info.artifact_uri.startswith("mlflow-artifacts:")
    assert logged.data.tags["team"] == "nlp"
    assert logged.data.metrics["test/macro_f1"] == pytest.approx(run.metrics["test/macro_f1"])
    assert logged.data.params["model.tiny.num_layers"] == "1"
    checkpoint = Path(client.download_artifacts(logged.info.run_id, "checkpoint",
                                                str(tmp_path / "down")))
    for name in ("model.safetensors", "meta.json", "experiment.toml"):
        assert (checkpoint / name).read_bytes() == (
            run.directory / "checkpoint" / name).read_bytes()
    assert (tmp_path / "art").is_dir()


def test_step_metrics_reach_the_store_within_15_seconds(tmp_path):
    """Buffered step metrics are sent at the first step and then whenever 15 s have passed
    (a clock injected, so nothing here waits or depends on the machine's speed)."""
    from types import SimpleNamespace

    from cm.data.prepare import prepare
    from cm_tracking.mlflow_tracker import FLUSH_SECONDS, MlflowTracker

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment = tiny(tmp_path, uri)
    tracker = get_registry().get("tracker", "mlflow").build(
        experiment.tracking["mlflow"].options, experiment=experiment)
    assert isinstance(tracker, MlflowTracker)
    now = [1000.0]
    tracker.clock = lambda: now[0]
    (tmp_path / "run").mkdir()
    run = SimpleNamespace(experiment=experiment, directory=tmp_path / "run", device="cpu",
                          epoch=1, metrics={}, telemetry=[], links={}, parent=None,
                          prepared=prepare(experiment, get_registry()))
    tracker.run_started(run=run)
    client = MlflowClient(tracking_uri=uri)

    def seen():
        return [m.step for m in client.get_metric_history(tracker.run_id, "train/loss")]

    tracker.step_ended(run=run, step=1, metrics={"train/loss": 0.9})
    assert seen() == [1]
    now[0] += FLUSH_SECONDS - 1
    tracker.step_ended(run=run, step=2, metrics={"train/loss": 0.8})
    assert seen() == [1]  # buffered: not one round trip per step
    now[0] += 1
    tracker.step_ended(run=run, step=3, metrics={"train/loss": 0.7})
    assert sorted(seen()) == [1, 2, 3]
    run_id = tracker.run_id
    tracker.run_finished(run=run, status="FINISHED", error=None)
    assert client.get_run(run_id).info.status == "FINISHED"


def test_a_tracked_cm_run_loads_its_data_once_and_builds_its_tracker_once(tmp_path,
                                                                         monkeypatch):
    """``cm run`` checks, tracks and trains on one load of the dataset and one tracker: the
    checks keep what they loaded and built, the tracker reads the corpus off the run."""
    from click.testing import CliRunner

    from cm.cli.main import cli
    from cm.registry import Registry

    built = []
    plain = Registry.build

    def counting(self, spec, **kwargs):
        built.append(spec.kind)
        return plain(self, spec, **kwargs)

    monkeypatch.setattr(Registry, "build", counting)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sets = [*TINY_RUN, f"output_dir={tmp_path}", f"tracking.mlflow={{ tracking_uri = '{uri}' }}"]
    result = CliRunner().invoke(cli, ["run", str(DEMO), *(f"--set={s}" for s in sets)])
    assert result.exit_code == 0, result.output
    assert built.count("dataset") == 1 and built.count("tracker") == 1
    (logged,) = MlflowClient(tracking_uri=uri).search_runs(
        [MlflowClient(tracking_uri=uri).get_experiment_by_name("demo").experiment_id])
    assert logged.info.status == "FINISHED"
    assert any(key.startswith("cm.dataset.sha256.") for key in logged.data.tags)
