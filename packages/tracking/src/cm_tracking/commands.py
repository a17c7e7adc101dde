"""The commands cm-tracking adds to ``cm`` through the ``register_commands`` hook: ``cm
sweep``, ``cm replay``, ``cm predict --run-id`` and run ids for ``cm compare``. Optuna and
MLflow are imported only when one of them runs (they take seconds to import)."""

import functools
import tempfile
from pathlib import Path

import click

from cm.cli.params import experiment_argument


@click.command()
@experiment_argument
@click.option("--storage", metavar="URL",
              help="Optuna RDB storage: sqlite:///x.db or postgresql://user:pw@host/db "
                   "(default: sqlite:///<output_dir>/optuna.db).")
@click.option("--study-name", help="Resume or join this study (default: a new study named "
                                   "<name>-<timestamp>).")
@click.option("-v", "--verbose", is_flag=True, help="Show each trial's training output.")
def sweep(experiment_file, overrides, storage, study_name, verbose):
    """Run an Optuna study over the search space in EXPERIMENT_FILE's [hpo] table: the
    baseline first, then TPE-sampled trials pruned on per-epoch validation; each trial is an
    MLflow run nested under the study's run; the best config is written as a TOML."""
    from cm_tracking.sweep import run_sweep

    run_sweep(experiment_file, overrides, storage=storage, study_name=study_name,
              verbose=verbose)


TRACKING_URI_HELP = ("MLflow store holding the run (default: $MLFLOW_TRACKING_URI, else "
                     "sqlite:///mlflow.db).")


@click.command()
@click.option("--run-id", required=True, help="MLflow run id to replay.")
@click.option("--eval-only", is_flag=True, help="Re-evaluate the logged checkpoint.")
@click.option("--allow-data-change", is_flag=True, help="Replay even if the data changed.")
@click.option("--tolerance", type=float, default=0.5, show_default=True,
              help="Largest accepted |delta| of the test 9-criterion macro-F1, in "
                   "percentage points.")
@click.option("--tracking-uri", help=TRACKING_URI_HELP)
def replay(run_id, eval_only, allow_data_change, tolerance, tracking_uri):
    """Re-run a logged run from its stored config and compare metrics; exit 1 when the test
    9-criterion macro-F1 delta is beyond the tolerance."""
    from cm_tracking.replay import replay as run_replay

    outcome = run_replay(run_id, uri=tracking_uri, eval_only=eval_only,
                         allow_data_change=allow_data_change, tolerance_pp=tolerance)
    raise SystemExit(0 if outcome.within else 1)



def add_run_id(predict: click.Command) -> None:
    """``cm predict --run-id ID [--tracking-uri URI]``: score with the checkpoint an MLflow
    run logged (``log_checkpoint = true``), downloaded for the command's duration."""
    if any(param.name == "run_id" for param in predict.params):
        return  # added already
    predict.params += [
        click.Option(["--run-id"], help="Or: the MLflow run whose logged checkpoint to use "
                                        "(runs tracked with log_checkpoint = true)."),
        click.Option(["--tracking-uri"], help=TRACKING_URI_HELP)]
    score = predict.callback

    @functools.wraps(score)
    def callback(run_id, tracking_uri, **kwargs):
        if (run_id is None) == (kwargs["model_dir"] is None):
            raise click.UsageError("give exactly one of --model DIR or --run-id ID")
        if run_id is None:
            return score(**kwargs)
        from cm_tracking.replay import logged_checkpoint

        with tempfile.TemporaryDirectory(prefix="cm-predict-") as scratch:
            kwargs["model_dir"] = logged_checkpoint(run_id, tracking_uri, Path(scratch))
            return score(**kwargs)

    predict.callback = callback


def add_run_ids(compare: click.Command) -> None:
    """``cm compare`` also takes MLflow run ids (``--tracking-uri URI``): a run given by id
    has its logged test predictions downloaded for the command's duration."""
    if any(param.name == "tracking_uri" for param in compare.params):
        return  # added already
    compare.params.append(click.Option(["--tracking-uri"], help=TRACKING_URI_HELP))
    score = compare.callback

    @functools.wraps(score)
    def callback(run_a, run_b, tracking_uri, **kwargs):
        from cm_tracking.replay import logged_predictions

        with tempfile.TemporaryDirectory(prefix="cm-compare-") as scratch:
            runs = [run if Path(run).is_dir() else
                    str(logged_predictions(run, tracking_uri, Path(scratch) / name))
                    for name, run in (("a", run_a), ("b", run_b))]
            return score(*runs, **kwargs)

    compare.callback = callback


def register(cli: click.Group) -> None:
    cli.add_command(sweep)
    cli.add_command(replay)
    if "predict" in cli.commands:
        add_run_id(cli.commands["predict"])
    if "compare" in cli.commands:
        add_run_ids(cli.commands["compare"])
