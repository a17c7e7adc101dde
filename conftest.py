"""Fixtures shared by every test directory (the packages' tests and tests/).

- ``cm_cache_dir`` (session, autouse): one ``CM_CACHE_DIR`` for the session, so tokenizers
  and encodings are built once; subprocesses inherit it through the environment.
- ``tiny_run`` (session): one finished tiny ``cm run`` (``cm.testing.TINY_RUN``) for tests
  that only read what a run wrote (outputs, checkpoint, metrics); a test that changes the
  config or the run trains its own. What it printed (to a file, not a terminal, as ``cm
  run > log`` prints) is in ``console.txt`` beside its ``output_dir``.
"""

import pytest


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
    with open(home / "console.txt", "w") as printed:
        return run_experiment(experiment, console=console(file=printed))
