"""The ``cm`` console script. It imports the CLI inside the error boundary, so Ctrl-C or
SIGTERM during start-up imports exits 130 / 143 with one line, like any other moment."""

import sys


def main():
    from cm.cli.boundary import guard

    cli = guard(_import_cli, "--debug" in sys.argv[1:])
    return cli()


def _import_cli():
    from cm.cli.main import cli

    return cli
