"""Hostile-but-realistic inputs and faults, one parametrised test per class (issue 12): each
must end with its exit code (2 bad input, 1 a failed job, 130 Ctrl-C, 143 SIGTERM), a
message naming the thing and the fix, and no traceback. In-process (CliRunner) where the
process adds nothing; subprocesses for start-up, signals and concurrency."""

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cm.cli.main import cli
from cm.registry import get_registry
from cm.testing import TINY_RUN

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "demo-posts.toml"
CM = shutil.which("cm", path=str(Path(sys.executable).parent)) or "cm"
CRITERIA = {"diagnosis": "MDD", "criteria": [{"id": f"A.{i}", "text": f"criterion {i} text"}
                                             for i in range(1, 10)]}


@pytest.fixture(autouse=True)
def crash_dir(tmp_path, monkeypatch):
    directory = tmp_path / "crashes"
    monkeypatch.setenv("CM_CRASH_DIR", str(directory))
    return directory


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def sets(*overrides):
    return [a for item in overrides for a in ("--set", item)]


def assert_clean(result, code, *fragments):
    """Exit ``code``, every fragment in the output, no traceback."""
    output = result.output if hasattr(result, "output") else result.stdout + result.stderr
    status = result.exit_code if hasattr(result, "exit_code") else result.returncode
    assert status == code, output
    assert "Traceback" not in output, output
    if hasattr(result, "exception") and code:
        assert isinstance(result.exception, SystemExit), result.exception
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} not in {output!r}"
    return output


def write_dataset(root: Path, posts=None, encoding="utf-8") -> Path:
    """A small ReDSM5-layout dataset: 30 posts, a few annotations, the nine criteria."""
    (root / "redsm5").mkdir(parents=True, exist_ok=True)
    (root / "DSM5").mkdir(exist_ok=True)
    posts = posts or [(f"p{i}", f"post number {i} about sleep and mood") for i in range(30)]
    lines = ["post_id,text"] + [f'{pid},"{text}"' for pid, text in posts]
    (root / "redsm5" / "redsm5_posts.csv").write_bytes("\n".join(lines).encode(encoding))
    annotations = ["post_id,sentence_id,sentence_text,DSM5_symptom,status,explanation"] + [
        f"p{i},p{i}_0,post number {i},{'SLEEP_ISSUES' if i % 2 else 'DEPRESSED_MOOD'},1,x"
        for i in range(0, 30, 3)]
    (root / "redsm5" / "redsm5_annotations.csv").write_text("\n".join(annotations))
    (root / "DSM5" / "MDD_Criteira.json").write_text(json.dumps(CRITERIA))
    return root


def on_dataset(root):
    return [f'data.dataset={{ name = "redsm5", root = "{root}" }}']


# --- file encoding -------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["config-latin1", "config-binary", "config-utf16",
                                  "posts-latin1", "dataset-latin1"])
def test_file_encoding(case, tmp_path):
    config = tmp_path / "x.toml"
    if case == "config-latin1":
        config.write_bytes(b'name = "caf\xe9"\n')
        result = invoke("config", "validate", config)
        assert_clean(result, 2, str(config), "line 1", "not UTF-8", "re-save")
    elif case == "config-binary":
        config.write_bytes(bytes(range(256)))
        assert_clean(invoke("config", "validate", config), 2, "binary file", "UTF-8")
    elif case == "config-utf16":
        config.write_text('name = "x"\n', encoding="utf-16")
        assert_clean(invoke("config", "validate", config), 2, str(config), "UTF-8")
    elif case == "posts-latin1":
        posts = tmp_path / "posts.csv"
        posts.write_bytes(b'post_id,text\np1,"caf\xe9 at night"\n')
        result = invoke("predict", posts, "--model", tmp_path / "none")
        assert_clean(result, 2, "posts.csv (line 2", "not UTF-8", "re-save")
    else:
        root = write_dataset(tmp_path / "data", [("p1", "caf\xe9")] + [
            (f"p{i}", f"post {i}") for i in range(2, 30)], encoding="latin-1")
        result = invoke("run", DEMO, *sets(*on_dataset(root)))
        assert_clean(result, 2, "redsm5_posts.csv", "not UTF-8", "UTF-8")


# --- paths ---------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["base-is-directory", "base-missing", "output-under-file",
                                  "store-under-file", "out-missing-dir", "out-is-directory",
                                  "dataset-root-is-file"])
def test_paths(case, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    config = tmp_path / "x.toml"
    if case in ("base-is-directory", "base-missing"):
        (tmp_path / "somedir").mkdir()
        config.write_text(f'base = "{"somedir" if case == "base-is-directory" else "nope.toml"}"')
        fragment = "is a directory" if case == "base-is-directory" else "not found"
        assert_clean(invoke("config", "validate", config), 2, "somedir"
                     if case == "base-is-directory" else "nope.toml", fragment)
    elif case == "output-under-file":
        result = invoke("run", DEMO, *sets(f'output_dir="{a_file}/outputs"'))
        assert_clean(result, 2, "output_dir", str(a_file), "not a directory")
    elif case == "store-under-file":
        uri = f"sqlite:///{a_file}/mlflow.db"
        result = invoke("run", DEMO, *sets(f'output_dir="{tmp_path}/out"',
                                           f'tracking.mlflow.tracking_uri="{uri}"'))
        assert_clean(result, 2, uri, "not a directory")
        assert not (tmp_path / "out").exists()
    elif case.startswith("out-"):
        posts = tmp_path / "posts.csv"
        posts.write_text("post_id,text\np1,hello\n")
        out = tmp_path / "missing" / "o.csv" if case == "out-missing-dir" else tmp_path
        result = invoke("predict", posts, "--model", tmp_path / "no-checkpoint", "--out", out)
        assert_clean(result, 2, "--out", "does not exist" if case == "out-missing-dir"
                     else "is a directory")
    else:
        result = invoke("run", DEMO, *sets(*on_dataset(a_file)))
        assert_clean(result, 2, str(a_file), "not a directory")


# --- range checks --------------------------------------------------------------------------

@pytest.mark.parametrize("override, fragments", [
    ("seed=-5", ["$.seed", ">= 0"]),
    (f"seed={2**70}", ["$.seed", "<= 4294967295"]),
    ("train.weight_decay=nan", ["$.train.weight_decay", "finite"]),
    ("train.head_lr=inf", ["$.train.head_lr", "finite"]),
    ("train.max_grad_norm=-inf", ["$.train.max_grad_norm", "finite"]),
    ("data.split=[1.0, 0.0, 0.0]", ["data.split", "val and test", "e.g. [0.8, 0.1, 0.1]"]),
    ("data.split=[0.98, 0.01, 0.01]", ["data.split", "test", "30 posts"]),
    ('hpo.metric="val/macro_f1x"', ["$.hpo.metric", "did you mean 'val/macro_f1'"]),
    ('hpo.metric="val_tuned/post_macro_f1x"',
     ["$.hpo.metric", "did you mean 'val_tuned/post_macro_f1'"]),
    ('hpo.metric="val_tuned/A.5/f2"', ["$.hpo.metric", "val_tuned/<id>/f1"]),
])
@pytest.mark.parametrize("command", ["config validate", "run"])
def test_range_checks(override, fragments, command, tmp_path):
    """`cm config validate` and `cm run` check the file and the data before any work."""
    root = write_dataset(tmp_path / "data")
    result = invoke(*command.split(), DEMO, *sets(*on_dataset(root), override,
                                                  f'output_dir="{tmp_path}/out"'))
    output = assert_clean(result, 2, *fragments)
    assert "train.lr" not in output  # the message blames the key at fault, not another
    assert not (tmp_path / "out").exists()


# --- tracking store ------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case", ["unknown-scheme", "nothing-listening", "plain-path",
                                  "database-down"])
def test_tracking_store(case, tmp_path):
    uri = {"unknown-scheme": "sqllite:///x.db",
           "nothing-listening": f"http://127.0.0.1:{free_port()}",
           "plain-path": str(tmp_path / "mlruns"),
           "database-down": f"postgresql://cm:secret@127.0.0.1:{free_port()}/cm"}[case]
    result = invoke("run", DEMO, *sets(f'output_dir="{tmp_path}/out"',
                                       f'tracking.mlflow.tracking_uri="{uri}"'))
    fragment = {"unknown-scheme": "unknown scheme 'sqllite'",
                "nothing-listening": "does not answer within",
                "plain-path": "use a database store",
                "database-down": "nothing answers"}[case]
    output = assert_clean(result, 2, fragment)
    assert (uri if case != "database-down" else "cm:***@127.0.0.1") in output
    assert "secret" not in output
    assert not (tmp_path / "out").exists()  # nothing was started


@pytest.mark.parametrize("case", ["replay-missing-store", "compare-missing-dir",
                                  "missing-sqlite-folder", "malformed-uri", "output-in-proc"])
def test_lookups_and_paths_create_nothing(case, tmp_path, monkeypatch):
    """A lookup never makes a store; a missing folder is refused, never made; a bad URI or
    output_dir is exit 2 naming it."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "nonexistent" / "dir"
    args = {"replay-missing-store": ["replay", "--run-id", "0123",
                                     "--tracking-uri", "sqlite:///nothere.db"],
            "compare-missing-dir": ["compare", "RUN", "missing_dir"],
            "missing-sqlite-folder": ["run", DEMO, "--dry-run", *sets(
                f'output_dir="{tmp_path}/out"',
                f'tracking.mlflow.tracking_uri="sqlite:///{folder}/m.db"')],
            "malformed-uri": ["run", DEMO, "--dry-run", *sets(
                f'output_dir="{tmp_path}/out"',
                'tracking.mlflow.tracking_uri="http://[::1"')],
            "output-in-proc": ["run", DEMO, "--dry-run", *sets('output_dir="/proc/x"')]}[case]
    fragments = {"replay-missing-store": ["no tracking store at 'sqlite:///nothere.db'",
                                          "--tracking-uri"],
                 "compare-missing-dir": ["'RUN': no such run directory"],
                 "missing-sqlite-folder": [f"the folder {folder}, which does not exist",
                                           f"mkdir -p {folder}"],
                 "malformed-uri": ["tracking URI 'http://[::1' is malformed", "tracking_uri"],
                 "output-in-proc": ["output_dir /proc/x", "no folder can be made"]}[case]
    assert_clean(invoke(*args), 2, *fragments)
    assert list(tmp_path.iterdir()) == []  # no store, folder, output or crash report


def test_a_password_in_a_uri_is_never_printed(tmp_path):
    uri = "postgresql+psycopg://cm:s3cret@db.example:5432/cm"
    result = invoke("config", "show", DEMO, *sets(f'tracking.mlflow.tracking_uri="{uri}"'))
    output = assert_clean(result, 0, 'tracking_uri = "postgresql+psycopg://cm:***@db.example')
    assert "s3cret" not in output


def test_a_uri_with_credentials_is_checked_at_its_real_host():
    """The health check goes to host:port with the credentials as basic auth (it once
    looked up "user:secret@host" as a host name and refused every such URI)."""
    import base64
    import http.server
    import threading

    from cm_tracking.store import check_server

    seen = []

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        check_server(f"http://cm:s%40cret@127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert seen == [("/health", "Basic " + base64.b64encode(b"cm:s@cret").decode())]


def test_output_to_a_closed_pipe_ends_quietly(tmp_path):
    """`cm predict ... | head -2`: the boundary (every command) ends quietly with 141."""
    script = ("from cm.cli.boundary import guard\n"
              "guard(lambda: [print('row,' * 20) for _ in range(100_000)])\n")
    result = subprocess.run(f"{sys.executable} -c \"{script}\" | head -2; "
                            "echo ${PIPESTATUS[0]} >&2", shell=True, executable="/bin/bash",
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**os.environ, "CM_CRASH_DIR": str(tmp_path / "crashes")})
    assert result.stdout.splitlines() == ["row," * 20] * 2
    assert result.stderr.strip() == "141", result.stderr
    assert not (tmp_path / "crashes").exists()


# --- concurrent first use and interrupted store creation ----------------------------------

def cm_process(*args, cwd, **kwargs):
    return subprocess.Popen([CM, *map(str, args)], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def tracked_demo(tmp_path, uri, *more):
    """The tiny demo run on the 30-post dataset (seconds per epoch), tracked at ``uri``."""
    data = on_dataset(write_dataset(tmp_path / "data"))
    return [DEMO, *sets(*TINY_RUN, *data, f'output_dir="{tmp_path}/out"',
                        f'tracking.mlflow.tracking_uri="{uri}"', *more)]


def test_two_runs_started_together_share_a_new_sqlite_store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = [CM, "run", *map(str, tracked_demo(tmp_path, uri))]  # a dry run logs no run
    logs = [tmp_path / f"run-{i}.log" for i in range(2)]
    runs = [subprocess.Popen(args, cwd=tmp_path, stdout=log.open("w"), stderr=subprocess.STDOUT)
            for log in logs]
    for run, log in zip(runs, logs, strict=True):
        run.wait(timeout=900)
        assert run.returncode == 0, log.read_text()
        assert "Traceback" not in log.read_text()
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.search_runs([client.get_experiment_by_name("demo").experiment_id])
    assert sorted(r.info.status for r in found) == ["FINISHED", "FINISHED"]
    assert not list(tmp_path.glob(".mlflow.db.*"))


WORKER = """
import sys, time, types
import optuna
from cm_tracking.sweep_study import open_storage

ready, count = sys.argv[2], int(sys.argv[3])
open(f"{ready}.{sys.argv[4]}", "w").close()
while len(__import__("glob").glob(f"{ready}.*")) < count:  # start together
    time.sleep(0.01)
storage = open_storage(sys.argv[1], types.SimpleNamespace(heartbeat_s=60), None)
optuna.create_study(storage=storage, study_name="s", load_if_exists=True)
"""


def test_workers_creating_one_sqlite_study_storage_together_both_run(tmp_path):
    """`cm sweep --storage sqlite:///new.db --study-name s` started twice at once: the
    storage's tables are made in a private file linked into place, never raced."""
    url = f"sqlite:///{tmp_path}/new.db"
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, url, str(tmp_path / "ready"),
                                 "3", str(i)], stderr=subprocess.PIPE, text=True)
               for i in range(3)]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
    import optuna

    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["s"]
    assert not list(tmp_path.glob(".new.db.*"))


def test_ctrl_c_while_the_store_is_created_leaves_no_half_made_store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    process = cm_process("run", *tracked_demo(tmp_path, uri), cwd=tmp_path)  # makes it first
    wait_for(process, lambda: list(tmp_path.glob(".mlflow.db.*.creating")))
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert not (tmp_path / "mlflow.db").exists()
    assert not list(tmp_path.glob(".mlflow.db.*"))
    again = subprocess.run([sys.executable, "-c", "import sys; from cm_tracking.store import "
                            "check_store; check_store(sys.argv[1])", uri], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr  # made whole this time
    assert (tmp_path / "mlflow.db").exists() and not list(tmp_path.glob(".mlflow.db.*"))


def test_a_half_migrated_store_is_named_with_the_fix(tmp_path):
    """What a first migration interrupted by Ctrl-C leaves: MLflow's initial tables and one
    a later migration makes, but no recorded revision ("table assessments already exists")."""
    import sqlalchemy
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    database = tmp_path / "mlflow.db"
    engine = sqlalchemy.create_engine(f"sqlite:///{database}")
    InitialBase.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("CREATE TABLE assessments (id INTEGER)"))
    uri = f"sqlite:///{database}"
    result = invoke("run", *tracked_demo(tmp_path, uri))
    assert_clean(result, 2, uri, "half-made", f"mv {database} {database}.broken")


# --- signals mid-run -------------------------------------------------------------------------

def wait_for(process, condition, timeout=600):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)


def mlflow_runs(database: Path) -> int:
    """Runs in a store being written by another process (sqlite3: no MLflow import)."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as connection:
            return connection.execute("SELECT count(*) FROM runs").fetchone()[0]
    except sqlite3.Error:
        return 0


def the_run(uri):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("demo").experiment_id])
    return client, run


def test_sigterm_mid_training_ends_the_run_killed_with_everything_logged(tmp_path):
    """As SLURM or Kubernetes stop a job: in the second epoch, after the first was logged."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    process = cm_process("run", *tracked_demo(tmp_path, uri, "train.epochs=1000",
                                              "train.early_stopping_patience=0"), cwd=tmp_path)
    wait_for(process, lambda: list((tmp_path / "out").glob("demo/*/checkpoint/meta.json")))
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 143, err
    assert "Traceback" not in err + out
    assert err.strip().splitlines()[-1] == "terminated (SIGTERM)"
    client, run = the_run(uri)
    assert run.info.status == "KILLED"
    steps = client.get_metric_history(run.info.run_id, "train/loss")
    epochs = client.get_metric_history(run.info.run_id, "val/macro_f1")
    assert len(epochs) >= 1 and len(steps) > len(epochs)  # every step logged, not only epochs
    assert max(m.step for m in steps) > 0
    [directory] = (tmp_path / "out" / "demo").iterdir()
    history = json.loads((directory / "history.json").read_text())
    assert [h["epoch"] for h in history] == [m.step for m in epochs]
    logged = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "history.json" in logged and "config.toml" in logged


def test_ctrl_c_of_a_run_exits_130_and_the_run_ends_killed(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    process = cm_process("run", *tracked_demo(tmp_path, uri), cwd=tmp_path)
    wait_for(process, lambda: mlflow_runs(tmp_path / "mlflow.db"))
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    assert "Traceback" not in err + out and "Aborted" not in err
    assert err.strip().splitlines()[-1] == "interrupted (Ctrl-C)"
    assert the_run(uri)[1].info.status == "KILLED"


def store_statuses(database: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=60) as connection:
        return [row[0] for row in connection.execute("SELECT status FROM runs")]


def test_a_store_locked_by_another_process_while_the_run_ends_still_gets_killed(tmp_path):
    """`mlflow ui` (say) holds the store longer than sqlite's default 5 s wait while the run
    ends on Ctrl-C: the run waits for it and ends KILLED."""
    import sqlite3

    database = tmp_path / "mlflow.db"
    process = cm_process("run", *tracked_demo(tmp_path, f"sqlite:///{database}"), cwd=tmp_path)
    wait_for(process, lambda: mlflow_runs(database))
    lock = sqlite3.connect(database, timeout=60, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    process.send_signal(signal.SIGINT)
    time.sleep(8)
    lock.execute("ROLLBACK")
    lock.close()
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    assert "Traceback" not in err + out and "locked" not in err
    assert store_statuses(database) == ["KILLED"]


# when to signal: a phase of the run (its files show it was reached), then a delay
RUN_PHASES = {"start-up": lambda p, out: catches_sigterm(p.pid),
              "training": lambda p, out: mlflow_runs(out.parent / "mlflow.db"),
              "final evaluation": lambda p, out: list(out.glob("demo/*/checkpoint/meta.json")),
              "mlflow writes": lambda p, out: list(out.glob("demo/*/metrics.json"))}
SIGNALS = settings(deadline=None,
                   suppress_health_check=list(HealthCheck))


def signal_at(process, out: Path, phase, delay: float, signum) -> tuple[bool, int]:
    """Send ``signum`` once ``phase`` is reached and ``delay`` seconds passed: (sent, runs
    that had finished their work by then). Not sent when the process had ended."""
    deadline = time.monotonic() + 600
    while process.poll() is None and not phase(process, out) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(delay)
    finished = len(list(out.glob("**/metrics.json")))
    if process.poll() is not None:
        return False, finished
    process.send_signal(signum)
    return True, finished


def assert_stopped(process, sent: bool, finished: int, signum, out: Path) -> list[str]:
    """Exit 128 + signal and no traceback; every MLflow run KILLED, but those that had
    finished their work before the signal came (their status may be written)."""
    stdout, stderr = process.communicate(timeout=600)
    if process.returncode == 0:  # it ended before (or as) the signal was sent
        assert not sent or list(out.glob("**/metrics.json")), stderr
    elif process.returncode == -signum:  # while Python shut down (its default handlers
        assert sent  # back, so the command had returned, every run ended): a shell sees
        # 128 + signal all the same
    else:
        assert sent and process.returncode == 128 + signum, stderr
        assert stderr.strip().splitlines()[-1].startswith(
            "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted (Ctrl-C)")
    assert "Traceback" not in stdout + stderr and "Exception ignored" not in stderr, stderr
    database = out.parent / "mlflow.db"
    statuses = store_statuses(database) if database.exists() else []
    assert set(statuses) <= {"KILLED", "FINISHED"}, statuses
    if process.returncode == 128 + signum:  # stopped by cm mid-work: nothing later FINISHED
        assert statuses.count("FINISHED") <= finished, statuses
    return statuses


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("phase", list(RUN_PHASES))
@settings(SIGNALS, max_examples=1)  # one run each (a minute on 2 busy cores): 8 in all
@given(delay=st.floats(0, 1.5))
def test_a_signal_at_any_moment_of_a_tracked_run_stops_it(tmp_path_factory, signum, phase,
                                                          delay):
    tmp_path = tmp_path_factory.mktemp("run")
    process = cm_process("run", *tracked_demo(tmp_path, f"sqlite:///{tmp_path}/mlflow.db"),
                         cwd=tmp_path, env={**os.environ,
                                            "CM_CRASH_DIR": str(tmp_path / "crashes")})
    sent, finished = signal_at(process, tmp_path / "out", RUN_PHASES[phase], delay, signum)
    statuses = assert_stopped(process, sent, finished, signum, tmp_path / "out")
    assert len(statuses) <= 1 and (statuses or phase == "start-up")  # one run, if any
    assert not (tmp_path / "crashes").exists()


SWEEP_PHASES = {"start-up": RUN_PHASES["start-up"],
                "trial 0": lambda p, out: list(out.glob("demo/sweeps/s/trial-0/demo/*/"
                                                        "config.toml")),
                "trial 1": lambda p, out: list(out.glob("demo/sweeps/s/trial-1"))}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@settings(SIGNALS, max_examples=2)
@given(phase=st.sampled_from(list(SWEEP_PHASES)), delay=st.floats(0, 1.5))
def test_a_signal_at_any_moment_of_a_sweep_stops_it(tmp_path_factory, signum, phase, delay):
    """The sweep exits 128 + signal; the parent run and the trial under way end KILLED (a
    trial finished before stays FINISHED), none FAILED, and no trial starts after."""
    tmp_path = tmp_path_factory.mktemp("sweep")
    out = tmp_path / "out"
    args = ["sweep", DEMO, *sets(*TINY_RUN, *SPACE, "hpo.trials=2", f'output_dir="{out}"',
                                 *on_dataset(write_dataset(tmp_path / "data")),
                                 f'tracking.mlflow.tracking_uri="sqlite:///{tmp_path}/'
                                 'mlflow.db"'),
            "--storage", f"sqlite:///{tmp_path}/optuna.db", "--study-name", "s"]
    process = cm_process(*args, cwd=tmp_path)
    sent, finished = signal_at(process, out, SWEEP_PHASES[phase], delay, signum)
    trials_then = len(list(out.glob("demo/sweeps/s/trial-*")))
    assert_stopped(process, sent, finished, signum, out)  # no FAILED, none left RUNNING
    if process.returncode != 0:
        assert len(list(out.glob("demo/sweeps/s/trial-*"))) <= max(trials_then, 1)


# --- damaged checkpoints -------------------------------------------------------------------

def damage(directory: Path, case: str) -> None:
    import tomllib

    import tomli_w

    weights, meta = directory / "model.safetensors", directory / "meta.json"
    if case == "truncated-weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif case == "empty-weights":
        weights.write_bytes(b"")
    elif case == "cut-meta":
        meta.write_text(meta.read_text()[:40])
    elif case in ("no-criteria", "not-final"):
        data = json.loads(meta.read_text())
        data.pop("criteria") if case == "no-criteria" else data.update(final=False)
        meta.write_text(json.dumps(data))
    elif case == "empty-tokenizer":
        shutil.rmtree(directory / "tokenizer")
        (directory / "tokenizer").mkdir()
    elif case == "broken-backbone-config":
        (directory / "backbone" / "config.json").write_text('{"model_type": "deberta-v2", ')
    elif case == "mismatched-experiment":
        data = tomllib.loads((directory / "experiment.toml").read_text())
        data["model"]["head"]["hidden_dims"] = [8]
        (directory / "experiment.toml").write_text(tomli_w.dumps(data))
    elif case == "invalid-experiment":
        (directory / "experiment.toml").write_text("[train]\nlrr = 1\n")
    elif case == "missing-meta":
        meta.unlink()


@pytest.mark.parametrize("case, fragments", [
    ("truncated-weights", ["model.safetensors: changed since the run saved it",
                           "copy the checkpoint again"]),
    ("empty-weights", ["model.safetensors: changed since the run saved it"]),
    ("cut-meta", ["meta.json is damaged"]),
    ("no-criteria", ["meta.json has no criteria"]),
    ("not-final", ["did not finish", "final: false", "a finished run"]),
    ("empty-tokenizer", ["tokenizer/tokenizer.json: missing (meta.json lists it)"]),
    ("broken-backbone-config", ["backbone/config.json: changed since the run saved it"]),
    ("mismatched-experiment", ["experiment.toml: changed since the run saved it"]),
    ("invalid-experiment", ["experiment.toml: changed since the run saved it"]),
    ("missing-meta", ["not a cm checkpoint", "missing: meta.json"]),
])
def test_damaged_checkpoints(case, fragments, checkpoint, tmp_path):
    broken = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, broken)
    damage(broken, case)
    posts = tmp_path / "posts.csv"
    posts.write_text("post_id,text\np1,I cannot sleep\n")
    out = tmp_path / "out.csv"
    result = invoke("predict", posts, "--model", broken, "--out", out)
    assert_clean(result, 2, str(broken), *fragments)
    assert not out.exists() and not list(tmp_path.glob(".out.csv*"))


# --- predict input and output --------------------------------------------------------------

@pytest.mark.parametrize("case", ["bom-header", "post-over-csv-field-limit", "latin1-byte",
                                  "ragged-row", "out-written-whole"])
def test_predict_input_output(case, checkpoint, tmp_path):
    posts, out = tmp_path / "posts.csv", tmp_path / "out.csv"
    text = {"bom-header": "post_id,text\np1,I cannot sleep\n",
            "post-over-csv-field-limit": 'post_id,text\np1,"' + "word " * 30_000 + '"\n',
            "ragged-row": "post_id,text\np1,a,b,c\n",
            "out-written-whole": "post_id,text\np1,tired\np2,sad\n"}.get(case)
    if case == "latin1-byte":
        posts.write_bytes(b'post_id,text\np1,"caf\xe9"\n')
    else:
        posts.write_text(text, encoding="utf-8-sig" if case == "bom-header" else "utf-8")
    result = invoke("predict", posts, "--model", checkpoint, "--out", out)
    if case in ("latin1-byte", "ragged-row"):
        assert_clean(result, 2, str(posts), "line 2")
        assert not out.exists()
        return
    assert_clean(result, 0)
    rows = out.read_text().splitlines()
    assert rows[0].startswith("post_id,criterion_id,probability,decision")
    assert len(rows) == 1 + 9 * (2 if case == "out-written-whole" else 1)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


# --- sweeps --------------------------------------------------------------------------------

SPACE = ['hpo.space."train.lr"={ type = "float", low = 1e-4, high = 1e-3, log = true }',
         "hpo.startup_trials=1", "hpo.pruner=\"none\"", "hpo.confirm_seeds=0"]


def test_a_sweep_whose_every_trial_fails_exits_1_with_failed_runs(tmp_path):
    """adamw_8bit needs bitsandbytes and CUDA: each trial fails once it builds its optimizer."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = invoke("sweep", DEMO, *sets(*TINY_RUN, *SPACE, "hpo.trials=2",
                                         *on_dataset(write_dataset(tmp_path / "data")),
                                         'train.optimizer.name="adamw_8bit"',
                                         f'output_dir="{tmp_path}/out"',
                                         f'tracking.mlflow.tracking_uri="{uri}"'),
                    "--storage", f"sqlite:///{tmp_path}/optuna.db")
    assert_clean(result, 1, "no trial of study", "completed", "FAIL", "bitsandbytes")
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("demo").experiment_id])
    trials = [r for r in runs if "cm.trial_number" in r.data.tags]
    assert len(trials) == 2
    assert {r.info.status for r in trials} == {"FAILED"}
    assert {r.data.tags["cm.trial_state"] for r in trials} == {"FAIL"}


def test_ctrl_c_of_a_sweep_prints_one_line_and_resuming_reruns_the_baseline(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    overrides = [*TINY_RUN, *SPACE, "hpo.trials=1", f'output_dir="{tmp_path}"',
                 *on_dataset(write_dataset(tmp_path / "data")),
                 f'tracking.mlflow.tracking_uri="sqlite:///{tmp_path}/m.db"']
    args = ["sweep", DEMO, *sets(*overrides), "--storage", storage]
    process = cm_process(*args, "--study-name", "s", cwd=tmp_path)
    wait_for(process, lambda: list(tmp_path.glob("demo/sweeps/s/trial-0/demo/*/config.toml")))
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    assert "Traceback" not in out + err
    kept = " ".join(f"--set {shlex.quote(item)}" for item in overrides)  # every --set
    assert err.strip().splitlines() == [f"interrupted (Ctrl-C); resume with: cm sweep {DEMO} "
                                        f"{kept} --storage {storage} --study-name s"]
    # the interrupted trial spent the budget of 1: the resume raises it to run the baseline
    resumed = subprocess.run([CM, *map(str, args), "--set", "hpo.trials=2", "--study-name", "s"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((tmp_path / "demo" / "sweeps" / "s" / "summary.json").read_text())
    assert summary["baseline"]["state"] == "COMPLETE"
    assert summary["baseline"]["number"] == 1  # trial 0 was the interrupted baseline
    assert summary["states"] == {"FAIL": 1, "COMPLETE": 1}


def test_a_replayed_trial_is_not_nested_under_its_sweep(tmp_path):
    import attrs

    from cm.config import load_experiment
    from cm_tracking.options import TRIAL_TAGS
    from cm_tracking.replay import tracked

    trial_dir = tmp_path / "outputs" / "demo" / "sweeps" / "s" / "trial-3"
    trial = load_experiment(DEMO, [f'output_dir="{trial_dir}"',
                                   "tracking.mlflow.tags={ team = \"nlp\" }"],
                            registry=get_registry())
    spec = trial.tracking["mlflow"]
    tags = {**spec.options.tags, **dict.fromkeys(TRIAL_TAGS, "x")}
    trial = attrs.evolve(trial, tracking={"mlflow": attrs.evolve(
        spec, options=attrs.evolve(spec.options, tags=tags))})
    replayed = tracked(trial, "sqlite:///x.db", {"cm.replay_of": "abc"})
    assert replayed.tracking["mlflow"].options.tags == {"team": "nlp", "cm.replay_of": "abc"}
    assert replayed.output_dir == str(tmp_path / "outputs")


# --- interrupts ----------------------------------------------------------------------------

def catches_sigterm(pid) -> bool:
    """cm's console script has started: its first statement catches SIGTERM (a Ctrl-C
    while Python itself starts, before any program code, is fatal to any program)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_ctrl_c_during_start_up_imports_is_one_line_and_130(tmp_path):
    process = cm_process("config", "show", DEMO, cwd=tmp_path)
    wait_for(process, lambda: catches_sigterm(process.pid), timeout=60)
    process.send_signal(signal.SIGINT)  # within the first imports: cm needs a second more
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip() == "interrupted (Ctrl-C)"


# --- messages that mislead -----------------------------------------------------------------

def test_a_post_over_the_csv_field_limit_is_read(tmp_path):
    long_post = ("p0", "sleepless " * 15_000)  # 150,000 characters
    root = write_dataset(tmp_path / "data", [long_post] + [
        (f"p{i}", f"post {i}") for i in range(1, 30)])
    result = invoke("data", "stats", DEMO, "--json", *sets(*TINY_RUN, *on_dataset(root)))
    assert_clean(result, 0)
    assert json.loads(result.stdout)["lengths"]["max"] > 64


def test_an_allowlist_hiding_every_plugin_is_named(tmp_path):
    result = subprocess.run([CM, "config", "validate", str(DEMO)], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "CM_PLUGINS": "typo"})
    assert_clean(result, 2, "CM_PLUGINS='typo'", "core", "unset CM_PLUGINS")


# --- the boundary itself -------------------------------------------------------------------

def test_an_unexpected_error_is_one_line_and_a_crash_report(crash_dir, monkeypatch):
    def broken(experiment):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("cm.cli.config_cmd.dumps", broken)
    result = invoke("config", "show", DEMO)
    output = assert_clean(result, 1, "unexpected RuntimeError: boom", str(crash_dir))
    assert len(output.strip().splitlines()) == 1 and "second line" not in output
    [report] = crash_dir.iterdir()
    text = report.read_text()
    assert str(report) in output
    assert "Traceback (most recent call last)" in text and "RuntimeError: boom" in text
    assert "cm-core: " in text and "python: " in text and "command: " in text


@pytest.mark.parametrize("how", ["--debug", "CM_DEBUG"])
def test_debug_shows_the_traceback(how, monkeypatch):
    monkeypatch.setattr("cm.cli.config_cmd.dumps", lambda e: 1 / 0)
    if how == "CM_DEBUG":
        monkeypatch.setenv("CM_DEBUG", "1")
    result = invoke(*(["--debug"] if how == "--debug" else []), "config", "show", DEMO)
    assert isinstance(result.exception, ZeroDivisionError)
