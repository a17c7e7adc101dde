"""Creating, resuming or joining an Optuna study, and the study's MLflow parent run.

The first process to create the study (an atomic insert in the storage) enqueues the
baseline and creates the parent run; processes that find the study already there join it
and wait for the parent's id, so workers started together agree on one parent."""

import json
import os
import time
from importlib.util import find_spec

import optuna
from mlflow.entities import Param
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import MAX_PARAMS_TAGS_PER_BATCH
from optuna.exceptions import DuplicatedStudyError

from cm.environment import versions
from cm.errors import UserError
from cm.secrets import hide_passwords
from cm_tracking.mlflow_tracker import clip, git_tags, params_of
from cm_tracking.options import sqlite_path
from cm_tracking.store import check_sqlite_file
from cm_tracking.sweep_join import CONFIG, study_config

PARENT = "mlflow_parent_run_id"  # study user attribute
PARENT_WAIT_S = 120


def storage_url(url: str) -> str:
    """``postgresql://`` means psycopg (v3) unless psycopg2 is installed."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix) and find_spec("psycopg2") is None:
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def open_storage(url: str, hpo, client) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats: a trial whose worker died is failed (and its MLflow
    run marked FAILED) by the next worker that starts a trial."""
    check_sqlite_file(url, sqlite_path(url), True, "--storage", make=optuna_tables)
    try:
        return optuna.storages.RDBStorage(
            storage_url(url), engine_kwargs=engine_args(url), heartbeat_interval=hpo.heartbeat_s,
            heartbeat_stale_trial_callback=lambda study, trial: fail_run(client, trial))
    except Exception as exc:  # noqa: BLE001 - any driver error: the URL is what to fix
        raise UserError(f"--storage {hide_passwords(url)}: cannot open this Optuna storage "
                        f"({type(exc).__name__}: {exc}); use an RDB URL such as "
                        "sqlite:///sweeps.db or postgresql://user:password@host/db") from None


def optuna_tables(path) -> None:
    """A new sqlite study storage's tables, made in ``path``."""
    optuna.storages.RDBStorage(f"sqlite:///{path}").engine.dispose()


def engine_args(url: str) -> dict:
    """SQLAlchemy engine arguments for the storage at ``url`` (Optuna's and cm's own)."""
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else \
        {"pool_pre_ping": True}


def fail_run(client, trial) -> None:
    run_id = trial.user_attrs.get("mlflow_run_id")
    if run_id:
        client.set_tag(run_id, "cm.trial_state", "FAIL")
        client.set_tag(run_id, "cm.error", "the worker stopped sending heartbeats")
        client.set_terminated(run_id, status="FAILED")


def make_sampler(hpo, seed: int):
    args = {"seed": seed, "n_startup_trials": hpo.startup_trials, "multivariate": True,
            "constant_liar": True}
    return optuna.samplers.TPESampler(**args), {"sampler": "TPESampler", **args,
                                                 "optuna": optuna.__version__}


def make_pruner(hpo):
    if hpo.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(**pruner_args(hpo))


def open_study(url: str, name: str, experiment, tracker):
    """(study, created by this process, sampler arguments). The creator samples from the
    experiment's seed; a joining or resuming process from the seed plus its pid."""
    hpo = experiment.hpo
    storage = open_storage(url, hpo, tracker.client)
    pruner = make_pruner(hpo)
    sampler, args = make_sampler(hpo, experiment.seed)
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction=hpo.direction,
                                    sampler=sampler, pruner=pruner)
        study.set_user_attr(CONFIG, study_config(experiment))
        return study, True, args
    except DuplicatedStudyError:
        pass
    sampler, args = make_sampler(hpo, experiment.seed + os.getpid())
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    if study.direction.name.lower() != hpo.direction:
        raise UserError(f"study {name!r} {study.direction.name.lower()}s; hpo.direction is "
                        f"{hpo.direction!r}: use the study's direction or a new --study-name")
    return study, False, args


def parent_run(study, new: bool, experiment, tracker, url: str, sampler_args: dict) -> str:
    """The study's MLflow parent run id: created with the study, else waited for."""
    client = tracker.client
    if new:
        tags = {"cm.sweep": "true", "optuna.study_name": study.study_name,
                "optuna.storage": hide_passwords(url), "mlflow.source.name": "cm sweep",
                "mlflow.source.type": "LOCAL", "cm.experiment": experiment.name,
                **git_tags(), **{f"cm.version.{k}": v for k, v in versions().items()}}
        created = client.create_run(tracker.experiment_id(), tags=clip(tags),
                                    run_name=f"sweep-{study.study_name}")
        run_id = created.info.run_id
        params = {**params_of(experiment), "optuna.pruner": json.dumps(
                      {"pruner": experiment.hpo.pruner, **pruner_args(experiment.hpo)}),
                  **{f"optuna.{k}": str(v) for k, v in sampler_args.items()}}
        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
            client.log_batch(run_id, params=items[i:i + MAX_PARAMS_TAGS_PER_BATCH])
        study.set_user_attr(PARENT, run_id)
        return run_id
    deadline = time.monotonic() + PARENT_WAIT_S
    while (run_id := study.user_attrs.get(PARENT)) is None:
        if time.monotonic() > deadline:
            raise UserError(f"study {study.study_name!r} has no MLflow parent run after "
                            f"{PARENT_WAIT_S} s (its creator died early?); use a new "
                            "--study-name")
        time.sleep(1)
    try:
        client.update_run(run_id, status="RUNNING")
    except MlflowException as exc:
        raise UserError(f"study {study.study_name!r} logs to MLflow run {run_id}, which "
                        f"{hide_passwords(tracker.uri)} does not have ({exc.message}); point "
                        "[tracking.mlflow] tracking_uri (or MLFLOW_TRACKING_URI) at the "
                        "study's tracking store") from None
    return run_id


def pruner_args(hpo) -> dict:
    """Steps are epochs, counted from 1: the first prunable one is ``n_warmup_steps``."""
    return {"n_startup_trials": hpo.prune_after_trials,
            "n_warmup_steps": hpo.prune_warmup_epochs + 1}
