"""Checking an MLflow tracking store before anything is trained or written to it.

- the URI's scheme is one MLflow can open, else exit 2 naming the URI;
- a server or database answers within a few seconds (MLflow itself would retry for
  minutes with no output);
- a sqlite file's folder exists (never created on the way), and a lookup (replay,
  compare, predict --run-id) never creates a store;
- a new local sqlite store is created whole or not at all: its tables are made in a
  private file that is then linked into place, so runs started together never race in the
  schema migration and a Ctrl-C during creation leaves no half-made store behind;
- a store that cannot be opened (half-migrated, out of date, not a database) is exit 2 with
  the fix.
"""

import base64
import logging
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cm.errors import UserError
from cm.preflight import writable_directory
from cm.secrets import hide_passwords
from cm_tracking.busy import wait_when_locked
from cm_tracking.options import sqlite_path, uri_problem

SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks",
           "databricks-uc", "uc", "file")
DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}
REACH_S = 5.0
checked = set()  # URIs found usable by this process


def check_store(uri: str, create: bool = True) -> None:
    """Raise a UserError naming ``uri`` and the fix unless its store can be used now.
    ``create=False``: a lookup (replay, compare, predict --run-id), which never creates a
    store: a sqlite file that is not there is refused."""
    wait_when_locked()
    if uri in checked:
        return
    shown = hide_passwords(uri)
    problem = uri_problem(uri)
    if problem:
        raise UserError(f"tracking URI {shown!r} {problem} ([tracking.mlflow] tracking_uri, "
                        "MLFLOW_TRACKING_URI or --tracking-uri)")
    scheme = urlsplit(uri).scheme.split("+")[0]
    if not scheme:
        raise UserError(f"tracking URI {shown!r} is a plain path (MLflow's retired file "
                        "store); use a database store, e.g. sqlite:///mlflow.db")
    if scheme not in SCHEMES:
        raise UserError(f"tracking URI {shown!r}: unknown scheme {scheme!r}; use one MLflow "
                        f"knows ({', '.join(SCHEMES)}), e.g. sqlite:///mlflow.db or "
                        "http://host:5000 ([tracking.mlflow] tracking_uri or "
                        "MLFLOW_TRACKING_URI)")
    if scheme == "sqlite":
        check_sqlite_file(uri, sqlite_path(uri), create)
    elif scheme in ("http", "https"):
        check_server(uri)
    elif scheme in DEFAULT_PORTS:
        check_listening(uri, scheme)
    probe(uri)
    checked.add(uri)


def check_sqlite_file(uri: str, path: Path | None, create: bool, what="tracking URI",
                      make=None) -> None:
    """The database file's folder exists (MLflow and Optuna would make it silently, typo
    included); the file exists, or is created whole when ``create``: ``make(private)``
    builds its tables in a private file (default: MLflow's)."""
    if path is None:
        return
    if not path.parent.is_dir():
        writable_directory(path.parent, f"the directory of {what} {uri!r}")  # a file there?
        raise UserError(f"{what} {uri!r} {uri_problem(uri)}")
    if path.is_dir():
        raise UserError(f"{what} {uri!r}: {path} is a directory; name a database file, e.g. "
                        "sqlite:///mlflow.db")
    if path.exists():
        return
    if not create:
        raise UserError(f"no tracking store at {uri!r} ({path.absolute()} does not exist); "
                        "pass --tracking-uri (or set MLFLOW_TRACKING_URI) to the store that "
                        "holds the run")
    writable_directory(path.parent, f"the directory of {what} {uri!r}")
    create_whole(path, make or (lambda private: probe(f"sqlite:///{private}")))


def create_whole(path: Path, make) -> None:
    """``make(private)`` fills a private file that is then linked into place: processes
    started together never race in creating the tables, and an interrupted creation leaves
    nothing half-made."""
    private = path.with_name(f".{path.name}.{os.getpid()}.creating")
    try:
        make(private)
        try:
            os.link(private, path)  # atomic; fails if another process made it first
        except FileExistsError:
            pass
    finally:
        private.unlink(missing_ok=True)


def check_server(uri: str) -> None:
    """GET /health of the server at the URI's real host; credentials in the URI are sent
    as HTTP basic auth, as MLflow sends them."""
    parts = urlsplit(uri)
    host = parts.hostname if ":" not in (parts.hostname or "") else f"[{parts.hostname}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    url = parts._replace(netloc=netloc).geturl().rstrip("/") + "/health"
    request = urllib.request.Request(url)  # noqa: S310 - http(s) only, checked by the caller
    if parts.username is not None:
        token = base64.b64encode(f"{unquote(parts.username)}:"
                                 f"{unquote(parts.password or '')}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    shown = hide_passwords(uri)
    try:
        with urllib.request.urlopen(request, timeout=REACH_S) as response:  # noqa: S310
            answered = response.status
    except urllib.error.HTTPError as exc:
        answered = exc.code
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"tracking server {shown} does not answer within {REACH_S:g} s "
                        f"({reason}); start it (mlflow server --host ... --port ...) or fix "
                        "[tracking.mlflow] tracking_uri / MLFLOW_TRACKING_URI") from None
    if answered >= 500:
        raise UserError(f"tracking server {shown} answered HTTP {answered} at /health; check "
                        "the server's log, or point tracking_uri at a working one")


def check_listening(uri: str, scheme: str) -> None:
    parts = urlsplit(uri)
    host, port = parts.hostname or "localhost", parts.port or DEFAULT_PORTS[scheme]
    try:
        socket.create_connection((host, port), timeout=REACH_S).close()
    except OSError as exc:
        raise UserError(f"tracking store {hide_passwords(uri)}: nothing answers at {host}:{port} "
                        f"within {REACH_S:g} s ({exc.strerror or exc}); start the database "
                        "or fix the tracking URI") from None


def probe(uri: str) -> None:
    """Open the store as a run will (creating a new sqlite store's tables, quietly: MLflow
    logs each migration step at INFO)."""
    from mlflow import MlflowClient

    migrations = logging.getLogger("mlflow.store.db.utils")
    level = migrations.level
    migrations.setLevel(max(level, logging.WARNING))
    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - any failure here is the store's, named below
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise UserError(f"tracking store {hide_passwords(uri)} cannot be opened "
                        f"({type(exc).__name__}: {first}){fix_for(uri, str(exc))}") from None
    finally:
        migrations.setLevel(level)


def fix_for(uri: str, error: str) -> str:
    path = sqlite_path(uri) if uri.startswith("sqlite") else None
    if path is not None:
        return (f". If an earlier cm or mlflow command was interrupted while creating it, "
                f"the store is half-made: move it away (mv {path} {path}.broken) and run "
                f"again; an older MLflow's store needs `mlflow db upgrade {uri}` (back it "
                "up first)")
    if "filesystem tracking backend" in error or uri.startswith("file:") or "://" not in uri:
        return "; use a database store, e.g. sqlite:///mlflow.db"
    return "; check the URI and that the store is running"
