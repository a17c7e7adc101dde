"""The ``[tracking.mlflow]`` options, apart from the tracker: registering them must not
import mlflow (seconds of start-up for every ``cm`` command, most of which never track)."""

import os

import attrs

DEFAULT_URI = "sqlite:///mlflow.db"
# tags a sweep gives each trial's run; a replay of a trial drops them (it is not a trial)
TRIAL_TAGS = ("mlflow.parentRunId", "cm.trial_number", "optuna.study_name", "cm.sampler")


@attrs.frozen
class MlflowOptions:
    tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db
    experiment_name: str | None = None  # None: the cm experiment's name
    artifact_location: str | None = None  # None: ./mlruns beside a new sqlite store
    log_checkpoint: bool = False  # the best checkpoint as artifacts (needed by replay
    #                               --eval-only once the local run directory is gone)
    tags: dict[str, str] = attrs.Factory(dict)  # extra run tags (replay, sweeps' parents)


def tracking_uri(options: MlflowOptions | None = None) -> str:
    """The config's URI, else ``$MLFLOW_TRACKING_URI``, else the local sqlite file."""
    return ((options and options.tracking_uri) or os.environ.get("MLFLOW_TRACKING_URI")
            or DEFAULT_URI)
