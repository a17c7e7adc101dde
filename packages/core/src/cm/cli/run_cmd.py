"""``cm run`` and ``cm predict``."""

from pathlib import Path

import click

from cm.cli.options import experiment_argument, load
from cm.errors import UserError


@click.command()
@experiment_argument
@click.option("--dry-run", is_flag=True,
              help="Stop after the one-batch dry run (tokenization, shapes, devices, loss).")
def run(experiment_file, overrides, dry_run):
    """Train and evaluate one model described by EXPERIMENT_FILE.

    Outputs (resolved config, best checkpoint, reports, plots, metrics) go to
    <output_dir>/<name>/<timestamp>/.
    """
    from cm.train.engine import run_experiment

    result = run_experiment(load(experiment_file, overrides), dry=dry_run)
    click.echo(f"{'dry run' if dry_run else 'run'} {result.status.lower()}: {result.directory}")


@click.command()
@click.argument("posts_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", "model_dir", type=click.Path(file_okay=False, path_type=Path),
              help="A checkpoint/ directory written by cm run.")
@click.option("--run-id", help="Or: the MLflow run whose logged checkpoint to use "
                               "(runs tracked with log_checkpoint = true).")
@click.option("--tracking-uri", help="MLflow store holding --run-id (default: "
              "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here instead of standard output.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
@click.option("--with-text", is_flag=True,
              help="Include the evidence window's text (off by default: outputs carry ids).")
@click.option("--device", default="cpu", show_default=True)
def predict(posts_file, model_dir, run_id, tracking_uri, out, fmt, with_text, device):
    """Score posts (CSV or JSONL with post_id,text) against every criterion: probability,
    decision at the checkpoint's tuned threshold, and for long posts the evidence window."""
    import tempfile

    from cm.model.checkpoint import load_checkpoint
    from cm.predict import predict as run_predict
    from cm.predict import read_posts, write_rows

    if (model_dir is None) == (run_id is None):
        raise click.UsageError("give exactly one of --model DIR or --run-id ID")
    with tempfile.TemporaryDirectory(prefix="cm-predict-") as scratch:
        if run_id is not None:
            model_dir = _logged_checkpoint(run_id, tracking_uri, Path(scratch))
        rows = run_predict(load_checkpoint(model_dir), read_posts(posts_file), device=device,
                           with_text=with_text)
    write_rows(rows, out, fmt)


def _logged_checkpoint(run_id, uri, into):
    try:
        from cm_tracking.replay import logged_checkpoint
    except ImportError as exc:
        raise UserError(f"--run-id needs cm-tracking with MLflow ({exc}); install it: "
                        "pip install -e packages/tracking") from None
    return logged_checkpoint(run_id, uri, into)
