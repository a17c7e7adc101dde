"""The end of a sweep: the best trial's config as a runnable TOML, optimization-history and
param-importance plots, and a summary written to the sweep's directory and logged on the
study's MLflow parent run. The summary leads with the gain confirmed on test over seeds
(``sweep_confirm``); the best trial's single-seed val delta against the baseline trial
follows, labelled the search objective."""

import json
import warnings
from collections import Counter

from optuna.trial import TrialState

from cm.config import decode, dumps, set_keys
from cm.registry import get_registry
from cm_tracking.sweep_confirm import confirmation
from cm_tracking.sweep_space import config_values


def finish_sweep(sweep, budget) -> dict:
    study, directory = sweep.study, sweep.directory
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    baseline = next((t for t in complete if t.user_attrs.get("cm.baseline")), None)
    best = study.best_trial if complete else None
    running = sum(t.state == TrialState.RUNNING for t in trials)
    summary = {
        "study": study.study_name,
        "confirmed": confirmation(sweep, budget, best, baseline, running),
        "metric": sweep.metric,
        "direction": sweep.hpo.direction, "mlflow_parent_run_id": sweep.parent_id,
        "states": dict(Counter(t.state.name for t in trials)),
        "baseline": trial_summary(baseline), "best": trial_summary(best),
        "search_objective_delta_pp": None if best is None or baseline is None
        else (best.value - baseline.value) * 100,
        "trials": [trial_summary(t) for t in trials],
    }
    if best is not None:
        best_toml = directory / "best.toml"
        best_toml.write_text(best_config(sweep, best))
        summary["best_config"] = str(best_toml)
    summary["plots"], summary["plots_skipped"] = write_plots(study, directory, len(complete))
    (directory / "summary.json").write_text(json.dumps(summary, indent=2))
    text = summary_text(summary)
    log_summary(sweep, summary, best, text)
    sweep.console.print(text)
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


def log_summary(sweep, summary, best, text: str) -> None:
    """The parent run: the summary as its description (the confirmed gain first), sweep/*
    metrics, the summary, best config and plots as artifacts."""
    client, run_id = sweep.tracker.client, sweep.parent_id
    client.set_tag(run_id, "mlflow.note.content", text)
    values = {**confirmed_metrics(summary["confirmed"]), "sweep/trials": len(summary["trials"]),
              **{f"sweep/{state.lower()}": n for state, n in summary["states"].items()}}
    if best is not None:
        values["sweep/best"] = best.value
        client.set_tag(run_id, "cm.best_trial", str(best.number))
        client.set_tag(run_id, "cm.best_run_id", str(best.user_attrs.get("mlflow_run_id")))
    if summary["baseline"] is not None:
        values["sweep/baseline"] = summary["baseline"]["value"]
    if summary["search_objective_delta_pp"] is not None:
        values["sweep/search_objective_delta_pp"] = summary["search_objective_delta_pp"]
    for key, value in values.items():
        client.log_metric(run_id, key, value)
    for path in ["summary.json", "best.toml", *[p.rsplit("/", 1)[-1] for p in summary["plots"]]]:
        if (sweep.directory / path).is_file():
            client.log_artifact(run_id, str(sweep.directory / path))
    client.set_terminated(run_id, status="FINISHED")


def confirmed_metrics(confirmed: dict) -> dict:
    """sweep/confirmed_{test,val}_gain_pp with _low and _high, when there is a confirmation."""
    if "test" not in confirmed:
        return {}
    return {f"sweep/confirmed_{split}_gain_pp{end}": confirmed[split][key]
            for split in ("test", "val")
            for end, key in (("", "difference"), ("_low", "low"), ("_high", "high"))}


def gain_text(confirmed: dict) -> str:
    """The confirmed gain, test first; or why there is none."""
    if "test" not in confirmed:
        return f"not confirmed on test: {confirmed['skipped']}"
    seeds = ", ".join(map(str, confirmed["seeds"]))
    test, val = confirmed["test"], confirmed["val"]
    return (f"confirmed gain on test: {test['difference']:+.2f} pp "
            f"[{test['low']:+.2f}, {test['high']:+.2f}] ({confirmed['score']}, best trial "
            f"{confirmed['best_trial']} vs baseline over seeds {seeds}, 95% interval over "
            f"posts and seeds{'' if test['low'] > 0 or test['high'] < 0 else ', includes 0'}); "
            f"on val {val['difference']:+.2f} pp [{val['low']:+.2f}, {val['high']:+.2f}]")


def summary_text(summary) -> str:
    states = ", ".join(f"{n} {state.lower()}" for state, n in sorted(summary["states"].items()))
    best, baseline = summary["best"], summary["baseline"]
    if best is None:
        return f"study {summary['study']}: {states}; no complete trial"
    text = (f"study {summary['study']}: {states}\n{gain_text(summary['confirmed'])}\n"
            f"search objective (one seed, val): best trial {best['number']} "
            f"{summary['metric']} {best['value']:.4f}")
    if baseline is not None:
        text += (f" vs baseline (trial {baseline['number']}) {baseline['value']:.4f}: "
                 f"{summary['search_objective_delta_pp']:+.2f} pp")
    if "best_config" in summary:
        text += f"\nbest config: {summary['best_config']} (cm run it)"
    return text
