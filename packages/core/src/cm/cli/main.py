"""``cm``: the entry point. Commands live in small modules; errors a user can fix are
printed without a traceback and exit with their code (2 for bad input)."""

import os
import sys

import click

from cm import __version__
from cm.cli import bench_cmd, config_cmd, data_cmd, plugins_cmd, run_cmd, tracking_cmd
from cm.errors import UserError

# transformers warns about every long text it tokenizes; cm truncates or windows them itself.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class Cli(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cm")
def cli():
    """Fine-tune DeBERTaV3 cross-encoders that match posts to DSM-5 MDD criteria.

    For research only: cm does not diagnose anyone.
    """


cli.add_command(plugins_cmd.plugins)
cli.add_command(config_cmd.config)
cli.add_command(data_cmd.data)
cli.add_command(run_cmd.run)
cli.add_command(run_cmd.predict)
cli.add_command(bench_cmd.bench)
for command in tracking_cmd.COMMANDS:
    cli.add_command(command)
