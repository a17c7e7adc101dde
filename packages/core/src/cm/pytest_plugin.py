"""cm's pytest plugin (entry point ``cm`` of group ``pytest11``): the fixtures plugin authors
use, made from the helpers of ``cm.testing`` (which needs no pytest)."""

import pytest

from cm.testing import build_train_context, make_tiny_experiment, run_quietly


@pytest.fixture
def tiny_experiment(tmp_path):
    """``tiny_experiment(*sets, **tables)`` -> a decoded tiny Experiment (see cm.testing)."""

    def make(*sets, **tables):
        return make_tiny_experiment(tmp_path / "outputs", *sets, **tables)

    return make


@pytest.fixture
def run_tiny():
    """``run_tiny(experiment, **kwargs)`` -> the finished Run of ``cm run``."""
    return run_quietly


@pytest.fixture
def train_context(tiny_experiment):
    """``train_context(*sets, **tables)`` -> a TrainContext ready for ``apply``."""
    return lambda *sets, **tables: build_train_context(tiny_experiment(*sets, **tables))


