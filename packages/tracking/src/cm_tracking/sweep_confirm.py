"""A sweep's gain confirmed on test: the best trial's config and the baseline's, each run
again over ``hpo.confirm_seeds`` fresh seeds (the experiment's seed + 1, + 2, ...), then the
gain (best - baseline) on val and test, paired over posts and seeds (``cm.evaluate.
paired_seeds``), read from the runs' prediction files. The search picked the best trial on
one seed's val score, so its search delta is biased upwards; these runs were not selected.

One worker confirms: the one that finds no trial of the study still running after its own
search, and takes the study's confirmation claim for this best trial. The result is kept on
the study (user attribute), so a later worker or a resume that finds the same best trial
reports it without running it again."""

import json

from rich.markup import escape

from cm.evaluate.paired_seeds import paired_over_seeds
from cm_tracking.sweep_runs import train, trial_experiment
from cm_tracking.sweep_space import config_values

CONFIRMED = "cm.confirmation"  # study user attribute: the last confirmation, as JSON
HEADLINE = "post_macro_f1"


def confirmation(sweep, budget, best, baseline, running: int) -> dict:
    """The confirmation of ``best`` against ``baseline``: run now, or kept from an earlier
    worker, or a reason why there is none."""
    seeds = sweep.hpo.confirm_seeds
    reason = skipped(seeds, best, baseline, running)
    if reason:
        return {"skipped": reason}
    kept = json.loads(sweep.study.user_attrs.get(CONFIRMED, "null"))
    if kept and kept["best_trial"] == best.number and kept["seeds"] == seeds_of(sweep):
        return kept
    claim = -1 - best.number
    if not budget.hold(claim):
        return {"skipped": "another worker is confirming this best trial"}
    try:
        result = run_confirmation(sweep, best, baseline)
    except BaseException:
        budget.release(claim)  # a resume confirms it again
        raise
    sweep.study.set_user_attr(CONFIRMED, json.dumps(result))
    return result


def skipped(seeds: int, best, baseline, running: int) -> str | None:
    if seeds == 0:
        return "hpo.confirm_seeds = 0"
    if best is None or baseline is None:
        return "no complete best and baseline trials to confirm"
    if best.number == baseline.number:
        return "the baseline is the best trial"
    if running:
        return (f"{running} trial(s) of other workers still running: the last worker to "
                "finish confirms")
    return None


def seeds_of(sweep) -> list[int]:
    return [sweep.experiment.seed + i for i in range(1, sweep.hpo.confirm_seeds + 1)]


def score_name(sweep) -> str:
    """The score confirmed: the objective's own (its name after ``val_tuned/`` or ``val/``)
    where predictions give it, else the 9-criterion macro-F1."""
    name = sweep.metric.split("/", 1)[1]
    return name if name in ("post_macro_f1", "post_micro_f1", "macro_f1", "f1") \
        or name.endswith("/f1") else HEADLINE


def run_confirmation(sweep, best, baseline) -> dict:
    space = sweep.hpo.space
    roles = {"best": config_values(best.params, space),
             "baseline": config_values(baseline.params, space)}
    runs = []
    for seed in seeds_of(sweep):
        runs.append(tuple(confirmation_run(sweep, role, values, seed)
                          for role, values in roles.items()))
    name = score_name(sweep)
    result = {"best_trial": best.number, "baseline_trial": baseline.number,
              "seeds": seeds_of(sweep), "score": name,
              "runs": [{"seed": seed, "best": str(a), "baseline": str(b)}
                       for seed, (a, b) in zip(seeds_of(sweep), runs, strict=True)]}
    for split in ("test", "val"):
        row = paired_over_seeds(runs, split, seed=sweep.experiment.seed)[name]
        result[split] = {key: points(row[key]) for key in
                         ("difference", "low", "high", "a", "b", "per_seed")}
    return result


def points(value):
    """A score (or a list of them) in percentage points."""
    return [v * 100 for v in value] if isinstance(value, list) else value * 100


def confirmation_run(sweep, role: str, values: dict, seed: int):
    """One confirmation run (``role`` best or baseline at ``seed``): its run directory."""
    name = f"confirm-{role}-seed-{seed}"
    tags = {"mlflow.parentRunId": sweep.parent_id, "optuna.study_name": sweep.study.study_name,
            "cm.confirmation": role, "cm.confirmation_seed": str(seed)}
    experiment = trial_experiment(sweep, {**values, "seed": seed}, name, tags)
    run = train(sweep, experiment, name, values)
    sweep.tracker.client.set_tag(run.links["mlflow"]["run_id"], "mlflow.runName", name)
    sweep.console.print(f"{escape(name)}: {sweep.metric} "
                        f"{run.metrics.get(sweep.metric, float('nan')):.4f}")
    return run.directory
