"""The runs of a sweep (its trials and its confirmation runs): the base config with a set
of values, run in a folder of the sweep's directory as an MLflow run nested under the
study's parent run, trained with a spinner unless the trials' output is shown."""

from contextlib import nullcontext

from rich.markup import escape

from cm.config import decode, set_keys
from cm.registry import get_registry
from cm.train.engine import run_experiment


def trial_experiment(sweep, values: dict, name: str, tags: dict):
    """The base config with ``values`` set, run in the sweep's folder ``name``, its MLflow
    run tagged with ``tags`` (nested under the study's parent run)."""
    tracking = {"tracking_uri": sweep.tracker.uri, "tags": tags,
                "experiment_name": sweep.tracker.options.experiment_name or sweep.experiment.name}
    raw = set_keys(set_keys(sweep.raw, values),
                   {"output_dir": str(sweep.directory / name), "tracking.mlflow": tracking})
    return decode(raw, source=f"{sweep.source} ({name})", registry=get_registry())


def train(sweep, experiment, name: str, values: dict, listeners=(), resume=None):
    """Train one of the sweep's runs (a trial, a confirmation run): the finished Run;
    ``resume``: a stopped trial's saved state to continue from."""
    shown = escape(", ".join(f"{k}={v}" for k, v in values.items()))
    with training_status(sweep, f"{name} training: {shown}"):
        return run_experiment(experiment, console=sweep.trial_console, listeners=list(listeners),
                              resume=resume)


def training_status(sweep, text):
    """A spinner while a trial trains, unless its own output (progress bars) is shown."""
    return nullcontext() if sweep.trial_console is sweep.console else sweep.console.status(text)
