"""``cm data``: inspect the data an experiment uses."""

import json

import click
from rich.table import Table

from cm import terminal
from cm.cli.params import experiment_argument, load
from cm.data.prepare import SPLITS, prepare
from cm.registry import get_registry


@click.group()
def data():
    """Inspect the data an experiment uses."""


@data.command()
@experiment_argument
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stats(experiment_file, overrides, as_json):
    """Posts, pairs and positives per criterion and split; token lengths; padding waste."""
    from cm.data.stats import data_stats
    from cm.model.backbone import experiment_tokenizer

    experiment = load(experiment_file, overrides)
    prepared = prepare(experiment, get_registry())
    report = data_stats(experiment, prepared, experiment_tokenizer(experiment, prepared))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    show(report, experiment)


def show(report, experiment):
    console = terminal.console()
    posts = ", ".join(f"{split} {n}" for split, n in report["posts"].items())
    console.print(f"[bold]{report['dataset']}[/bold] ({report['level']} level): "
                  f"{sum(report['posts'].values())} posts ({posts}), "
                  f"{report['annotations']} annotations, {report['criteria']} criteria")
    for reason, count in report["skipped"].items():
        if count:
            console.print(f"left out by policy: {reason}: {count}")
    labels = Table(title="pairs (positives) per criterion and split", title_justify="left")
    labels.add_column("criterion")
    for split in SPLITS:
        labels.add_column(split, justify="right")
    for row in report["labels"]:
        labels.add_row(row["criterion"], *(
            f"{row[f'{s}_pairs']} ({row[f'{s}_positives']})" for s in SPLITS))
    console.print(labels)
    lengths = report["lengths"]
    text = "post" if report["level"] == "post" else "sentence"
    console.print(f"pair length in tokens (criterion + {text}): " + ", ".join(
        f"{k} {v}" for k, v in lengths.items() if k.startswith("p"))
        + f", mean {lengths['mean']:.0f}, max {lengths['max']}; "
        f"{lengths['over_max_length']:.1%} exceed max_length {experiment.data.max_length}")
    inputs = report["model_inputs"]
    if inputs["truncation"] == "windows":
        console.print(f"truncation windows: {inputs['inputs']} model inputs, "
                      f"{inputs['pairs_in_windows']} pairs cut into several windows "
                      f"(stride {experiment.data.stride})")
    waste = Table(title=f"padding waste on the train split (batch {experiment.train.batch_size},"
                        f" max_length {experiment.data.max_length})", title_justify="left")
    for column in ("strategy", "rows", "real tokens", "computed tokens", "computed / real"):
        waste.add_column(column, justify="left" if column == "strategy" else "right")
    for row in report["padding"]:
        waste.add_row(row["strategy"], str(row["rows"]), str(row["real_tokens"]),
                      str(row["padded_tokens"]), f"{row['ratio']:.2f}x")
    console.print(waste)
