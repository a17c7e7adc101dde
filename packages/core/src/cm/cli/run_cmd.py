"""``cm run`` and ``cm predict``."""

from pathlib import Path

import click

from cm.cli.params import experiment_argument, load


@click.command()
@experiment_argument
@click.option("--dry-run", is_flag=True,
              help="Stop after the one-batch dry run (tokenization, shapes, devices, loss).")
def run(experiment_file, overrides, dry_run):
    """Train and evaluate one model described by EXPERIMENT_FILE.

    Outputs (resolved config, best checkpoint, reports, plots, metrics) go to
    <output_dir>/<name>/<timestamp>/.
    """
    from cm.preflight import preflight
    from cm.train.engine import run_experiment

    experiment = load(experiment_file, overrides)
    preflight(experiment)
    result = run_experiment(experiment, dry=dry_run)
    click.echo(f"{'dry run' if dry_run else 'run'} {result.status.lower()}: {result.directory}")


@click.command()
@click.argument("posts_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", "model_dir", type=click.Path(file_okay=False, path_type=Path),
              help="A checkpoint/ directory written by cm run.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here instead of standard output.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
@click.option("--with-text", is_flag=True,
              help="Include the evidence window's text (off by default: outputs carry ids).")
@click.option("--device", default="cpu", show_default=True)
def predict(posts_file, model_dir, out, fmt, with_text, device):
    """Score posts (CSV or JSONL with post_id,text) against every criterion: probability,
    decision at the checkpoint's tuned threshold, and for long posts the evidence window."""
    from cm.model.checkpoint import load_checkpoint
    from cm.predict import check_output, read_posts, write_rows
    from cm.predict import predict as run_predict

    if model_dir is None:
        raise click.UsageError("give the checkpoint to score with: --model DIR")
    check_output(out)
    posts = read_posts(posts_file)
    rows = run_predict(load_checkpoint(model_dir), posts, device=device, with_text=with_text)
    write_rows(rows, out, fmt)
