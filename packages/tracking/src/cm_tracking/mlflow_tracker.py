"""The ``mlflow`` tracker: one MLflow run per cm run, driven by cm's lifecycle hooks.

Everything goes through ``MlflowClient`` with the run id this tracker created, never the
global fluent "active run", so several trackers (sweeps, parallel runs) do not collide.
Only ids, numbers, the resolved config, reports and file digests are logged — never post
text (cm's reports carry ids and numbers only)."""

import csv
import getpass
import hashlib
import math
import re
import time
from pathlib import Path

import attrs
from mlflow import MlflowClient
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT
from mlflow.utils.validation import (
    MAX_DATASET_DIGEST_SIZE,
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)

from cm.config import flatten, to_dict
from cm.environment import device_name, versions
from cm.errors import UserError
from cm.hookspecs import hookimpl
from cm.lineage import code_state
from cm_tracking.options import MlflowOptions, tracking_uri
from cm_tracking.store import check_store

STATUSES = ("FINISHED", "FAILED", "KILLED")
DIGEST_TAG = "cm.dataset.sha256."  # + file name: the SHA-256 of each dataset file
FLUSH_SECONDS = 15.0  # buffered step metrics are sent at least this often: live curves


class MlflowTracker:
    """Starts its MLflow run at ``run_started`` and ends it at ``run_finished``. Built for
    one cm run and listening to that run alone; it publishes the MLflow ids on the run as
    ``run.links["mlflow"]`` (``run_id``, ``experiment_id``, ``tracking_uri``)."""

    def __init__(self, options: MlflowOptions, experiment):
        self.options = options
        self.experiment = experiment
        self.uri = tracking_uri(options)
        check_store(self.uri)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.run_id = None  # the MLflow run's id, once started
        self.logged = {}  # metric key -> the Metric last logged (value, step)
        self.pending = []  # step metrics, sent in batches (not one round trip per step)
        self.clock = time.monotonic  # tests inject their own
        self.flushed_at = None  # clock() of the last send; None: the first step goes at once
        self.reopened = {}  # a resumed run's: metric key -> the last step logged before

    @hookimpl
    def run_started(self, run):
        if "mlflow" in run.links:  # a resumed run (cm run --resume): its MLflow run goes on
            self._reopen(run.links["mlflow"]["run_id"], run)
            return
        corpus = run.prepared.corpus
        tags = {**run_tags(run), **dataset_tags(run.experiment, corpus), **parent_tags(run),
                **self.options.tags}
        experiment_id = self.experiment_id()
        started = self.client.create_run(experiment_id, run_name=run.directory.name,
                                         tags=clip(tags))
        self.run_id = started.info.run_id
        run.links["mlflow"] = {"run_id": self.run_id, "experiment_id": experiment_id,
                               "tracking_uri": self.uri}
        self._log_params(params_of(run.experiment))
        self._log_dataset(dataset_input(run.experiment, corpus))
        self._artifact(run.directory / "config.toml")

    def _reopen(self, run_id, run):
        """RUNNING again, params and inputs as logged; metrics go on after the last step each
        was logged at (the stopped run may have logged steps past its saved state)."""
        try:
            stored = self.client.get_run(run_id).data.metrics
        except MlflowException as exc:
            raise UserError(f"--resume {run.directory}: its MLflow run {run_id} is not in "
                            f"{self.uri} ({exc.error_code}); resume with the tracking store "
                            "the run started with") from None
        self.run_id = run_id
        self.client.update_run(run_id, status="RUNNING")
        for key in stored:
            last = max(self.client.get_metric_history(run_id, key), key=lambda m: m.step)
            self.logged[key], self.reopened[key] = last, last.step

    def _log_dataset(self, dataset):
        """MLflow inserts a dataset it has not seen; two runs starting together on the same
        data race in that insert (a UNIQUE constraint): the loser links the winner's."""
        try:
            self.client.log_inputs(self.run_id, datasets=[dataset])
        except MlflowException as exc:
            if "UNIQUE constraint" not in str(exc) and "IntegrityError" not in str(exc):
                raise
            self.client.log_inputs(self.run_id, datasets=[dataset])

    @hookimpl
    def step_ended(self, run, step, metrics):
        self._log_metrics(metrics, step, send=False)

    @hookimpl
    def epoch_ended(self, run, epoch, metrics):
        self._log_metrics(metrics, epoch)

    @hookimpl
    def evaluated(self, run, split, metrics, artifacts):
        """Final scores of the best checkpoint as ``{split}/{name}``; a key that already
        holds the per-epoch history (``val/...``) gets ``best/`` in front instead, so that
        history keeps one entry per epoch."""
        named = {}
        for key, value in metrics.items():
            name = f"{split}/{key}"
            named[f"best/{name}" if name in self.logged else name] = value
        named.update(criterion_metrics(split, (artifacts or {}).get("per_criterion")))
        self._log_metrics(named, run.epoch)
        for path in (artifacts or {}).values():
            self._artifact(Path(path))

    @hookimpl
    def run_finished(self, run, status, error):
        """Whatever was logged stays; the status says how the run ended (Ctrl-C, SIGTERM:
        KILLED). The epochs' history is logged however the run ended."""
        if self.run_id is None:  # run_started failed before the MLflow run existed
            return
        try:
            self._flush()
            scores, measured = final_metrics(run.metrics, self.logged)
            self._log_metrics(scores, run.epoch)
            for key, value in measured.items():  # after its history: the latest value
                self._log_metrics({key: value}, self.logged[key].step)
            self._log_telemetry(run.telemetry)
            if error is not None:
                self.client.set_tag(self.run_id, "cm.error",
                                    f"{type(error).__name__}: {error}"[:MAX_TAG_VAL_LENGTH])
            self._artifact(run.directory / "history.json")
            if status == "FINISHED":
                self._artifact(run.directory / "metrics.json")
                if self.options.log_checkpoint:
                    self._artifact(run.directory / "checkpoint")
        finally:
            final = status if status in STATUSES else "FAILED"
            self.client.set_terminated(self.run_id, status=final)

    def experiment_id(self) -> str:
        """The MLflow experiment runs go to (the options' name, else the cm experiment's),
        created when missing."""
        name = self.options.experiment_name or self.experiment.name
        found = self.client.get_experiment_by_name(name)
        if found is None:
            location = self.options.artifact_location or default_artifact_location(self.uri)
            try:
                return self.client.create_experiment(name, artifact_location=location)
            except MlflowException:  # created meanwhile by a parallel run
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise
        if found.lifecycle_stage == "deleted":
            raise UserError(f"MLflow experiment {name!r} is deleted at {self.uri}; restore it "
                            "or set [tracking.mlflow] experiment_name")
        return found.experiment_id

    def _log_params(self, params: dict):
        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[i:i + MAX_PARAMS_TAGS_PER_BATCH])

    def _log_metrics(self, metrics: dict, step: int, send=True):
        stamp = int(time.time() * 1000)
        items = [Metric(k, float(v), stamp, int(step)) for k, v in loggable(metrics).items()
                 if int(step) > self.reopened.get(k, -math.inf)]
        self.pending.extend(items)
        self.logged.update((m.key, m) for m in items)
        due = self.flushed_at is None or self.clock() - self.flushed_at >= FLUSH_SECONDS
        if send or due or len(self.pending) >= MAX_METRICS_PER_BATCH:
            self._flush()

    def _flush(self):
        items, self.pending = self.pending, []
        self.flushed_at = self.clock()
        for i in range(0, len(items), MAX_METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=items[i:i + MAX_METRICS_PER_BATCH])

    def _log_telemetry(self, telemetry):
        """Which optimizations ran and why others were skipped: a JSON artifact plus one
        ``cm.optimization.<name>`` tag each, so runs can be filtered by them."""
        if not telemetry:
            return
        rows = [attrs.asdict(row) for row in telemetry]
        self.client.log_dict(self.run_id, rows, "optimizations.json")
        for row in rows:
            self.client.set_tag(self.run_id, f"cm.optimization.{row['name']}", row["status"])

    def _artifact(self, path: Path):
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path=path.name)
        elif path.is_file():
            self.client.log_artifact(self.run_id, str(path))


def final_metrics(metrics: dict, logged: dict) -> tuple[dict, dict]:
    """The run's metrics not yet logged (``logged``: key -> last Metric) with their value,
    as (scores, measurements). A validation score whose per-epoch history (``val_tuned/...``)
    ended on another value gets ``best/`` in front, as in ``evaluated``: the history keeps one
    entry per epoch and the best checkpoint's value is logged too. A measurement logged per
    step (``train/samples_per_s``: the running rate) keeps its name: the run's figure goes
    on its history, as its latest value."""
    last = {key: metric.value for key, metric in logged.items()}
    scores, measured = {}, {}
    for key, value in loggable(metrics).items():
        if key not in last:
            scores[key] = value
        elif last[key] == float(value):
            continue
        elif not key.startswith("val"):
            measured[key] = value
        elif last.get(f"best/{key}") != float(value):
            scores[f"best/{key}"] = value
    return scores, measured


def loggable(metrics: dict) -> dict:
    """Only finite numbers (bools, nested values, strings and NaN/inf are left out)."""
    return {k: v for k, v in (metrics or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def criterion_metrics(split, table) -> dict:
    """The per-criterion table (at the tuned threshold) as ``{split}_tuned/A.1/f1``, ...,
    so criteria can be compared across runs in the MLflow UI, not only read in the CSV."""
    if table is None:
        return {}
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {f"{split}_tuned/{row['criterion']}/{column}": float(row[column])
            for row in rows for column in ("precision", "recall", "f1", "support")}


def params_of(experiment) -> dict:
    """The resolved config, flattened; tracker tables are left out (URIs may hold secrets)."""
    flat = flatten(to_dict(experiment))
    return {k: str(v)[:MAX_PARAM_VAL_LENGTH] for k, v in flat.items()
            if not k.startswith("tracking.")}


def default_artifact_location(uri: str) -> str | None:
    """``mlruns/`` beside a sqlite database; other stores choose for themselves."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///"))
    return (database.parent / "mlruns").resolve().as_uri()


def clip(tags: dict) -> dict:
    return {k: str(v)[:MAX_TAG_VAL_LENGTH] for k, v in tags.items()}


def run_tags(run) -> dict:
    tags = {"mlflow.user": getpass.getuser(), "mlflow.source.type": "LOCAL",
            "mlflow.source.name": "cm", "cm.experiment": run.experiment.name,
            "cm.output_dir": str(run.directory), "cm.device": run.device,
            "cm.device_name": device_name(run.device)}
    tags.update(git_tags())
    tags.update({f"cm.version.{name}": version for name, version in versions().items()})
    return tags


def parent_tags(run) -> dict:
    """A member of a group (seeds, folds) is nested under the group's run, as a sweep's
    trials are under the study's: the same ``mlflow.parentRunId`` tag."""
    parent = run.parent.links.get("mlflow") if run.parent is not None else None
    if parent is None:
        return {}
    return {"mlflow.parentRunId": parent["run_id"], "cm.group_member": run.directory.name}


def git_tags() -> dict:
    """Commit and dirty flag of the code that ran (cm.lineage.code_state). MLflow cannot find
    it by itself: it looks beside ``sys.argv[0]``, and the ``cm`` console script lives in the
    venv."""
    state = code_state()
    if state["commit"] is None:
        return {}
    return {"mlflow.source.git.commit": state["commit"],
            "cm.git_dirty": str(state["dirty"]).lower()}


def load_corpus(experiment):
    """The experiment's dataset, loaded for its digests (``cm replay`` compares them with the
    logged ones before it runs anything)."""
    from cm.registry import get_registry

    return get_registry().build(experiment.data.dataset)


def dataset_tags(experiment, corpus) -> dict:
    """SHA-256 per dataset file: what replay checks before retraining."""
    tags = {"cm.dataset": experiment.data.dataset.name}
    for name, digest in corpus.digests.items():
        tags[f"{DIGEST_TAG}{safe_key(name)}"] = digest
    return tags


def dataset_digest(digests: dict) -> str:
    """One digest for the whole dataset: SHA-256 over its files' names and digests."""
    lines = "".join(f"{name}:{digests[name]}\n" for name in sorted(digests))
    return hashlib.sha256(lines.encode()).hexdigest()[:MAX_DATASET_DIGEST_SIZE]


def dataset_input(experiment, corpus) -> DatasetInput:
    """The dataset as an MLflow dataset input: metadata only (name, where it came from, its
    digest, sizes), never the posts themselves."""
    spec = experiment.data.dataset
    source = CodeDatasetSource({"cm.dataset": spec.name,
                                **flatten(to_dict(spec.options) or {}),
                                "posts": len(corpus.posts),
                                "annotations": len(corpus.annotations),
                                "criteria": len(corpus.criteria)})
    dataset = MetaDataset(source, name=spec.name, digest=dataset_digest(corpus.digests))
    return DatasetInput(Dataset(**dataset.to_dict()),
                        tags=[InputTag(MLFLOW_DATASET_CONTEXT, "training")])


def safe_key(name: str) -> str:
    return re.sub(r"[^\w\-. /]", "_", name)

