"""The one error boundary of the ``cm`` command line, around every command (plugin-added
ones included):

- a ``UserError`` prints its message (what, where, the fix) and exits with its code (2);
- Ctrl-C prints one line and exits 130, SIGTERM exits 143 (cm.signals: runs end KILLED
  with what they logged kept), also when Python swallowed the signal's exception;
- a closed standard output (``cm predict ... | head -2``) ends the command quietly, as
  Unix tools do;
- anything else prints one line with the path of a crash report (traceback, command,
  versions) and exits 1; ``--debug`` or ``CM_DEBUG=1`` prints the traceback instead.
"""

import os
import sys
import time
import traceback
from pathlib import Path

import click

from cm import signals
from cm.environment import versions
from cm.errors import UserError, interruption


def debug_requested(flag=False) -> bool:
    return bool(flag) or os.environ.get("CM_DEBUG", "").strip().lower() in ("1", "true", "yes")


def guard(body, debug=False):
    """Run ``body()``; turn whatever it raises into one message and an exit code."""
    try:
        with signals.installed():
            result = body()
            signals.check()  # a signal whose exception Python swallowed
        return result
    except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
        raise
    except UserError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        stop(interruption(exc))
    except BrokenPipeError:
        sys.exit(closed_output())
    except Exception as exc:  # noqa: BLE001 - the boundary: nothing unexpected leaks a trace
        stopped = signals.pending()  # an error of a store write a signal cut short
        if stopped is not None:
            stop(stopped)
        if debug_requested(debug):
            raise
        crash(exc)
        sys.exit(1)


def stop(stopped) -> None:
    click.secho(str(stopped), fg="yellow", err=True)
    sys.exit(stopped.exit_code)


CLOSED_OUTPUT = 141  # 128 + SIGPIPE


def closed_output() -> int:
    """The reader of standard output went away (``| head``): point stdout at /dev/null, so
    Python's last flush at exit cannot fail again, and end quietly with 141, the status of a
    Unix tool stopped by SIGPIPE."""
    try:
        descriptor = sys.stdout.fileno()
    except (OSError, ValueError):  # not a real file (a test's capture): nothing to flush
        return CLOSED_OUTPUT
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)
    return CLOSED_OUTPUT


def crash(exc: BaseException) -> None:
    """One line naming the error and the crash report holding the traceback."""
    summary = f"{type(exc).__name__}: {exc}".splitlines()[0][:300] if str(exc) else \
        type(exc).__name__
    try:
        path = write_crash_report(exc)
        where = f"crash report (traceback, versions): {path}"
    except OSError as write_error:
        where = f"no crash report ({write_error}); rerun with --debug for the traceback"
    click.secho(f"error: unexpected {summary}. This is a bug in cm or a plugin; {where}",
                fg="red", err=True)


def crash_dir() -> Path:
    if os.environ.get("CM_CRASH_DIR"):
        return Path(os.environ["CM_CRASH_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "cm" / "crashes"


def write_crash_report(exc: BaseException) -> Path:
    directory = crash_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    lines = [f"command: {' '.join(sys.argv)}", f"cwd: {os.getcwd()}",
             f"time: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}",
             *(f"{name}: {version}" for name, version in versions().items()), "",
             *traceback.format_exception(exc)]
    path.write_text("\n".join(line.rstrip("\n") for line in lines) + "\n")
    return path

