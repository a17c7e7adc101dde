"""The ``cm`` console script. Ctrl-C or SIGTERM at any moment, start-up imports included,
exits 130 / 143 with one line: this module imports nothing heavy before it can catch them,
then imports the CLI inside the error boundary (cm.cli.boundary)."""

import signal
import sys

from cm.errors import Interrupted, Terminated


def main():
    signal.signal(signal.SIGTERM, _terminated)
    try:
        from cm.cli.boundary import guard

        cli = guard(_import_cli, "--debug" in sys.argv[1:])
    except KeyboardInterrupt as exc:  # before the boundary itself was imported
        print(exc if isinstance(exc, Interrupted) else Interrupted.default, file=sys.stderr)
        return exc.exit_code if isinstance(exc, Interrupted) else Interrupted.exit_code
    return cli()


def _terminated(signum, frame):
    raise Terminated()


def _import_cli():
    from cm.cli.main import cli

    return cli
