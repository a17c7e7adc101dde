"""``cm replay`` against a real sqlite store: one logged demo run, replayed by retraining
(within tolerance), re-evaluated from its logged checkpoint (exactly), refused when the
data changed, and exit 1 through the CLI when the delta is beyond the tolerance."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from rich.console import Console

from cm.config import load_experiment
from cm.data.demo import DEMO_ROOT
from cm.errors import UserError
from cm.registry import get_registry
from cm.testing import TINY_RUN
from cm.train import engine
from cm_tracking.replay import replay

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

ROOT = Path(__file__).resolve().parents[3]
CM = Path(sys.executable).parent / "cm"
SMALL = [*TINY_RUN, "train.epochs=2"]


def quiet():
    return Console(file=open(os.devnull, "w"))  # noqa: SIM115


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A finished run on a copy of the demo data (so a test can change it), checkpoint
    logged; returns (client, uri, MLflow run, data folder, cache folder)."""
    base = tmp_path_factory.mktemp("replay")
    cache = base / "cm-cache"
    data = base / "data"
    shutil.copytree(DEMO_ROOT, data)
    uri = f"sqlite:///{base}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CM_CACHE_DIR", str(cache))
        experiment = load_experiment(ROOT / "experiments" / "demo-posts.toml", [
            *SMALL, f"output_dir='{base / 'outputs'}'", f"data.dataset={{ name = 'redsm5', "
            f"root = '{data}' }}", "tracking.mlflow={ log_checkpoint = true }"],
            registry=get_registry())
        patch.setenv("MLFLOW_TRACKING_URI", uri)  # the tracker's default store
        engine.run_experiment(experiment, console=quiet())
    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("demo").experiment_id])
    return client, uri, run, data, cache


@pytest.fixture(autouse=True)
def env(logged, monkeypatch):
    monkeypatch.setenv("CM_CACHE_DIR", str(logged[4]))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_retrain_lands_within_tolerance_and_is_tagged(logged):
    client, uri, original, _, _ = logged
    outcome = replay(original.info.run_id, uri=uri, console=quiet())
    assert outcome.within and abs(outcome.delta_pp) <= 0.5
    assert outcome.original == original.data.metrics["test_tuned/post_macro_f1"]
    new = client.get_run(outcome.run_id)
    assert new.info.status == "FINISHED" and new.info.run_id != original.info.run_id
    assert new.data.metrics["test_tuned/post_macro_f1"] == outcome.replayed
    tags = new.data.tags
    assert tags["cm.replay_of"] == original.info.run_id
    assert tags["cm.replay.mode"] == "retrain"
    assert tags["cm.replay.data_changed"] == "false"
    assert float(tags["cm.replay.delta_pp"]) == pytest.approx(outcome.delta_pp, abs=1e-4)
    assert new.data.metrics["replay/delta_pp"] == pytest.approx(outcome.delta_pp)
    # the same resolved config, overrides included (tracker tables aside)
    assert new.data.params == original.data.params


def test_eval_only_reproduces_every_metric_exactly(logged):
    client, uri, original, _, _ = logged
    outcome = replay(original.info.run_id, uri=uri, eval_only=True, console=quiet())
    assert outcome.delta_pp == 0.0
    new = client.get_run(outcome.run_id)
    assert new.data.tags["cm.replay.mode"] == "eval-only"
    before, after = original.data.metrics, new.data.metrics
    scored = [k for k in before if k.split("/")[0] in ("test", "test_tuned", "val_tuned")
              and f"best/{k}" not in before]  # else the epochs' history: compared below
    assert len(scored) > 30
    assert {k: after[k] for k in scored} == {k: before[k] for k in scored}
    best_val = {k.removeprefix("best/"): v for k, v in before.items()  # scores, not timings
                if k.startswith(("best/val", "best/test"))}
    assert best_val and {k: after[k] for k in best_val} == best_val
    assert after["calibration/A.1/bias"] == before["calibration/A.1/bias"]
    assert outcome.compared > 60 and outcome.changed == ()


def test_a_changed_dataset_is_refused_unless_allowed(logged):
    client, uri, original, data, _ = logged
    posts = data / "redsm5" / "redsm5_posts.csv"
    kept = posts.read_bytes()
    try:
        posts.write_bytes(kept + b"\n")  # same rows, different bytes
        with pytest.raises(UserError, match=r"redsm5_posts\.csv differ.*--allow-data-change"):
            replay(original.info.run_id, uri=uri, eval_only=True, console=quiet())
        outcome = replay(original.info.run_id, uri=uri, eval_only=True,
                         allow_data_change=True, console=quiet())
    finally:
        posts.write_bytes(kept)
    assert client.get_run(outcome.run_id).data.tags["cm.replay.data_changed"] == "true"


def test_a_run_without_digests_needs_allow_data_change(logged, tmp_path):
    client, uri, original, _, _ = logged
    tags = {k: v for k, v in original.data.tags.items() if not k.startswith("cm.dataset.")}
    bare = client.create_run(original.info.experiment_id, tags=tags).info.run_id
    client.log_artifact(bare, client.download_artifacts(original.info.run_id, "config.toml",
                                                        str(tmp_path)))
    client.log_metric(bare, "test_tuned/post_macro_f1", 0.5)
    with pytest.raises(UserError, match="logged no dataset digests.*--allow-data-change"):
        replay(bare, uri=uri, eval_only=True, console=quiet())
    with pytest.raises(UserError, match="no 'checkpoint' artifact.*log_checkpoint = true"):
        replay(bare, uri=uri, eval_only=True, allow_data_change=True, console=quiet())


def test_cli_exits_1_beyond_the_tolerance(logged, tmp_path):
    """A copy of the run whose logged score is 20 pp higher than its checkpoint's."""
    client, uri, original, _, cache = logged
    run_id = original.info.run_id
    copy = client.create_run(original.info.experiment_id, tags=original.data.tags).info.run_id
    for name in ("config.toml", "checkpoint"):
        client.log_artifact(copy, client.download_artifacts(run_id, name, str(tmp_path)))
    client.log_metric(copy, "test_tuned/post_macro_f1",
                      original.data.metrics["test_tuned/post_macro_f1"] + 0.2)
    client.set_terminated(copy)
    env = {**os.environ, "CM_CACHE_DIR": str(cache), "MLFLOW_TRACKING_URI": uri}
    result = subprocess.run([str(CM), "replay", "--run-id", copy, "--eval-only"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]
    out = " ".join(result.stdout.split())
    assert "delta -20.00 pp, beyond the tolerance of 0.5 pp" in out, out
    assert "val/test scores:" in out and "1 differ (e.g. test_tuned/post_macro_f1)" in out, out
    missing = subprocess.run([str(CM), "replay", "--run-id", "nope"], capture_output=True,
                             text=True, env=env, cwd=tmp_path, timeout=300)
    assert missing.returncode == 2
    assert "no MLflow run 'nope'" in missing.stderr and "Traceback" not in missing.stderr


def test_predict_with_a_run_id_uses_the_logged_checkpoint(logged, tmp_path):
    from click.testing import CliRunner

    from cm.cli.main import cli

    client, uri, original, _, _ = logged
    posts = tmp_path / "posts.csv"
    posts.write_text("post_id,text\np1,I cannot sleep and I feel worthless\np2,Had a nice walk\n")
    local = Path(original.data.tags["cm.output_dir"]) / "checkpoint"
    runner = CliRunner()
    by_run = runner.invoke(cli, ["predict", str(posts), "--run-id", original.info.run_id,
                                 "--tracking-uri", uri])
    by_dir = runner.invoke(cli, ["predict", str(posts), "--model", str(local)])
    assert by_run.exit_code == by_dir.exit_code == 0, by_run.output
    assert by_run.stdout == by_dir.stdout  # (MLflow's download progress goes to stderr)
    assert len(by_run.stdout.strip().splitlines()) == 1 + 2 * 9  # header + posts x criteria
    neither = runner.invoke(cli, ["predict", str(posts)])
    assert neither.exit_code == 2 and "exactly one of --model DIR or --run-id ID" in neither.output


def test_compare_takes_mlflow_run_ids_and_refuses_an_unknown_one(logged):
    import json

    from click.testing import CliRunner

    from cm.cli.main import cli

    _, uri, original, _, _ = logged
    run_id, local = original.info.run_id, original.data.tags["cm.output_dir"]
    runner = CliRunner()
    result = runner.invoke(cli, ["compare", run_id, local, "--tracking-uri", uri, "--json",
                                 "--resamples", "200"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert list(scores)[0] == "post_macro_f1"  # the headline leads
    post = scores["post_macro_f1"]
    assert post["a"] == pytest.approx(original.data.metrics["test_tuned/post_macro_f1"])
    assert post["difference"] == post["low"] == post["high"] == 0.0
    unknown = runner.invoke(cli, ["compare", run_id, "nope", "--tracking-uri", uri])
    assert unknown.exit_code == 2 and "no MLflow run 'nope'" in unknown.output
