"""Fixtures shared by every test directory (the packages' tests and tests/).

- ``cm_cache_dir`` (session, autouse): one ``CM_CACHE_DIR`` for the session, so tokenizers
  and encodings are built once; subprocesses inherit it through the environment.
- ``tiny_run`` (session): one finished tiny ``cm run`` (``cm.testing.TINY_RUN``) for tests
  that only read what a run wrote (outputs, checkpoint, metrics); a test that changes the
  config or the run trains its own. What it printed (to a file, not a terminal, as ``cm
  run > log`` prints) is in ``console.txt`` beside its ``output_dir``.

Under pytest-xdist (``nox -s tests`` runs ``-n auto --dist loadfile``) each worker gets its
share of the cores as torch threads (one each on 2 cores: two workers of two threads would
fight), and its subprocesses inherit it through ``OMP_NUM_THREADS``. Modules with a test marked
``integration`` (the slow ones) are handed out first, so no long module starts last.
"""

import os

import pytest


def pytest_configure(config):
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        import torch

        threads = max(1, (os.cpu_count() or 1) // int(workers))
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


def pytest_collection_modifyitems(items):
    slow = {item.path for item in items if item.get_closest_marker("integration")}
    items.sort(key=lambda item: item.path not in slow)  # a module's tests stay together


@pytest.fixture(scope="session", autouse=True)
def cm_cache_dir(tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / "cm-cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CM_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="session")
def tiny_run(cm_cache_dir, tmp_path_factory):
    from cm.terminal import console
    from cm.testing import make_tiny_experiment
    from cm.train.engine import run_experiment

    home = tmp_path_factory.mktemp("tiny-run")
    experiment = make_tiny_experiment(home / "outputs")
    with open(home / "console.txt", "w") as printed, pytest.MonkeyPatch.context() as patch:
        patch.delenv("COLUMNS", raising=False)  # an xdist worker has COLUMNS=80
        return run_experiment(experiment, console=console(file=printed))
