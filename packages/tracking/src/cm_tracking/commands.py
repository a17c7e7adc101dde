"""The commands cm-tracking adds to ``cm`` through the ``register_commands`` hook: ``cm
sweep`` and ``cm replay`` (MLflow run ids for ``cm predict`` and ``cm compare`` come through
the ``fetch_run`` hook, in plugin.py). Optuna and MLflow are imported only when one of them
runs (they take seconds to import)."""

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
    from cm.cli.plugin_checks import warn_failed_plugins
    from cm.registry import get_registry
    from cm_tracking.sweep import run_sweep

    warn_failed_plugins(get_registry())
    run_sweep(experiment_file, overrides, storage=storage, study_name=study_name,
              verbose=verbose)


TRACKING_URI_HELP = ("MLflow store holding the run (default: $MLFLOW_TRACKING_URI, else "
                     "sqlite:///mlflow.db).")


@click.command()
@click.option("--run-id", required=True, help="MLflow run id to replay.")
@click.option("--eval-only", is_flag=True, help="Re-evaluate the logged checkpoint.")
@click.option("--allow-data-change", is_flag=True, help="Replay even if the data changed.")
@click.option("--tolerance", type=float, default=0.5, show_default=True,
              help="Largest accepted |delta| of the headline test macro-F1 (over the "
                   "run's criteria), in percentage points.")
@click.option("--tracking-uri", help=TRACKING_URI_HELP)
def replay(run_id, eval_only, allow_data_change, tolerance, tracking_uri):
    """Re-run a logged run from its stored config and compare metrics; exit 1 when the
    headline test macro-F1 delta is beyond the tolerance."""
    from cm_tracking.replay import replay as run_replay

    outcome = run_replay(run_id, uri=tracking_uri, eval_only=eval_only,
                         allow_data_change=allow_data_change, tolerance_pp=tolerance)
    raise SystemExit(0 if outcome.within else 1)


def register(cli: click.Group) -> None:
    cli.add_command(sweep)
    cli.add_command(replay)
