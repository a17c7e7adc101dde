"""The ``cm`` console script. Ctrl-C or SIGTERM at any moment, start-up imports included,
exits 130 / 143 with one line: this module imports nothing heavy before it installs cm's
signal handlers (cm.signals), then imports the CLI inside the error boundary
(cm.cli.boundary). A signal whose exception Python swallowed during the imports (raised in
a weakref callback of the import lock) is still in ``cm.signals.received``: it stops cm
once the imports end."""

import sys

from cm import signals
from cm.errors import interruption


def main():
    signals.install()
    try:
        from cm.cli.boundary import guard

        cli = guard(_import_cli, "--debug" in sys.argv[1:])
        signals.check()
    except KeyboardInterrupt as exc:  # before the boundary itself was imported
        stopped = interruption(exc)
        print(stopped, file=sys.stderr)
        return stopped.exit_code
    return cli()


def _import_cli():
    from cm.cli.main import cli

    return cli
