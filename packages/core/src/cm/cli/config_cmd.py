"""``cm config``: show or validate the fully resolved experiment."""

import click

from cm.cli.params import experiment_argument, load
from cm.cli.plugin_checks import load_checked
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
    """Check an experiment file as cm run and cm sweep do before any work: the config
    (every problem at once, [hpo.space] against the experiment), the device and the
    optimizations on it, the output folder, the data, room for the criteria in
    data.max_length, hpo.metric's criterion. Exit 2 naming each problem. Writes nothing but
    cm's cache (the tiny tokenizer, the demo data); the tracking store is left for cm run
    to check (checking it may create it)."""
    from cm.preflight import check

    experiment = load_checked(experiment_file, overrides)
    check(experiment)
    click.echo(f"{experiment_file}: valid experiment {experiment.name!r}")
