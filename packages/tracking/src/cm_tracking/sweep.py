"""``cm sweep``: an Optuna study over an experiment's ``[hpo.space]``.

Each trial is the base experiment with the sampled values set at their keys, trained by
``run_experiment``; a hook plugin reports the validation metric per epoch and prunes.
MLflow: one parent run per study, a nested run per trial (the mlflow tracker, tagged with
the parent's id), cross-referenced by the trial's ``mlflow_run_id`` user attribute and the
run's ``cm.trial_number`` tag. Storage: any Optuna RDB URL (sqlite by default,
PostgreSQL for many workers); a study created once is resumed or joined by its name."""

import json
import os
import shlex
import socket
import time
import warnings
from pathlib import Path

import attrs
import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.markup import escape

from cm import signals, terminal
from cm.cli.plugin_checks import warn_replaced
from cm.config import decode, load_raw
from cm.errors import JobFailed, UserError, interruption
from cm.hookspecs import hookimpl
from cm.preflight import preflight
from cm.registry import get_registry
from cm.secrets import hide_passwords
from cm_tracking.busy import end_run
from cm_tracking.mlflow_tracker import MlflowOptions, MlflowTracker, clip
from cm_tracking.options import TRIAL_TAGS
from cm_tracking.sweep_budget import Budget
from cm_tracking.sweep_join import check_same_config
from cm_tracking.sweep_report import finish_sweep
from cm_tracking.sweep_resume import continue_stopped, enqueue_stopped
from cm_tracking.sweep_runs import train, trial_experiment
from cm_tracking.sweep_space import baseline_params, suggest
from cm_tracking.sweep_study import open_study, parent_run

STATES = {TrialState.COMPLETE: "COMPLETE", TrialState.PRUNED: "PRUNED",
          TrialState.FAIL: "FAIL"}


@attrs.define
class Sweep:
    """Everything a trial needs: the base config (raw and decoded), the study, MLflow."""

    source: str
    raw: dict  # the base config without its [hpo] table
    experiment: object  # decoded, [hpo] included
    study: optuna.Study
    tracker: MlflowTracker  # its client and experiment, for the parent and failed runs
    sampler_args: dict  # this worker's TPE arguments and the Optuna version
    parent_id: str
    directory: Path
    console: Console
    trial_console: Console

    @property
    def hpo(self):
        return self.experiment.hpo

    @property
    def metric(self):
        """The objective: hpo.metric, else val_tuned/<train.selection_metric>."""
        return self.experiment.sweep_metric


def run_sweep(path, overrides=(), storage=None, study_name=None, console=None,
              verbose=False) -> dict:
    """Run this process's share of the study; returns the study summary."""
    # ERROR: Optuna logs a failed or interrupted trial's traceback as a warning; cm prints
    # one line per trial with its error instead.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5; we rely on it
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _run_sweep(path, overrides, storage, study_name, console, verbose)


def _run_sweep(path, overrides, storage, study_name, console, verbose):
    console = console or terminal.console()
    registry = get_registry()
    raw = load_raw(path, overrides)
    experiment = decode(raw, source=str(path), registry=registry)
    warn_replaced(experiment, registry)
    if experiment.hpo is None or not experiment.hpo.space:
        raise UserError(f"{path}: no [hpo.space] table: add one search dimension, e.g. "
                        '[hpo.space."train.lr"] type = "float", low = 1e-5, high = 1e-4')
    base = {k: v for k, v in raw.items() if k != "hpo"}
    preflight(experiment, registry)
    mlflow = experiment.tracking.get("mlflow")
    tracker = MlflowTracker(mlflow.options if mlflow else MlflowOptions(), experiment)
    storage = storage or default_storage(experiment)
    study, new, sampler_args = open_study(storage, study_name or default_study_name(experiment),
                                          experiment, tracker)
    if not new:
        check_same_config(study, experiment, str(path))
    budget = Budget.of(storage, study.study_name, experiment.hpo.trials, new, worker_id())
    if budget.left():  # a continuation or a baseline is a trial: it needs a slot
        enqueue_stopped(study)  # first: a continued baseline is not enqueued anew
    if new or (baseline_unfinished(study) and budget.left()):
        study.enqueue_trial(baseline_params(experiment, experiment.hpo.space),
                            user_attrs={"cm.baseline": True})
    directory = Path(experiment.output_dir).resolve() / experiment.name / "sweeps" / \
        study.study_name
    directory.mkdir(parents=True, exist_ok=True)
    shown, parent_id = hide_passwords(storage), None
    try:
        with signals.deferred():  # the parent run is made whole, then a signal stops it
            parent_id = parent_run(study, new, experiment, tracker, storage, sampler_args)
        sweep = Sweep(str(path), base, experiment, study, tracker, sampler_args, parent_id,
                      directory, console, console if verbose else Console(quiet=True))
        console.print(f"study [bold]{study.study_name}[/bold] at {shown} "
                      f"({'new' if new else f'{len(study.trials)} trials so far'}); MLflow "
                      f"parent run {parent_id} at {hide_passwords(tracker.uri)}; "
                      f"{budget.left()} of the study's {sweep.hpo.trials} trials left"
                      + (f", this worker stops after {sweep.hpo.timeout_s:g} s"
                         if sweep.hpo.timeout_s else ""))
        optimize(sweep, budget)
        optuna.storages.fail_stale_trials(study)
        summary = finish_sweep(sweep, budget)
    except BaseException as exc:
        # a signal, or the error of a storage write it cut short: the sweep stops
        stopped = signals.pending() or (exc if isinstance(exc, KeyboardInterrupt) else None)
        if stopped is None:
            raise
        if parent_id is not None:
            with signals.deferred():
                end_run(tracker.client, parent_id, "KILLED", hide_passwords(tracker.uri))
        stopped = interruption(stopped)
        raise type(stopped)(f"{stopped}; resume with: "
                            f"{resume_command(path, overrides, storage, study)}") from None
    if summary["best"] is None:
        raise JobFailed(f"no trial of study {study.study_name} completed ({summary['states']}); "
                        f"each trial's error is in its line above and in the cm.error tag of "
                        f"its MLflow run; fix the experiment and run a new sweep")
    return summary


def optimize(sweep: Sweep, budget: Budget) -> None:
    """Trials one at a time, each in a slot of the study-wide budget claimed before Optuna
    creates it, until the budget is spent or this worker's ``hpo.timeout_s`` has passed."""
    started = time.monotonic()
    timeout = sweep.hpo.timeout_s
    while (timeout is None or time.monotonic() - started < timeout) and budget.claim():
        sweep.study.optimize(lambda trial: objective(sweep, trial), n_trials=1,
                             catch=(Exception,),
                             callbacks=[lambda s, t: trial_ended(sweep, t)])


def resume_command(path, overrides, storage: str, study) -> str:
    """The command that resumes ``study``: the same file and every --set, quoted for a shell."""
    sets = "".join(f" --set {shlex.quote(item)}" for item in overrides)
    shown = shlex.quote(hide_passwords(storage))
    return (f"cm sweep {shlex.quote(str(path))}{sets} --storage {shown} "
            f"--study-name {shlex.quote(study.study_name)}")


def baseline_unfinished(study) -> bool:
    """The baseline trial (trial 0 of a new study) was enqueued but never ran to the end,
    e.g. Ctrl-C stopped it: resuming the study enqueues it again, so the summary can compare
    with it. A study without one is not resumed but joined while its creator enqueues it."""
    baselines = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("cm.baseline")]
    settled = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING, TrialState.RUNNING)
    return bool(baselines) and not any(t.state in settled for t in baselines)


def default_storage(experiment) -> str:
    database = Path(experiment.output_dir).resolve() / "optuna.db"
    database.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{database}"


def default_study_name(experiment) -> str:
    return f"{experiment.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def objective(sweep: Sweep, trial: optuna.Trial) -> float:
    baseline = trial.user_attrs.get("cm.baseline", False)
    fixed = baseline_params(sweep.experiment, sweep.hpo.space) if baseline else None
    values = {key: suggest(trial, key, param) for key, param in sweep.hpo.space.items()
              if fixed is None or key in fixed}
    trial.set_user_attr("cm.worker", worker_id())
    tags = dict(zip(TRIAL_TAGS, (sweep.parent_id, str(trial.number), sweep.study.study_name,
                                 json.dumps(sweep.sampler_args)), strict=True))
    try:
        experiment = trial_experiment(sweep, values, f"trial-{trial.number}", tags)
    except UserError as exc:  # a combination of values the config rejects
        trial.set_user_attr("cm.error", str(exc))
        failed_run(sweep, trial, tags, exc)
        raise
    experiment, resume = continue_stopped(trial, sweep.metric, experiment)
    hooks = TrialHooks(trial, sweep)
    try:
        run = train(sweep, experiment, f"trial {trial.number}", values, [hooks], resume)
    except optuna.TrialPruned:
        hooks.mark("PRUNED", status="KILLED")
        raise
    except KeyboardInterrupt:  # the run ended KILLED; the sweep stops
        with signals.deferred():
            trial.set_user_attr("cm.error", "interrupted")
            hooks.mark("INTERRUPTED")
        raise
    except BaseException as exc:
        trial.set_user_attr("cm.error", f"{type(exc).__name__}: {exc}"[:500])
        hooks.mark("FAIL")
        raise
    if sweep.metric not in run.metrics:
        known = ", ".join(sorted(k for k in run.metrics if k.startswith("val")))
        error = f"hpo.metric {sweep.metric!r} is not a metric of the run; use one of: {known}"
        trial.set_user_attr("cm.error", error)
        hooks.mark("FAIL", status="FAILED")
        raise UserError(f"{sweep.source}: {error}")
    hooks.mark("COMPLETE")
    return run.metrics[sweep.metric]


def failed_run(sweep, trial, tags, error):
    """A trial that never started training still gets its (failed) nested run."""
    client = sweep.tracker.client
    created = client.create_run(sweep.tracker.experiment_id(), run_name=f"trial-{trial.number}",
                                tags=clip({**tags, "cm.trial_state": "FAIL",
                                           "cm.error": f"{type(error).__name__}: {error}"}))
    trial.set_user_attr("mlflow_run_id", created.info.run_id)
    client.set_terminated(created.info.run_id, status="FAILED")


class TrialHooks:
    """One trial's listener: links its MLflow run, reports the metric per epoch and
    prunes. ``trylast`` so the tracker has logged the event (and published its run id on
    ``run.links``) before this one reads it or a prune stops the run."""

    def __init__(self, trial, sweep):
        self.trial, self.sweep = trial, sweep
        self.run_id = None

    @hookimpl(trylast=True)
    def run_started(self, run):
        self.run_id = run.links["mlflow"]["run_id"]
        self.trial.set_user_attr("mlflow_run_id", self.run_id)
        self.trial.set_user_attr("cm.run_directory", str(run.directory))
        self.sweep.tracker.client.set_tag(self.run_id, "mlflow.runName",
                                          f"trial-{self.trial.number}")

    @hookimpl(trylast=True)
    def epoch_ended(self, run, epoch, metrics):
        metric = self.sweep.metric
        if metric not in metrics:
            return
        self.trial.report(metrics[metric], epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"epoch {epoch}: {metric} {metrics[metric]:.4f} is below "
                                     "the median of earlier trials at this epoch")

    def mark(self, state, status=None):
        """Tag the nested run with the trial's state; a pruned run ends KILLED (the engine
        reported FAILED: the pruner's exception went through it)."""
        if self.run_id is None:
            return
        client = self.sweep.tracker.client
        client.set_tag(self.run_id, "cm.trial_state", state)
        if status:
            client.set_terminated(self.run_id, status=status)


def trial_ended(sweep: Sweep, trial) -> None:
    """Print the trial's line, then stop the sweep if a signal came during the trial and
    Python swallowed its exception (a safe point of cm.signals)."""
    print_trial(sweep, trial)
    signals.check()


def print_trial(sweep: Sweep, trial) -> None:
    state = STATES.get(trial.state, trial.state.name)
    value = "" if trial.value is None else f" {sweep.metric} {trial.value:.4f}"
    seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() \
        if trial.datetime_complete and trial.datetime_start else 0.0
    try:
        best = sweep.study.best_trial
        best_text = f"; best {best.value:.4f} (trial {best.number})"
    except ValueError:
        best_text = ""
    params = escape(", ".join(f"{k}={v}" for k, v in trial.params.items()))
    color = {"COMPLETE": "green", "PRUNED": "yellow"}.get(state, "red")
    error = trial.user_attrs.get("cm.error") if state == "FAIL" else None
    sweep.console.print(f"trial {trial.number} [{color}]{state}[/{color}]{value} in "
                        f"{seconds:.1f} s{best_text}  {params}"
                        + (f"\n  error: {escape(' '.join(error.split())[:400])}" if error else ""),
                        soft_wrap=True)  # one line (and one for the error)
