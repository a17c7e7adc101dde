"""Checking an MLflow tracking store before anything is trained or written to it.

- the URI's scheme is one MLflow can open, else exit 2 naming the URI;
- a server or database answers within a few seconds (MLflow itself would retry for
  minutes with no output);
- a new local sqlite store is created whole or not at all: its tables are made in a
  private file that is then linked into place, so runs started together never race in the
  schema migration and a Ctrl-C during creation leaves no half-made store behind;
- a store that cannot be opened (half-migrated, out of date, not a database) is exit 2 with
  the fix.
"""

import logging
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from cm.errors import UserError
from cm.preflight import writable_directory

SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks",
           "databricks-uc", "uc", "file")
DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}
REACH_S = 5.0
checked = set()  # URIs found usable by this process


def check_store(uri: str) -> None:
    """Raise a UserError naming ``uri`` and the fix unless its store can be used now."""
    if uri in checked:
        return
    scheme = urlsplit(uri).scheme.split("+")[0]
    if not scheme:
        raise UserError(f"tracking URI {uri!r} is a plain path (MLflow's retired file store); "
                        "use a database store, e.g. sqlite:///mlflow.db")
    if scheme not in SCHEMES:
        raise UserError(f"tracking URI {uri!r}: unknown scheme {scheme!r}; use one MLflow "
                        f"knows ({', '.join(SCHEMES)}), e.g. sqlite:///mlflow.db or "
                        "http://host:5000 ([tracking.mlflow] tracking_uri or "
                        "MLFLOW_TRACKING_URI)")
    if scheme == "sqlite":
        create_sqlite_store(uri, sqlite_path(uri))
    elif scheme in ("http", "https"):
        check_server(uri)
    elif scheme in DEFAULT_PORTS:
        check_listening(uri, scheme)
    probe(uri)
    checked.add(uri)


def sqlite_path(uri: str) -> Path | None:
    """The database file of ``sqlite:///relative.db`` or ``sqlite:////absolute.db``."""
    rest = uri.split(":///", 1)[1] if ":///" in uri else ""
    rest = rest.split("?", 1)[0]
    return Path(rest) if rest and rest != ":memory:" else None


def create_sqlite_store(uri: str, path: Path | None) -> None:
    if path is None:
        return
    writable_directory(path.parent, f"the directory of tracking store {uri!r}")
    if path.is_dir():
        raise UserError(f"tracking URI {uri!r}: {path} is a directory; name a database "
                        "file, e.g. sqlite:///mlflow.db")
    if path.exists():
        return
    private = path.with_name(f".{path.name}.{os.getpid()}.creating")
    try:
        probe(f"sqlite:///{private}")
        try:
            os.link(private, path)  # atomic; fails if another process made it first
        except FileExistsError:
            pass
    finally:
        private.unlink(missing_ok=True)


def check_server(uri: str) -> None:
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=REACH_S) as response:  # noqa: S310
            answered = response.status
    except urllib.error.HTTPError as exc:
        answered = exc.code
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"tracking server {uri} does not answer within {REACH_S:g} s "
                        f"({reason}); start it (mlflow server --host ... --port ...) or fix "
                        "[tracking.mlflow] tracking_uri / MLFLOW_TRACKING_URI") from None
    if answered >= 500:
        raise UserError(f"tracking server {uri} answered HTTP {answered} at /health; check "
                        "the server's log, or point tracking_uri at a working one")


def check_listening(uri: str, scheme: str) -> None:
    parts = urlsplit(uri)
    host, port = parts.hostname or "localhost", parts.port or DEFAULT_PORTS[scheme]
    try:
        socket.create_connection((host, port), timeout=REACH_S).close()
    except OSError as exc:
        raise UserError(f"tracking store {redacted(uri)}: nothing answers at {host}:{port} "
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
        raise UserError(f"tracking store {redacted(uri)} cannot be opened "
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


def redacted(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return uri.replace(f":{parts.password}@", ":***@", 1)
