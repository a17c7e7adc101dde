"""``cm run`` and ``cm predict``."""

from pathlib import Path

import click

from cm.cli.params import experiment_argument
from cm.cli.plugin_checks import load_checked
from cm.cli.run_source import fetch, scratch, tracking_uri_option


@click.command()
@experiment_argument(required=False)
@click.option("--dry-run", is_flag=True,
              help="Stop after the one-batch dry run (tokenization, shapes, devices, loss); "
                   "of a group, its first run's.")
@click.option("--seeds", type=click.IntRange(1), default=1, show_default=True,
              help="Repeat over N seeds (seed, seed+1, ...; the split stays the seed's): a "
                   "group of runs with their aggregate and ensemble.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Continue the stopped run in this folder from its last saved state, with "
                   "its own config (FILE and --set may only change train.save_every_steps).")
def run(experiment_file, overrides, dry_run, seeds, resume_dir):
    """Train and evaluate one model described by EXPERIMENT_FILE; with --seeds N or
    data.folds = K, a group of them (one per seed and fold).

    Outputs (resolved config, best checkpoint, reports, plots, metrics) go to
    <output_dir>/<name>/<timestamp>/; a group's runs go inside that folder, beside its
    aggregate.json and summary.md.
    """
    from cm.train.engine import run_experiment
    from cm.train.group import is_group, members, run_group

    resume = None
    if resume_dir is not None:
        if dry_run or seeds > 1:
            raise click.UsageError("--resume continues one run: not with --dry-run or --seeds "
                                   "(resume a group's runs one by one, by their folders)")
        from cm.registry import get_registry
        from cm.train.resume import open_resume

        experiment, resume = open_resume(resume_dir, experiment_file, overrides,
                                         get_registry())
    elif experiment_file is None:
        raise click.UsageError("give the EXPERIMENT_FILE to run, or --resume RUN_DIR")
    else:
        experiment = load_checked(experiment_file, overrides)
    if dry_run:
        result = run_experiment(members(experiment, seeds)[0].experiment, dry=True)
    elif resume is None and is_group(experiment, seeds):
        result = run_group(experiment, seeds)
    else:
        result = run_experiment(experiment, resume=resume)
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
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "jsonl"]), default="csv",
              show_default=True)
@click.option("--with-text", is_flag=True,
              help="Include the evidence window's text (off by default: outputs carry ids).")
@click.option("--evidence/--no-evidence", default=True, show_default=True,
              help="The top sentence of each match (a post-level model scores every sentence "
                   "of a matched post again: --no-evidence is faster on many posts).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto",
              show_default=True, help="auto: the CUDA GPU when one is visible, else the CPU.")
@click.option("--batch-size", type=click.IntRange(1),
              help="Pairs per forward pass [default: the run's train.eval_batch_size].")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto",
              show_default=True, help="auto: bf16 on a CUDA GPU that has it, else fp32.")
def predict(posts_file, model_dir, run_id, tracking_uri, out, fmt, with_text, evidence,
            device, batch_size, precision):
    """Score posts (CSV or JSONL with post_id,text) against every criterion: probability,
    decision at the checkpoint's tuned threshold, and for long posts the evidence window.

    The file is checked whole before anything is scored (a bad row is refused, exit 2), then
    streamed: memory stays bounded however many posts it holds. Progress goes to standard
    error, rows to --out or standard output as they are scored.
    """
    from cm.model.checkpoint import load_checkpoint
    from cm.posts_file import count_posts
    from cm.predict import Predictor
    from cm.predict.output import check_output
    from cm.predict.stream import predict_file
    from cm.terminal import console

    if (run_id is None) == (model_dir is None):
        raise click.UsageError("give exactly one of --model DIR or --run-id ID")
    check_output(out, posts_file)
    total = count_posts(posts_file)  # every row checked before the model is even loaded
    with scratch() as into:
        if run_id is not None:
            model_dir = fetch(run_id, "checkpoint", tracking_uri, into)
        predictor = Predictor.of(load_checkpoint(model_dir), batch_size=batch_size,
                                 device=device, precision=precision, with_text=with_text,
                                 evidence=evidence)
        log = console(stderr=True)
        scored = predict_file(predictor, posts_file, total, out, fmt, log)
    log.print(f"predicted {scored.posts} posts ({scored.rows} rows) in {scored.seconds:.1f} s, "
              f"{scored.posts_per_s:.1f} posts/s" + (f": {out}" if out else ""),
              markup=False, highlight=False)
