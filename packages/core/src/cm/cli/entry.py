"""The ``cm`` console script. Ctrl-C or SIGTERM at any moment, start-up imports included,
exits 130 / 143 with one line: this module imports nothing heavy before it can catch them,
then imports the CLI inside the error boundary (cm.cli.boundary).

A signal that lands inside a callback Python runs during an import (a weakref callback of
the import lock) raises there and Python swallows the exception ("Exception ignored in");
the handlers below record every signal, so such a one still stops cm once imports end."""

import signal
import sys

from cm.errors import interruption, signalled

_received: list[int] = []


def main():
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        from cm.cli.boundary import guard

        cli = guard(_import_cli, "--debug" in sys.argv[1:])
    except KeyboardInterrupt as exc:  # before the boundary itself was imported
        return _stopped(exc)
    if _received:  # raised where Python swallowed it
        return _stopped(signalled(signal.SIGTERM if signal.SIGTERM in _received
                                  else signal.SIGINT))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return cli()


def _stop(signum, frame):
    _received.append(signum)
    raise signalled(signum)


def _stopped(exc: KeyboardInterrupt) -> int:
    stopped = interruption(exc)
    print(stopped, file=sys.stderr)
    return stopped.exit_code


def _import_cli():
    from cm.cli.main import cli

    return cli
