"""``cm``: the entry point. Commands live in small modules; plugins add theirs through the
``register_commands`` hook (cm-tracking adds ``sweep``, ``replay`` and ``predict --run-id``).
Every command, plugins' included, runs inside the error boundary (cm.cli.boundary): no
traceback reaches a user unless ``--debug``."""

import os

import click

from cm import __version__
from cm.cli import (
    bench_cmd,
    compare_cmd,
    config_cmd,
    data_cmd,
    export_cmd,
    new_cmd,
    plugins_cmd,
    run_cmd,
)
from cm.cli.boundary import guard

# transformers warns about every long text it tokenizes; cm truncates or windows them itself.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class Cli(click.Group):
    """The core commands, plus the plugins' (asked for once, when a command is looked up or
    listed: ``cm --version`` loads no plugin)."""

    plugins_asked = False

    def plugin_commands(self):
        if not self.plugins_asked:
            self.plugins_asked = True
            from cm.plugins import add_commands, installed_plugins

            add_commands(installed_plugins(), self)

    def get_command(self, ctx, cmd_name):
        self.plugin_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx):
        self.plugin_commands()
        return super().list_commands(ctx)

    def invoke(self, ctx):
        return guard(lambda: super(Cli, self).invoke(ctx), ctx.params.get("debug"))


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cm")
@click.option("--debug", is_flag=True, envvar="CM_DEBUG",
              help="Show the traceback of an unexpected error (also CM_DEBUG=1).")
def cli(debug):
    """Fine-tune DeBERTaV3 cross-encoders that match posts to DSM-5 MDD criteria.

    For research only: cm does not diagnose anyone.
    """


cli.add_command(plugins_cmd.plugins)
cli.add_command(config_cmd.config)
cli.add_command(data_cmd.data)
cli.add_command(run_cmd.run)
cli.add_command(run_cmd.predict)
cli.add_command(bench_cmd.bench)
cli.add_command(compare_cmd.compare)
cli.add_command(export_cmd.export)
cli.add_command(new_cmd.new)
