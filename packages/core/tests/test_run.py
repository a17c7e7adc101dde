"""The Run hooks receive: its identity is fixed once made, the body records into it."""

import attrs
import pytest

from cm.distributed import World
from cm.train.lifecycle import Run


@pytest.mark.parametrize("field", ["experiment", "directory", "device", "prepared", "world"])
def test_a_runs_identity_is_fixed_once_made(field):
    run = Run("experiment", "directory", "cpu", "prepared")
    with pytest.raises(attrs.exceptions.FrozenAttributeError):
        setattr(run, field, World() if field == "world" else "other")


def test_the_body_records_scores_and_artifacts():
    run = Run("experiment", "directory", "cpu", "prepared")
    run.record({"test/f1": 0.5})
    run.record(artifacts={"test/report": __file__})
    run.record({"best_epoch": 2})
    assert run.metrics == {"test/f1": 0.5, "best_epoch": 2}
    assert run.artifacts == {"test/report": __file__}
    run.epoch = 3  # progress stays writable
    assert (run.epoch, run.status) == (3, "RUNNING")
