"""``cm data``: inspect datasets."""

import click

from cm.cli.options import experiment_argument, load


@click.group()
def data():
    """Inspect the data an experiment uses."""


@data.command()
@experiment_argument
def stats(experiment_file, overrides):
    """Posts, pairs and positives per criterion and split; token lengths; padding waste."""
    load(experiment_file, overrides)
    click.secho("cm data stats: not implemented yet (tracked in issue #3).", fg="yellow", err=True)
    raise SystemExit(3)
