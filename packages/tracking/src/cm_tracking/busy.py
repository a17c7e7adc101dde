"""A sqlite store other processes use too (``mlflow ui``, a sweep's workers, a second run):
sqlite lets one writer in at a time and answers "database is locked" to the others.

Every sqlite connection cm opens waits up to ``BUSY_TIMEOUT_S`` for the lock (sqlite's
busy timeout; Python's default is 5 s, too short on a loaded machine), and the write that
ends a run is retried ``ATTEMPTS`` times on top: the final status is not lost to a reader
that held the store a while. If it still cannot be written, one line says so and the run's
exit code stays what it was (130 / 143 after a signal)."""

import sqlite3
import sys
import time

from sqlalchemy import event
from sqlalchemy.engine import Engine

BUSY_TIMEOUT_S = 30
ATTEMPTS = 3


def wait_when_locked() -> None:
    """Give every sqlite connection made from now on the busy timeout (once per process)."""
    if not event.contains(Engine, "connect", set_busy_timeout):
        event.listen(Engine, "connect", set_busy_timeout)


def set_busy_timeout(connection, record) -> None:
    if isinstance(connection, sqlite3.Connection):
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")


def locked(error: Exception) -> bool:
    text = str(error).lower()
    return "database is locked" in text or "database is busy" in text


def end_run(client, run_id: str, status: str, uri: str) -> bool:
    """Mark the MLflow run ``status``, waiting out a locked store; False (and one line on
    stderr) when it could not be written."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            client.set_terminated(run_id, status=status)
            return True
        except Exception as exc:  # noqa: BLE001 - MlflowException or the driver's own
            if not locked(exc):
                raise
            if attempt < ATTEMPTS:
                time.sleep(attempt)
    print(f"warning: MLflow run {run_id} could not be marked {status}: its store {uri} stayed "
          f"locked for {ATTEMPTS} x {BUSY_TIMEOUT_S} s (another process writing to it?); "
          "it shows RUNNING there", file=sys.stderr, flush=True)
    return False
