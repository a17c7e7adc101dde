"""``cm run --resume``: a tiny two-epoch run stopped by SIGTERM in epoch 2 and resumed ends
with the metrics.json of an uninterrupted run with the same seed, whether its last state was
saved at the end of epoch 1 or mid-epoch 2 (``train.save_every_steps``); a tracked run goes on
in the same MLflow run and logs each metric at the steps the uninterrupted run did."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cm.testing import DEMO_EXPERIMENT, TINY_RUN, make_tiny_experiment, run_quietly

pytestmark = pytest.mark.integration

CM = shutil.which("cm", path=str(Path(sys.executable).parent)) or "cm"
TIMING = {"train/samples_per_s", "system/peak_memory_mb"}  # differ run to run
BATCHES = 34  # per epoch: 1,080 train pairs in batches of 32


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run, tracked: its metrics.json, history.json and the MLflow steps
    each metric was logged at."""
    out = tmp_path_factory.mktemp("reference")
    uri = f"sqlite:///{out}/mlflow.db"
    run = run_quietly(make_tiny_experiment(out, "train.epochs=2",
                                           f'tracking.mlflow.tracking_uri="{uri}"'))
    return (*outputs(run.directory), logged_steps(uri))


def outputs(directory: Path) -> tuple[dict, list]:
    metrics = json.loads((directory / "metrics.json").read_text())
    history = json.loads((directory / "history.json").read_text())
    return {k: v for k, v in metrics.items() if k not in TIMING}, history


def logged_steps(uri) -> dict:
    """The one MLflow run of the store: its status, and each metric's logged steps, sorted."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("demo").experiment_id])
    steps = {key: sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
             for key in run.data.metrics}
    return {"status": run.info.status, **steps}


def cm(*args, cwd):
    return subprocess.Popen([CM, *map(str, args)], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def tiny_run(tmp_path, *more):
    sets = [*TINY_RUN, f'output_dir="{tmp_path}/out"', "train.epochs=2", *more]
    return cm("run", DEMO_EXPERIMENT, *[a for item in sets for a in ("--set", item)],
              cwd=tmp_path)


def stop_when(process, out: Path, reached) -> tuple[Path, dict]:
    """SIGTERM ``process`` once its saved position (resume/state.json) satisfies ``reached``;
    returns the run folder and the position it was left with."""
    deadline = time.monotonic() + 600
    while True:
        found = list(out.glob("demo/*/resume/state.json"))
        if found and reached(json.loads(found[0].read_text())):
            break
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 143, err
    directory = found[0].parents[1]
    assert not (directory / "metrics.json").exists()
    return directory, json.loads(found[0].read_text())


def resume(directory, position, cwd):
    process = cm("run", "--resume", directory, cwd=cwd)
    out, err = process.communicate(timeout=900)
    assert process.returncode == 0, err
    assert (f"resumed at epoch {position['epoch']}: {position['batches']} of {BATCHES} "
            f"batches done, optimizer step {position['step']}") in out
    assert f"run finished: {directory}" in out
    assert not (directory / "resume").exists()  # a finished run's state is removed


def assert_same(directory, reference):
    metrics, history = outputs(directory)
    expected_metrics, expected_history, _ = reference
    assert metrics.keys() == expected_metrics.keys()
    for key, value in expected_metrics.items():
        assert metrics[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert [h["epoch"] for h in history] == [1, 2]
    for got, expected in zip(history, expected_history, strict=True):
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_stopped_after_epoch_1_resumes_to_the_uninterrupted_metrics(tmp_path, reference):
    process = tiny_run(tmp_path)
    directory, position = stop_when(process, tmp_path / "out", lambda p: p["epoch"] == 1)
    assert position == {"epoch": 1, "batches": BATCHES, "step": BATCHES}  # stopped in epoch 2
    resume(directory, position, tmp_path)
    assert_same(directory, reference)


def test_stopped_mid_epoch_2_resumes_to_the_uninterrupted_metrics_in_the_same_mlflow_run(
        tmp_path, reference):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    process = tiny_run(tmp_path, "train.save_every_steps=5",
                       f'tracking.mlflow.tracking_uri="{uri}"')
    directory, position = stop_when(process, tmp_path / "out", lambda p: p["epoch"] == 2)
    assert position["epoch"] == 2 and 0 < position["batches"] < BATCHES
    assert position["step"] % 5 == 0
    assert logged_steps(uri)["status"] == "KILLED"
    resume(directory, position, tmp_path)
    assert_same(directory, reference)
    steps = logged_steps(uri)  # the same run, reopened: every step once, as uninterrupted
    assert steps == reference[2]
    assert steps["status"] == "FINISHED"
    assert steps["train/loss"] == list(range(1, 2 * BATCHES + 1))
