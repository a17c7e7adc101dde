"""The stop-signal contract of every cm command: SIGINT stops it as ``Interrupted`` (exit
130), SIGTERM as ``Terminated`` (exit 143), at any moment, and what was logged is kept.

Python runs a signal handler between two bytecodes of the main thread. When that moment
falls inside a callback Python runs for itself (a ``__del__``, a weakref or GC callback:
sqlalchemy returns connections to their pool from such callbacks), the exception the
handler raises is printed as "Exception ignored in ..." and lost, and the program goes on.
So the handler also records every signal in ``received``, and cm looks at that record at
safe points (``check``): after every lifecycle hook call, before a run is marked FINISHED,
after each sweep trial and when a command returns. A signal that arrives while a hook runs
(a tracker writing to its store) is held until the call ends (``deferred``), so no store
transaction is cut in half.

Main thread only: Python delivers signals there alone."""

import contextlib
import signal
import sys
import threading

from cm.errors import Interrupted, signalled

STOP = (signal.SIGINT, signal.SIGTERM)
SAVING = "saving what the run logged; press Ctrl-C again to stop without it"
received: list[int] = []  # signals recorded and not yet raised at a safe point


def stop(signum, frame):
    """The handler: record the signal, then raise it where the program is."""
    received.append(signum)
    raise signalled(signum)


def on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def install() -> dict:
    """Make ``stop`` the handler of SIGINT and SIGTERM (and keep Python from printing the
    traceback of one it swallows); returns the handlers it replaced."""
    if not on_main_thread():
        return {}
    sys.unraisablehook = quiet_about_signals
    return {number: signal.signal(number, stop) for number in STOP}


def quiet_about_signals(unraisable) -> None:
    """Python's hook for an exception it swallows: a signal's is recorded in ``received``
    and raised at the next safe point, so it is not printed; any other is, as always."""
    if not isinstance(unraisable.exc_value, Interrupted):
        sys.__unraisablehook__(unraisable)


def restore(previous: dict) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)


@contextlib.contextmanager
def installed():
    """``install`` while the block runs (a command), then the previous handlers back."""
    hook = sys.unraisablehook
    previous = install()
    try:
        yield
    finally:
        restore(previous)
        sys.unraisablehook = hook


def pending() -> Interrupted | None:
    """The interrupt a recorded signal stands for (SIGTERM wins), else None; taking it
    clears the record: whoever takes it raises or reports it."""
    if not received:
        return None
    first = signal.SIGTERM if signal.SIGTERM in received else received[0]
    received.clear()
    return signalled(first)


def check() -> None:
    """A safe point: raise the signal whose exception Python swallowed, if any."""
    stopped = pending()
    if stopped is not None:
        raise stopped


def forget() -> None:
    """The signal was raised and is being handled (a run ends KILLED): no safe point raises
    it again."""
    received.clear()


@contextlib.contextmanager
def deferred(notice: str | None = None):
    """While the block runs, the first SIGINT / SIGTERM is held (``notice`` printed, if
    given) and raised once the block ends; a second one is raised at once."""
    if not on_main_thread():
        yield
        return
    held = []

    def hold(signum, frame):
        received.append(signum)
        held.append(signum)
        if len(held) > 1:
            raise signalled(signum)
        if notice:
            print(notice, file=sys.stderr, flush=True)

    previous = {number: signal.signal(number, hold) for number in STOP}
    try:
        yield
    finally:
        restore(previous)
    if held:
        check()
