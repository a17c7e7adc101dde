"""The one error boundary of the ``cm`` command line, around every command (plugin-added
ones included):

- a ``UserError`` prints its message (what, where, the fix) and exits with its code (2);
- Ctrl-C prints one line and exits 130; SIGTERM is raised as ``Terminated`` (a
  KeyboardInterrupt, so runs end KILLED with what they logged kept) and exits 143;
- anything else prints one line with the path of a crash report (traceback, command,
  versions) and exits 1; ``--debug`` or ``CM_DEBUG=1`` prints the traceback instead.
"""

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

import click

from cm.environment import versions
from cm.errors import Terminated, UserError, interruption


def debug_requested(flag=False) -> bool:
    return bool(flag) or os.environ.get("CM_DEBUG", "").strip().lower() in ("1", "true", "yes")


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM raises ``Terminated`` in the main thread while the block runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def guard(body, debug=False):
    """Run ``body()``; turn whatever it raises into one message and an exit code."""
    try:
        with sigterm_as_interrupt():
            return body()
    except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
        raise
    except UserError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        stopped = interruption(exc)
        click.secho(str(stopped), fg="yellow", err=True)
        sys.exit(stopped.exit_code)
    except Exception as exc:  # noqa: BLE001 - the boundary: nothing unexpected leaks a trace
        if debug_requested(debug):
            raise
        crash(exc)
        sys.exit(1)


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

