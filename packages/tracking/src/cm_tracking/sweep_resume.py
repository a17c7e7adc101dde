"""A sweep resumed (``cm sweep`` on its study again) continues each trial a stop interrupted
(SIGTERM, Ctrl-C, a crash) from its run's saved state (``cm.train.resume``) instead of
restarting it: the study gets a new trial with the stopped one's values, which runs the
stopped trial's own config in its own folder and MLflow run, with the epochs it had already
validated reported to the pruner again."""

from pathlib import Path

from optuna.trial import TrialState

from cm.registry import get_registry
from cm.train.resume import FOLDER, STATE, open_resume

RESUME_OF = "cm.resume_of"  # a continuing trial's user attribute: the stopped run's folder


def enqueue_stopped(study) -> int:
    """Enqueue a continuation of every failed trial whose run left a state and did not
    finish, once; returns how many."""
    trials = study.get_trials(deepcopy=False)
    continued = {t.user_attrs.get(RESUME_OF) for t in trials}
    stopped = [t for t in trials if t.state == TrialState.FAIL
               and resumable(t.user_attrs.get("cm.run_directory"))
               and t.user_attrs["cm.run_directory"] not in continued]
    for trial in stopped:
        marks = {RESUME_OF: trial.user_attrs["cm.run_directory"]}
        if trial.user_attrs.get("cm.baseline"):
            marks["cm.baseline"] = True
        study.enqueue_trial(trial.params, user_attrs=marks)
    return len(stopped)


def resumable(directory) -> bool:
    return directory is not None and (Path(directory) / FOLDER / STATE).is_file() and \
        not (Path(directory) / "metrics.json").exists()


def continue_stopped(trial, metric, experiment):
    """``(experiment, None)`` for a new trial; for a continuing one the stopped run's own
    experiment and state, after its validated epochs are reported to the pruner again."""
    directory = trial.user_attrs.get(RESUME_OF)
    if directory is None:
        return experiment, None
    experiment, resume = open_resume(Path(directory), None, (), get_registry())
    for row in resume.state["best"]["history"]:
        if metric in row:
            trial.report(row[metric], row["epoch"])
    return experiment, resume
