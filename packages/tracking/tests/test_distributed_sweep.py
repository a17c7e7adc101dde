"""Several `cm sweep` workers on one study: a real PostgreSQL server on loopback (or a sqlite
file) holds the Optuna study, a real `mlflow server` takes every worker's runs. One worker
is killed mid-trial: the study must stay whole and its trial must end up failed. Three
workers share a budget of 5 trials: the study ends with exactly 5."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import psycopg
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from cm.testing import tiny_toml
from cm_tracking.sweep_study import PARENT, storage_url

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "experiments" / "demo-posts.toml"
BIN = Path(sys.executable).parent
SWEEP = f"""base = "{DEMO}"
name = "team"

{tiny_toml()}
[hpo]
trials = 4
confirm_seeds = 0
heartbeat_s = 2
pruner = "none"

[hpo.space."train.lr"]
type = "float"
low = 1e-4
high = 1e-2
log = true
"""


def postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and (Path(found).parent / "initdb").exists():
        return Path(found).parent
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return installed[-1].parent if installed else None


def install_postgres() -> Path | None:
    """Debian's server packages, when this machine lacks them and we may install them."""
    if postgres_bin() is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], env=env,
                       capture_output=True)
    return postgres_bin()


@pytest.fixture(scope="module")
def postgres(free_port):
    """A throwaway server as an unprivileged user (root runs it as `postgres`): trust auth on
    127.0.0.1 only; yields its base URL; stopped and deleted after the module."""
    bindir = install_postgres()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are missing and apt-get "
                    "could not install them (needs root on Debian): apt-get install postgresql")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    home = Path(tempfile.mkdtemp(prefix="cm-pg-"))
    if as_user:
        shutil.chown(home, "postgres")
    data, port = home / "data", free_port()

    def pg(*args, **kwargs):
        return subprocess.run([*as_user, *args], check=True, capture_output=True, text=True,
                              **kwargs)

    try:
        pg(str(bindir / "initdb"), "-D", str(data), "-U", "cm", "--auth=trust", "--no-sync",
           "-E", "UTF8")
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(home / "log"), "-w", "-t", "60",
           "-o", f"-h 127.0.0.1 -p {port} -k {home} -c fsync=off", "start")
        url = f"postgresql://cm@127.0.0.1:{port}"
        with psycopg.connect(f"{url}/postgres", autocommit=True) as connection:
            for database in ("optuna", "mlflow"):
                connection.execute(f"CREATE DATABASE {database}")
        yield url
    finally:
        if (data / "postmaster.pid").exists():
            pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_server(postgres, tmp_path_factory, mlflow_server_at):
    """A team MLflow server: runs in PostgreSQL, artifacts proxied to a local folder."""
    with mlflow_server_at(storage_url(f"{postgres}/mlflow"),
                          tmp_path_factory.mktemp("artifacts")) as url:
        yield url


def worker(path, storage, tracking, cache, log, study="team"):
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "CM_CACHE_DIR": str(cache),
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([str(BIN / "cm"), "sweep", str(path), "--storage", storage,
                             "--study-name", study], cwd=path.parent, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def running_trial_of(study, pid):
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get("cm.worker", "").endswith(f":{pid}") \
                and "mlflow_run_id" in trial.user_attrs:
            return trial
    return None


def test_two_workers_share_one_study_and_survive_a_killed_worker(tmp_path, postgres,
                                                                 mlflow_server):
    path = tmp_path / "hpo.toml"
    path.write_text(f'output_dir = "{tmp_path / "out"}"\n{SWEEP}')
    storage = f"{postgres}/optuna"
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in "ab"}  # noqa: SIM115
    a = worker(path, storage, mlflow_server, tmp_path / "cache-a", logs["a"])
    b = worker(path, storage, mlflow_server, tmp_path / "cache-b", logs["b"])
    try:
        killed = None
        deadline = time.monotonic() + 300
        while killed is None:
            assert a.poll() is None, (tmp_path / "a.log").read_text()
            assert time.monotonic() < deadline, "worker a never ran a trial"
            try:
                study = optuna.load_study(study_name="team", storage=storage_url(storage))
                killed = running_trial_of(study, a.pid)
            except KeyError:  # the study is not created yet
                pass
            time.sleep(0.2)
        a.send_signal(signal.SIGKILL)
        a.wait()
        killed_at = time.time()
        assert b.wait(timeout=400) == 0, (tmp_path / "b.log").read_text()
    finally:
        for process in (a, b):
            if process.poll() is None:
                process.kill()
                process.wait()
        for log in logs.values():
            log.close()

    study = optuna.load_study(study_name="team", storage=storage_url(storage))
    trials = study.trials
    by_worker = {pid: [t for t in trials if t.user_attrs["cm.worker"].endswith(f":{pid}")]
                 for pid in (a.pid, b.pid)}
    assert [t.number for t in trials] == [0, 1, 2, 3]  # the study's budget, none lost
    assert len(trials) == len(by_worker[a.pid]) + len(by_worker[b.pid])
    assert all(t.state == TrialState.COMPLETE for t in by_worker[b.pid])
    assert [t.number for t in trials if t.state == TrialState.FAIL] == [killed.number]
    assert all(t.state == TrialState.COMPLETE for t in by_worker[a.pid]
               if t.number != killed.number)
    assert [t.number for t in trials if t.user_attrs.get("cm.baseline")] == [0]
    assert any(t.datetime_start.timestamp() > killed_at for t in by_worker[b.pid])
    assert study.best_trial.state == TrialState.COMPLETE

    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("team")
    runs = {r.info.run_id: r for r in client.search_runs([experiment.experiment_id])}
    parent = study.user_attrs[PARENT]
    assert runs[parent].data.tags["cm.sweep"] == "true"
    assert runs[parent].info.status == "FINISHED"
    nested = {r.data.tags["cm.trial_number"]: r for r in runs.values()
              if r.data.tags.get("mlflow.parentRunId") == parent}
    assert sorted(nested, key=int) == [str(t.number) for t in trials]
    for trial in trials:
        run = nested[str(trial.number)]
        assert run.info.run_id == trial.user_attrs["mlflow_run_id"]
        expected = "FAILED" if trial.number == killed.number else "FINISHED"
        assert run.info.status == expected
        assert run.data.tags["cm.trial_state"] == ("FAIL" if expected == "FAILED"
                                                   else "COMPLETE")


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request, tmp_path):
    """(Optuna storage URL, MLflow server URL) on sqlite files, or on PostgreSQL."""
    if request.param == "postgresql":
        return f"{request.getfixturevalue('postgres')}/optuna", \
            request.getfixturevalue("mlflow_server")
    serve = request.getfixturevalue("mlflow_server_at")
    server = serve(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    url = server.__enter__()
    request.addfinalizer(lambda: server.__exit__(None, None, None))
    return f"sqlite:///{tmp_path / 'optuna.db'}", url


def test_three_workers_leave_exactly_the_budget_of_trials(tmp_path, stores):
    storage, tracking = stores
    path = tmp_path / "hpo.toml"
    path.write_text(f'output_dir = "{tmp_path / "out"}"\n'
                    + SWEEP.replace("trials = 4", "trials = 5"))
    logs = [open(tmp_path / f"{i}.log", "w") for i in range(3)]  # noqa: SIM115
    # a study of its own: the PostgreSQL server is shared with the test above
    workers = [worker(path, storage, tracking, tmp_path / "cache-0", logs[0], "budget")]
    try:
        deadline = time.monotonic() + 300
        while "study budget at" not in (tmp_path / "0.log").read_text():  # the others join
            assert workers[0].poll() is None, (tmp_path / "0.log").read_text()
            assert time.monotonic() < deadline, "the first worker never created the study"
            time.sleep(0.2)
        workers += [worker(path, storage, tracking, tmp_path / f"cache-{i}", logs[i], "budget")
                    for i in (1, 2)]
        for i, process in enumerate(workers):
            assert process.wait(timeout=900) == 0, (tmp_path / f"{i}.log").read_text()
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
        for log in logs:
            log.close()
    trials = optuna.load_study(study_name="budget", storage=storage_url(storage)).trials
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 5
    assert {t.user_attrs["cm.worker"].rsplit(":", 1)[1] for t in trials} <= \
        {str(p.pid) for p in workers}
    creator = " ".join((tmp_path / "0.log").read_text().split())  # unwrapped
    assert "(new); MLflow parent run" in creator and "5 of the study's 5 trials left" in creator
