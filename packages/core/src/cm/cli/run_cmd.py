"""``cm run`` and ``cm predict``."""

from pathlib import Path

import click

from cm.cli.params import experiment_argument, load
from cm.cli.run_source import fetch, scratch, tracking_uri_option


@click.command()
@experiment_argument(required=False)
@click.option("--dry-run", is_flag=True,
              help="Stop after the one-batch dry run (tokenization, shapes, devices, loss).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Continue the stopped run in this folder from its last saved state, with "
                   "its own config (FILE and --set may only change train.save_every_steps).")
def run(experiment_file, overrides, dry_run, resume_dir):
    """Train and evaluate one model described by EXPERIMENT_FILE.

    Outputs (resolved config, best checkpoint, reports, plots, metrics) go to
    <output_dir>/<name>/<timestamp>/.
    """
    from cm.train.engine import run_experiment

    resume = None
    if resume_dir is not None:
        if dry_run:
            raise click.UsageError("--dry-run and --resume do not go together")
        from cm.registry import get_registry
        from cm.train.resume import open_resume

        experiment, resume = open_resume(resume_dir, experiment_file, overrides,
                                         get_registry())
    elif experiment_file is None:
        raise click.UsageError("give the EXPERIMENT_FILE to run, or --resume RUN_DIR")
    else:
        experiment = load(experiment_file, overrides)
    result = run_experiment(experiment, dry=dry_run, resume=resume)
    click.echo(f"{'dry run' if dry_run else 'run'} {result.status.lower()}: {result.directory}")


@click.command()
@click.argument("posts_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", "model_dir", type=click.Path(file_okay=False, path_type=Path),
              help="A checkpoint/ directory written by cm run.")
@click.option("--run-id", help="Or: a tracked run whose logged checkpoint to use (cm-tracking: "
                                "an MLflow run tracked with log_checkpoint = true).")
@tracking_uri_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here instead of standard output.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
@click.option("--with-text", is_flag=True,
              help="Include the evidence window's text (off by default: outputs carry ids).")
@click.option("--device", default="cpu", show_default=True)
def predict(posts_file, model_dir, run_id, tracking_uri, out, fmt, with_text, device):
    """Score posts (CSV or JSONL with post_id,text) against every criterion: probability,
    decision at the checkpoint's tuned threshold, and for long posts the evidence window."""
    from cm.model.checkpoint import load_checkpoint
    from cm.predict import check_output, read_posts, write_rows
    from cm.predict import predict as run_predict

    if (run_id is None) == (model_dir is None):
        raise click.UsageError("give exactly one of --model DIR or --run-id ID")
    check_output(out)
    posts = read_posts(posts_file)
    with scratch() as into:
        if run_id is not None:
            model_dir = fetch(run_id, "checkpoint", tracking_uri, into)
        rows = run_predict(load_checkpoint(model_dir), posts, device=device,
                           with_text=with_text)
    write_rows(rows, out, fmt)
