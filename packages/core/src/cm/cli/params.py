"""Click parameters shared by every command that takes an experiment file."""

import click

from cm.config import load_experiment
from cm.registry import get_registry


def experiment_argument(func=None, *, required=True):
    """``FILE`` plus repeatable ``--set key=value`` overrides; ``@experiment_argument(
    required=False)`` for a command where FILE may be left out."""
    if func is None:
        return lambda command: experiment_argument(command, required=required)
    func = click.option(
        "--set", "overrides", multiple=True, metavar="KEY=VALUE",
        help="Override a config key; the value is parsed as TOML (e.g. train.lr=3e-5).",
    )(func)
    return click.argument("experiment_file", type=click.Path(dir_okay=False),
                          required=required)(func)


def load(experiment_file, overrides):
    return load_experiment(experiment_file, overrides, registry=get_registry())
