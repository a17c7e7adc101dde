"""`cm sweep` against real stores: an Optuna sqlite storage and an MLflow sqlite store, on
a very small DeBERTaV3-shaped model so that a trial takes a few seconds."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from mlflow import MlflowClient
from optuna.trial import TrialState
from rich.console import Console
from sklearn.metrics import f1_score

from cm.config import load_experiment
from cm.config.dump import flatten, to_dict
from cm.config.keys import set_keys
from cm.errors import UserError
from cm.registry import get_registry
from cm.testing import tiny_toml
from cm_tracking.sweep import baseline_unfinished, run_sweep
from cm_tracking.sweep_space import baseline_params, config_values

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "experiments" / "demo-posts.toml"
SPACE = """
[hpo.space."train.lr"]
type = "float"
low = 1e-4
high = 1e-2
log = true

[hpo.space."model.head.hidden_dims"]
type = "categorical"
choices = [[64], [32, 16]]
"""


@pytest.fixture(autouse=True)
def no_tracking_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train faster on one thread, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_sweep(directory: Path, hpo: str, space: str = SPACE, confirm_seeds: int = 0) -> Path:
    """A sweep file over the demo experiment, its outputs and stores inside ``directory``;
    no confirmation runs unless asked for."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "hpo.toml"
    path.write_text(f'base = "{DEMO}"\nname = "tiny"\noutput_dir = "{directory / "out"}"\n'
                    f"{tiny_toml()}\n[tracking.mlflow]\n"
                    f'tracking_uri = "sqlite:///{directory / "mlflow.db"}"\n'
                    f"[hpo]\nconfirm_seeds = {confirm_seeds}\n{hpo}\n{space}")
    return path


def sweep(path, *overrides, study_name="s"):
    out = io.StringIO()
    summary = run_sweep(path, overrides, study_name=study_name,
                        console=Console(file=out, width=200))
    return summary, out.getvalue()


def study_of(directory: Path, name="s"):
    return optuna.load_study(study_name=name,
                             storage=f"sqlite:///{directory / 'out' / 'optuna.db'}")


def mlflow_runs(directory: Path):
    client = MlflowClient(tracking_uri=f"sqlite:///{directory / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    return client, client.search_runs([experiment.experiment_id])


def test_two_trials_nested_runs_best_config_and_determinism(tmp_path):
    summaries = []
    for copy in ("a", "b"):
        summary, printed = sweep(write_sweep(tmp_path / copy, "trials = 2\npruner = 'none'"))
        summaries.append(summary)
    a, b = summaries
    assert a["states"] == {"COMPLETE": 2}
    for key in ("number", "value", "params"):
        assert a["best"][key] == b["best"][key]
    assert a["baseline"]["value"] == b["baseline"]["value"]
    assert a["search_objective_delta_pp"] == b["search_objective_delta_pp"]
    assert a["confirmed"] == {"skipped": "hpo.confirm_seeds = 0"}
    assert printed.splitlines()[-3:-1] == [
        "not confirmed on test: hpo.confirm_seeds = 0",
        f"search objective (one seed, val): best trial {a['best']['number']} "
        f"val_tuned/post_macro_f1 {a['best']['value']:.4f} vs baseline (trial 0) "
        f"{a['baseline']['value']:.4f}: {a['search_objective_delta_pp']:+.2f} pp"]

    directory = tmp_path / "a"
    trials = study_of(directory).trials
    assert [t.number for t in trials] == [0, 1]
    baseline = trials[0]
    assert baseline.user_attrs["cm.baseline"] is True
    assert baseline.params == {"train.lr": 1e-3, "model.head.hidden_dims": "[64]"}  # demo's
    assert a["baseline"]["number"] == 0
    assert a["search_objective_delta_pp"] == pytest.approx(
        (a["best"]["value"] - baseline.value) * 100)

    client, runs = mlflow_runs(directory)
    parents = [r for r in runs if r.data.tags.get("cm.sweep") == "true"]
    assert len(parents) == 1 and len(runs) == 3
    parent = parents[0]
    assert parent.info.run_id == a["mlflow_parent_run_id"]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["optuna.seed"] == "13"
    assert parent.data.params["optuna.optuna"] == optuna.__version__
    assert parent.data.metrics["sweep/search_objective_delta_pp"] == pytest.approx(
        a["search_objective_delta_pp"])
    assert not any(k.startswith("sweep/confirmed") for k in parent.data.metrics)
    nested = {r.info.run_id: r for r in runs if r is not parent}
    for trial in trials:
        run = nested[trial.user_attrs["mlflow_run_id"]]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["cm.trial_number"] == str(trial.number)
        assert run.data.tags["cm.trial_state"] == "COMPLETE"
        assert run.info.run_name == f"trial-{trial.number}"
        assert run.info.status == "FINISHED"
        # the default objective: the run's selection metric at the best checkpoint
        scores = run.data.metrics
        assert scores.get("best/val_tuned/post_macro_f1",
                          scores["val_tuned/post_macro_f1"]) == pytest.approx(trial.value)
    artifacts = {f.path for f in client.list_artifacts(parent.info.run_id)}
    assert {"best.toml", "summary.json", "optimization_history.png",
            "param_importances.png"} <= artifacts

    best = load_experiment(a["best_config"], registry=get_registry())
    space = load_experiment(directory / "hpo.toml", registry=get_registry()).hpo.space
    values = config_values(a["best"]["params"], space)
    flat = flatten(to_dict(best))
    assert {key: flat[key] for key in values} == values
    assert best.hpo is None and best.model.tiny.hidden_size == 32


def test_pruned_trial_then_resume_in_the_same_study(tmp_path):
    # trial 1 can only take a learning rate too small to learn: pruned after epoch 1. The
    # objective is the pair macro-F1 at 0.5: at thresholds tuned on val itself
    # (val_tuned/, the default) a model that learned nothing can still match the baseline.
    space = '[hpo.space."train.lr"]\ntype = "categorical"\nchoices = [1e-9]\n'
    path = write_sweep(tmp_path, 'trials = 2\nprune_after_trials = 1\nmetric = "val/macro_f1"',
                       space)
    summary, _ = sweep(path)
    assert summary["states"] == {"COMPLETE": 1, "PRUNED": 1}
    assert summary["plots_skipped"] == {"param_importances": "needs at least 2 complete trials"}
    trials = study_of(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED]
    assert list(trials[1].intermediate_values) == [1]

    client, runs = mlflow_runs(tmp_path)
    pruned = client.get_run(trials[1].user_attrs["mlflow_run_id"])
    assert pruned.info.status == "KILLED"
    assert pruned.data.tags["cm.trial_state"] == "PRUNED"
    assert pruned.data.tags["mlflow.parentRunId"] == summary["mlflow_parent_run_id"]
    assert [m.step for m in client.get_metric_history(pruned.info.run_id,
                                                      "val/macro_f1")] == [1]

    spent, printed = sweep(path)  # the study's 2 trials are spent: a resume runs none
    assert "0 of the study's 2 trials left" in printed
    assert spent["states"] == summary["states"]
    resumed, _ = sweep(path, "hpo.trials=3")  # a larger budget: one more trial
    trials = study_of(tmp_path).trials
    assert [t.number for t in trials] == [0, 1, 2]
    assert [t.user_attrs.get("cm.baseline", False) for t in trials] == [True, False, False]
    assert resumed["mlflow_parent_run_id"] == summary["mlflow_parent_run_id"]
    assert resumed["states"] == {"COMPLETE": 1, "PRUNED": 2}
    client, runs = mlflow_runs(tmp_path)
    assert len(runs) == 4
    assert client.get_run(summary["mlflow_parent_run_id"]).info.status == "FINISHED"


def problems_of(tmp_path, space, hpo="trials = 1"):
    with pytest.raises(UserError) as info:
        sweep(write_sweep(tmp_path, hpo, space))
    return str(info.value)


def test_space_keys_and_bounds_are_checked_before_any_trial(tmp_path):
    message = problems_of(tmp_path, '[hpo.space."train.lrr"]\ntype = "float"\nlow = 0.1\n'
                                    "high = 0.2\n")
    assert '$.hpo.space."train.lrr": setting it to 0.1 fails: $.train.lrr: unknown key; ' \
           "did you mean 'lr'?" in message
    message = problems_of(tmp_path, '[hpo.space."train.lr"]\ntype = "float"\nlow = 0.1\n'
                                    "high = 2.0\n")
    assert "$.train.lr: 'lr' must be < 1.0: 2.0" in message
    message = problems_of(tmp_path, '[hpo.space."train.epochs"]\ntype = "int"\nlow = 1.5\n'
                                    'high = 3\nlog = true\nstep = 1\n[hpo.space."model.pooling'
                                    '.name"]\ntype = "categorical"\nchoices = ["mean"]\nlow = 1\n')
    assert '$.hpo.space."train.epochs".low: an int parameter needs whole numbers' in message
    assert '$.hpo.space."train.epochs".step: log and step cannot be combined' in message
    assert '$.hpo.space."model.pooling.name".low: a categorical parameter takes choices only' \
        in message
    message = problems_of(tmp_path, '[hpo.space."train.lr"]\ntype = "float"\nlow = "a"\n'
                                    "high = 0.2\n", hpo="trials = 1\nmetric = 'test/macro_f1'")
    assert "$.hpo.space.\"train.lr\".low: expected float, got string 'a'" in message
    message = problems_of(tmp_path, SPACE, hpo="trials = 1\nmetric = 'test/macro_f1'")
    assert "$.hpo.metric: sweeps optimize a validation metric" in message
    assert "no [hpo.space] table" in problems_of(tmp_path, "")


def test_cli_reports_a_bad_space_without_a_traceback(tmp_path):
    path = write_sweep(tmp_path, "trials = 1", '[hpo.space."model.pooling.name"]\n'
                                               'type = "categorical"\nchoices = ["meen"]\n')
    result = subprocess.run([str(Path(sys.executable).parent / "cm"), "sweep", str(path)],
                            capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert '$.hpo.space."model.pooling.name": setting it to \'meen\' fails' in result.stderr
    assert "did you mean 'mean'?" in result.stderr


def test_a_sampled_component_name_keeps_the_sampled_options():
    raw = {"train": {"scheduler": {"name": "linear", "warmup_ratio": 0.1}}}
    values = {"train.scheduler.warmup_ratio": 0.05, "train.scheduler.name": "cosine"}
    assert set_keys(raw, values) == {"train": {"scheduler": {"name": "cosine",
                                                                "warmup_ratio": 0.05}}}


def test_the_shipped_sweep_file_is_valid():
    path = ROOT / "experiments" / "hpo.toml"
    # the space is checked against the experiment when it is decoded
    experiment = load_experiment(path, registry=get_registry())
    assert baseline_params(experiment, experiment.hpo.space)["model.head.hidden_dims"] == "[256]"


def test_a_rejected_combination_is_a_failed_trial_with_its_run(tmp_path):
    # each value alone is valid on the base (max_length 64, stride 16); together they are not
    space = ('[hpo.space."data.max_length"]\ntype = "categorical"\nchoices = [40]\n'
             '[hpo.space."data.stride"]\ntype = "categorical"\nchoices = [44]\n')
    summary, printed = sweep(write_sweep(tmp_path, "trials = 2", space))
    assert summary["states"] == {"COMPLETE": 1, "FAIL": 1}
    assert "trial 1 FAIL" in printed
    baseline, failed = study_of(tmp_path).trials
    assert baseline.params == {}  # the base values are outside the space: it runs as is
    client, runs = mlflow_runs(tmp_path)
    run = client.get_run(failed.user_attrs["mlflow_run_id"])
    assert run.info.status == "FAILED"
    assert run.data.tags["cm.trial_state"] == "FAIL"
    assert run.data.tags["mlflow.parentRunId"] == summary["mlflow_parent_run_id"]
    assert "$.data.stride: must be smaller than max_length (40)" in run.data.tags["cm.error"]


def test_only_the_creator_enqueues_the_baseline_and_a_resume_reruns_a_failed_one():
    study = optuna.create_study()
    assert not baseline_unfinished(study)  # joined before its creator enqueued the baseline
    study.enqueue_trial({}, user_attrs={"cm.baseline": True})
    assert not baseline_unfinished(study)  # waiting for a worker
    study.tell(study.ask(), state=TrialState.FAIL)  # e.g. Ctrl-C stopped it
    assert baseline_unfinished(study)
    study.enqueue_trial({}, user_attrs={"cm.baseline": True})
    study.tell(study.ask(), 0.5)
    assert not baseline_unfinished(study)


def pair_macro_f1(run_dir: Path) -> float:
    """The pair-level macro-F1 of a run's test decisions, by scikit-learn."""
    with (Path(run_dir) / "test_predictions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return f1_score([int(r["label"]) for r in rows], [int(r["decision"]) for r in rows],
                    average="macro", zero_division=0)


def test_the_best_trial_is_confirmed_against_the_baseline_on_test_over_seeds(tmp_path):
    # the baseline's learning rate learns nothing; the one trial's can: best != baseline
    space = '[hpo.space."train.lr"]\ntype = "categorical"\nchoices = [1e-2]\n'
    path = write_sweep(tmp_path, 'trials = 2\npruner = "none"\nmetric = "val/macro_f1"',
                       space, confirm_seeds=2)
    summary, printed = sweep(path, "train.lr=1e-9")
    confirmed = summary["confirmed"]
    assert list(summary)[:2] == ["study", "confirmed"]
    assert (summary["best"]["number"], summary["baseline"]["number"]) == (1, 0)
    assert confirmed["seeds"] == [14, 15] and confirmed["score"] == "macro_f1"  # demo seed 13
    per_seed = [(pair_macro_f1(run["best"]) - pair_macro_f1(run["baseline"])) * 100
                for run in confirmed["runs"]]
    assert confirmed["test"]["per_seed"] == pytest.approx(per_seed)
    assert confirmed["test"]["difference"] == pytest.approx(sum(per_seed) / 2)
    assert confirmed["test"]["low"] <= confirmed["test"]["difference"] <= \
        confirmed["test"]["high"]
    best_scores = [json.loads((Path(r["best"]) / "metrics.json").read_text())
                   ["test_tuned/macro_f1"] for r in confirmed["runs"]]
    assert confirmed["test"]["a"] == pytest.approx(sum(best_scores) / 2 * 100)
    assert set(confirmed["val"]) == set(confirmed["test"])
    lines = printed.splitlines()
    assert lines[-3].startswith(f"confirmed gain on test: {confirmed['test']['difference']:+.2f}"
                                " pp [")
    assert lines[-2].startswith("search objective (one seed, val): best trial 1")

    client, runs = mlflow_runs(tmp_path)
    parent = client.get_run(summary["mlflow_parent_run_id"])
    assert parent.data.metrics["sweep/confirmed_test_gain_pp"] == \
        pytest.approx(confirmed["test"]["difference"])
    assert parent.data.metrics["sweep/confirmed_val_gain_pp_low"] == \
        pytest.approx(confirmed["val"]["low"])
    assert parent.data.tags["mlflow.note.content"].splitlines()[1].startswith(
        "confirmed gain on test")
    confirmation = sorted((r.data.tags["cm.confirmation"], r.data.tags["cm.confirmation_seed"],
                           r.data.tags["mlflow.parentRunId"], r.info.run_name)
                          for r in runs if "cm.confirmation" in r.data.tags)
    parent_id = parent.info.run_id
    assert confirmation == [("baseline", "14", parent_id, "confirm-baseline-seed-14"),
                            ("baseline", "15", parent_id, "confirm-baseline-seed-15"),
                            ("best", "14", parent_id, "confirm-best-seed-14"),
                            ("best", "15", parent_id, "confirm-best-seed-15")]

    # the budget is spent and the best trial the same: the kept confirmation, no new runs
    again, printed = sweep(path, "train.lr=1e-9")
    assert again["confirmed"] == confirmed and "confirm-best" not in printed
    assert len(mlflow_runs(tmp_path)[1]) == len(runs)


def test_a_stopped_trial_is_continued_from_its_state_when_the_sweep_resumes(tmp_path):
    import json
    import signal
    import time

    path = write_sweep(tmp_path, 'trials = 1\npruner = "none"',
                       '[hpo.space."train.lr"]\ntype = "categorical"\nchoices = [1e-3]\n')
    process = subprocess.Popen([Path(sys.executable).parent / "cm", "sweep", path,
                                "--study-name", "s", "--set", "train.epochs=2"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 600
    while not [p for p in (tmp_path / "out").glob("**/trial-0/**/resume/state.json")
               if json.loads(p.read_text())["epoch"] == 1]:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 143, err
    stopped = study_of(tmp_path).trials[0]
    assert stopped.state == TrialState.FAIL
    folder = stopped.user_attrs["cm.run_directory"]

    # the stopped trial used the budget of 1: the continuation needs a larger one
    resumed, _ = sweep(path, "train.epochs=2", "hpo.trials=2")
    assert resumed["states"] == {"COMPLETE": 1, "FAIL": 1}
    continued = study_of(tmp_path).trials[1]
    assert continued.user_attrs["cm.resume_of"] == folder  # the same run, not a restart
    assert continued.user_attrs["cm.run_directory"] == folder
    assert continued.user_attrs["cm.baseline"] is True
    assert sorted(continued.intermediate_values) == [1, 2]  # epoch 1 reported again
    history = json.loads((Path(folder) / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert (Path(folder) / "metrics.json").exists() and not (Path(folder) / "resume").exists()
    client, runs = mlflow_runs(tmp_path)
    assert continued.user_attrs["mlflow_run_id"] == stopped.user_attrs["mlflow_run_id"]
    assert client.get_run(continued.user_attrs["mlflow_run_id"]).info.status == "FINISHED"
