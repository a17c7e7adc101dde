"""``cm config``: show or validate the fully resolved experiment."""

import click

from cm.cli.params import experiment_argument, load
from cm.config.dump import dumps


@click.group()
def config():
    """Inspect experiment files."""


@config.command()
@experiment_argument
def show(experiment_file, overrides):
    """Print the fully resolved config (bases merged, overrides applied, defaults filled)
    as TOML that cm accepts again."""
    click.echo(dumps(load(experiment_file, overrides)), nl=False)


@config.command()
@experiment_argument
def validate(experiment_file, overrides):
    """Check an experiment file; exit 2 with every problem listed when it is invalid.
    (cm run and cm sweep also check the data, the output folder and the tracking store
    before any work.)"""
    experiment = load(experiment_file, overrides)
    click.echo(f"{experiment_file}: valid experiment {experiment.name!r}")
