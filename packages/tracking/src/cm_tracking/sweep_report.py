"""The end of a sweep: the best trial's config as a runnable TOML, optimization-history and
param-importance plots, and a summary (best against the baseline trial, in points), written
to the sweep's directory and logged on the study's MLflow parent run."""

import json
import warnings
from collections import Counter

from optuna.trial import TrialState

from cm.config import decode, dumps, set_keys
from cm.registry import get_registry
from cm_tracking.sweep_space import config_values


def finish_sweep(sweep) -> dict:
    study, directory = sweep.study, sweep.directory
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    baseline = next((t for t in complete if t.user_attrs.get("cm.baseline")), None)
    best = study.best_trial if complete else None
    summary = {
        "study": study.study_name, "metric": sweep.metric,
        "direction": sweep.hpo.direction, "mlflow_parent_run_id": sweep.parent_id,
        "states": dict(Counter(t.state.name for t in trials)),
        "baseline": trial_summary(baseline), "best": trial_summary(best),
        "delta_pp": None if best is None or baseline is None
        else (best.value - baseline.value) * 100,
        "trials": [trial_summary(t) for t in trials],
    }
    if best is not None:
        best_toml = directory / "best.toml"
        best_toml.write_text(best_config(sweep, best))
        summary["best_config"] = str(best_toml)
    summary["plots"], summary["plots_skipped"] = write_plots(study, directory, len(complete))
    (directory / "summary.json").write_text(json.dumps(summary, indent=2))
    log_summary(sweep, summary, best)
    sweep.console.print(summary_line(summary))
    return summary


def trial_summary(trial) -> dict | None:
    if trial is None:
        return None
    return {"number": trial.number, "state": trial.state.name, "value": trial.value,
            "params": trial.params, "mlflow_run_id": trial.user_attrs.get("mlflow_run_id"),
            "baseline": bool(trial.user_attrs.get("cm.baseline"))}


def best_config(sweep, best) -> str:
    """The base experiment with the best trial's values, without [hpo]: ``cm run`` it."""
    experiment = decode(set_keys(sweep.raw, config_values(best.params, sweep.hpo.space)),
                        source=sweep.source, registry=get_registry())
    return (f"# best trial {best.number} of study {sweep.study.study_name}: "
            f"{sweep.metric} = {best.value:.6g}\n" + dumps(experiment))


def write_plots(study, directory, complete: int):
    """PNG paths written, and the plots left out with the reason."""
    if not complete:
        return [], {"all": "no complete trial"}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import (
        plot_optimization_history,
        plot_param_importances,
    )

    written, skipped = [], {}
    plots = {"optimization_history": plot_optimization_history,
             "param_importances": plot_param_importances}
    for name, plot in plots.items():
        if name == "param_importances" and complete < 2:
            skipped[name] = "needs at least 2 complete trials"
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            try:
                axes = plot(study)
            except (ValueError, RuntimeError) as exc:  # e.g. no parameter varied
                skipped[name] = str(exc)
                continue
        path = directory / f"{name}.png"
        axes.figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(axes.figure)
        written.append(str(path))
    return written, skipped


def log_summary(sweep, summary, best) -> None:
    client, run_id = sweep.tracker.client, sweep.parent_id
    values = {"sweep/trials": len(summary["trials"]),
              **{f"sweep/{state.lower()}": n for state, n in summary["states"].items()}}
    if best is not None:
        values["sweep/best"] = best.value
        client.set_tag(run_id, "cm.best_trial", str(best.number))
        client.set_tag(run_id, "cm.best_run_id", str(best.user_attrs.get("mlflow_run_id")))
    if summary["baseline"] is not None:
        values["sweep/baseline"] = summary["baseline"]["value"]
    if summary["delta_pp"] is not None:
        values["sweep/delta_pp"] = summary["delta_pp"]
    for key, value in values.items():
        client.log_metric(run_id, key, value)
    for path in ["summary.json", "best.toml", *[p.rsplit("/", 1)[-1] for p in summary["plots"]]]:
        if (sweep.directory / path).is_file():
            client.log_artifact(run_id, str(sweep.directory / path))
    client.set_terminated(run_id, status="FINISHED")


def summary_line(summary) -> str:
    states = ", ".join(f"{n} {state.lower()}" for state, n in sorted(summary["states"].items()))
    best, baseline = summary["best"], summary["baseline"]
    if best is None:
        return f"study {summary['study']}: {states}; no complete trial"
    text = (f"study {summary['study']}: {states}; best trial {best['number']} "
            f"{summary['metric']} {best['value']:.4f}")
    if baseline is not None:
        text += (f" vs baseline (trial {baseline['number']}) {baseline['value']:.4f}: "
                 f"{summary['delta_pp']:+.2f} pp")
    if "best_config" in summary:
        text += f"\nbest config: {summary['best_config']} (cm run it)"
    return text
