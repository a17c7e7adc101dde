"""Errors cm explains itself: the CLI prints their message (no traceback) and exits with
their code: 2 for bad input a user can fix, 1 for a job that ran and failed, 130 / 143 for
an interrupt (Ctrl-C / SIGTERM)."""

import contextlib
import difflib
import signal
import sys
import threading


class UserError(Exception):
    """Bad input from the user: a file, key, row or option, with the fix in the message."""

    exit_code = 2


class PluginError(UserError):
    """A plugin could not be used (duplicate name, unknown component, broken hook)."""


def suggest(name, known):
    """A ``; did you mean 'x'?`` hint, or an empty string when nothing is close."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def first_line(text: str) -> str:
    """The first line of an error message, for one-line reports."""
    return text.strip().splitlines()[0] if text.strip() else text


class JobFailed(UserError):
    """The job ran and did not succeed (every sweep trial failed, a replay beyond its
    tolerance); the message says what happened and where to look."""

    exit_code = 1


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with an optional one-line message (e.g. how to resume)."""

    exit_code = 130
    default = "interrupted (Ctrl-C)"

    def __str__(self):
        return self.args[0] if self.args else self.default


class Terminated(Interrupted):
    """SIGTERM (a cluster scheduler stopping the job): handled like Ctrl-C, so runs end
    KILLED with everything logged so far kept."""

    exit_code = 143
    default = "terminated (SIGTERM)"


def signalled(signum) -> Interrupted:
    """The interrupt a signal stands for: ``Terminated`` for SIGTERM, else ``Interrupted``."""
    return Terminated() if signum == signal.SIGTERM else Interrupted()


def interruption(exc: KeyboardInterrupt) -> Interrupted:
    """``exc`` as an ``Interrupted`` (a plain KeyboardInterrupt is a Ctrl-C): its str() is
    the one line to print, its ``exit_code`` the code to exit with."""
    return exc if isinstance(exc, Interrupted) else Interrupted()


@contextlib.contextmanager
def saving_through_one_interrupt():
    """While the block saves what a run logged (its trackers' last flush, its status), a
    Ctrl-C or SIGTERM prints that it is saving and is raised once the block ends; a second
    one is raised at once (``Interrupted`` / ``Terminated``, as always). Main thread only:
    elsewhere signals never arrive."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []

    def handle(signum, frame):
        received.append(signum)
        if len(received) > 1:
            raise signalled(signum)
        print("saving what the run logged; press Ctrl-C again to stop without it",
              file=sys.stderr, flush=True)

    previous = {number: signal.signal(number, handle)
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if received:
        raise signalled(received[0])
