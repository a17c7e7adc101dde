"""What ``cm run --resume`` refuses before any work: a folder that is no run, a finished run,
a config other than the run's (naming the keys), no saved state; only the keys that cannot
change results (``UNCHANGING``) may differ. And the parts of its state: the random generators
come back through the saved file, a stop while saving leaves the previous state whole."""

import random

import attrs
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cm.cli.main import cli
from cm.config.dump import dumps
from cm.testing import make_tiny_experiment
from cm.train.resume import UNCHANGING, differing_keys, replace, rng_state, set_rng_state


@pytest.fixture
def stopped(tmp_path, tiny_experiment):
    """A run folder as a run stopped before its first save leaves it: config.toml alone."""
    directory = tmp_path / "run"
    directory.mkdir()
    (directory / "config.toml").write_text(dumps(tiny_experiment()))
    return directory


def resume(*args):
    result = CliRunner().invoke(cli, ["run", *map(str, args)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.output


def test_a_result_changing_set_is_refused_naming_the_keys(stopped):
    output = resume("--resume", stopped, "--set", "train.lr=0.0005", "--set", "seed=7")
    assert f"--resume {stopped}: the config differs from its config.toml at seed, train.lr" \
        in output
    assert "only train.save_every_steps may change" in output


def test_a_changed_experiment_file_is_refused_naming_the_key(stopped, tmp_path):
    changed = tmp_path / "changed.toml"
    changed.write_text((stopped / "config.toml").read_text().replace("epochs = 1",
                                                                     "epochs = 3"))
    assert "differs from its config.toml at train.epochs;" in resume(changed, "--resume",
                                                                     stopped)


def test_save_every_steps_may_change_and_then_the_missing_state_is_named(stopped):
    output = resume("--resume", stopped, "--set", "train.save_every_steps=3")
    assert "no saved state (resume/state.pt)" in output
    assert "start it again with cm run FILE" in output


def test_a_finished_run_is_refused(stopped):
    (stopped / "metrics.json").write_text("{}")
    assert "the run finished (metrics.json is there); nothing to resume" in resume(
        "--resume", stopped)


def test_a_folder_that_is_no_run_is_refused(tmp_path):
    assert "not a run folder (no config.toml)" in resume("--resume", tmp_path)


def test_run_needs_a_file_or_a_folder_to_resume():
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 2
    assert "give the EXPERIMENT_FILE to run, or --resume RUN_DIR" in result.output


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    return make_tiny_experiment(tmp_path_factory.mktemp("outputs"))


@settings(max_examples=30, deadline=None)
@given(epochs=st.integers(1, 4), lr=st.sampled_from([1e-5, 2e-5, 3e-4]),
       batch_size=st.integers(1, 64), save_every_steps=st.integers(0, 50))
def test_differing_keys_are_exactly_the_changed_result_keys(experiment, epochs, lr,
                                                            batch_size, save_every_steps):
    changes = {"epochs": epochs, "lr": lr, "batch_size": batch_size,
               "save_every_steps": save_every_steps}
    changed = attrs.evolve(experiment, train=attrs.evolve(experiment.train, **changes))
    expected = sorted(f"train.{k}" for k, v in changes.items()
                      if getattr(experiment.train, k) != v and f"train.{k}" not in UNCHANGING)
    assert differing_keys(experiment, changed) == expected
    assert differing_keys(changed, changed) == []


def draws():
    return random.random(), np.random.random(), torch.rand(3).tolist()


def test_every_random_generator_comes_back_through_the_saved_file(tmp_path):
    path = tmp_path / "rng.pt"
    torch.save(rng_state(), path)
    expected = draws()
    draws()  # the generators move on
    set_rng_state(torch.load(path, weights_only=True))
    assert draws() == expected


def test_a_stop_while_saving_leaves_the_previous_state_whole(tmp_path):
    path = tmp_path / "state.json"
    replace(path, lambda target: target.write_text("epoch 1"))

    def stopped(target):
        target.write_text("half of epo")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace(path, stopped)
    assert path.read_text() == "epoch 1"
    replace(path, lambda target: target.write_text("epoch 2"))
    assert path.read_text() == "epoch 2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
