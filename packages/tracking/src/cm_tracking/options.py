"""The ``[tracking.mlflow]`` options, apart from the tracker: registering them must not
import mlflow (seconds of start-up for every ``cm`` command, most of which never track)."""

import os
from pathlib import Path
from urllib.parse import urlsplit

import attrs

DEFAULT_URI = "sqlite:///mlflow.db"
# tags a sweep gives each trial's run; a replay of a trial drops them (it is not a trial)
TRIAL_TAGS = ("mlflow.parentRunId", "cm.trial_number", "optuna.study_name", "cm.sampler")


def sqlite_path(uri: str) -> Path | None:
    """The database file of ``sqlite:///relative.db`` or ``sqlite:////absolute.db``."""
    rest = uri.split(":///", 1)[1] if ":///" in uri else ""
    rest = rest.split("?", 1)[0]
    return Path(rest) if rest and rest != ":memory:" else None


def uri_problem(uri: str) -> str | None:
    """What is wrong with ``uri`` before any store is opened, with the fix: a malformed URI
    (``http://[::1``, a port that is not a number), or a sqlite file whose folder does not
    exist (cm never creates it: a typo would start a new store elsewhere)."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - parsing the port is what may fail
    except ValueError as exc:
        return f"is malformed ({exc}); use e.g. http://host:5000 or sqlite:///mlflow.db"
    path = sqlite_path(uri) if parts.scheme == "sqlite" else None
    if path is not None and not path.parent.exists():
        return (f"names the folder {path.parent.absolute()}, which does not exist; create it "
                f"(mkdir -p {path.parent}) or fix the URI")
    return None


def checked_uri(instance, attribute, value) -> None:
    problem = value and uri_problem(value)
    if problem:
        raise ValueError(f"tracking URI {value!r} {problem}")


@attrs.frozen
class MlflowOptions:
    tracking_uri: str | None = attrs.field(default=None, validator=checked_uri)  # None:
    #                                      $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db
    experiment_name: str | None = None  # None: the cm experiment's name
    artifact_location: str | None = None  # None: ./mlruns beside a new sqlite store
    log_checkpoint: bool = False  # the best checkpoint as artifacts (needed by replay
    #                               --eval-only once the local run directory is gone)
    tags: dict[str, str] = attrs.Factory(dict)  # extra run tags (replay, sweeps' parents)


def tracking_uri(options: MlflowOptions | None = None) -> str:
    """The config's URI, else ``$MLFLOW_TRACKING_URI``, else the local sqlite file."""
    return ((options and options.tracking_uri) or os.environ.get("MLFLOW_TRACKING_URI")
            or DEFAULT_URI)
