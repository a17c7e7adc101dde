"""Click parameters shared by every command that takes an experiment file."""

import click

from cm.config import load_experiment
from cm.registry import get_registry


def experiment_argument(func):
    """``FILE`` plus repeatable ``--set key=value`` overrides."""
    func = click.option(
        "--set", "overrides", multiple=True, metavar="KEY=VALUE",
        help="Override a config key; the value is parsed as TOML (e.g. train.lr=3e-5).",
    )(func)
    return click.argument("experiment_file", type=click.Path(dir_okay=False))(func)


def load(experiment_file, overrides):
    return load_experiment(experiment_file, overrides, registry=get_registry())
