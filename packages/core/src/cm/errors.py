"""Errors cm explains itself: the CLI prints their message (no traceback) and exits with
their code: 2 for bad input a user can fix, 1 for a job that ran and failed, 130 / 143 for
an interrupt (Ctrl-C / SIGTERM)."""

import difflib
import signal


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

