"""``cm new plugin``: start a plugin distribution from cm's template."""

from pathlib import Path

import click


@click.group()
def new():
    """Start something new from a template."""


@new.command()
@click.argument("name")
@click.option("--kinds", default="head,pooling,loss,optimization", show_default=True,
              help="The components to write, one per kind (comma-separated).")
@click.option("--out", type=click.Path(path_type=Path),
              help="The folder to write (new or empty; default ./NAME).")
def plugin(name, kinds, out):
    """Write the plugin distribution NAME (e.g. cm-gated-head): pyproject with its `cm`
    entry point, one component per kind, a README and tests using cm's fixtures."""
    from cm.scaffold import write_plugin

    folder = write_plugin(name, kinds.split(","), out or Path(name))
    click.echo(f"wrote {folder}: pip install -e '{folder}[test]', then `cm plugins --check` "
               f"and `pytest {folder}`")
