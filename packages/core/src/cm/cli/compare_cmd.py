"""``cm compare``: two runs' test scores side by side, with paired-bootstrap differences."""

import json
from pathlib import Path

import click

from cm import limits
from cm.cli.run_source import fetch, scratch, tracking_uri_option


@click.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--resamples", type=click.IntRange(100, limits.RESAMPLES), default=1000,
              show_default=True,
              help="Bootstrap resamples of the test posts (at most 10,000: cm.limits).")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@tracking_uri_option
def compare(run_a, run_b, resamples, seed, as_json, tracking_uri):
    """Paired-bootstrap difference RUN_A - RUN_B of each headline test score (9-criterion
    macro-F1 first) with its 95% interval, resampling the same test posts for both.

    RUN_A and RUN_B are run directories (outputs/<name>/<timestamp>), or ids of tracked runs
    (cm-tracking: MLflow run ids); or two group folders (cm run --seeds N, data.folds = K):
    their runs paired in order, the mean paired difference with an interval pooled over
    the pairs and the resampled posts. Runs whose test pairs differ are refused (exit 2).
    """
    from cm.errors import UserError
    from cm.evaluate.compare import compare as run_compare
    from cm.evaluate.compare import ordered
    from cm.evaluate.groups import is_group, member_dirs

    groups = [is_group(Path(run)) for run in (run_a, run_b)]
    if groups[0] != groups[1]:
        raise UserError(f"{(run_a, run_b)[groups.index(True)]} is a group of runs and the "
                        "other a single run: compare two groups, or two runs (a member's "
                        "folder inside the group)")
    with scratch() as into:
        runs = [member_dirs(Path(run)) if group else
                [Path(run) if Path(run).is_dir() else
                 fetch(run, "predictions", tracking_uri, into / name)]
                for name, run, group in zip("ab", (run_a, run_b), groups, strict=True)]
        result = run_compare(*runs, seed=seed, resamples=resamples)
    if as_json:
        click.echo(json.dumps({name: result[name] for name in ordered(result)}, indent=2))
        return
    from rich.table import Table

    from cm import terminal

    paired = ", runs paired in order" if groups[0] else ""
    table = Table(title=f"test, A - B ({resamples} paired resamples{paired})",
                  title_justify="left")
    for column in ("metric", "A", "B", "A - B", "95% interval", "excludes 0"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name in ordered(result):
        row = result[name]
        table.add_row(name, f"{row['a']:.4f}", f"{row['b']:.4f}", f"{row['difference']:+.4f}",
                      f"[{row['low']:+.4f}, {row['high']:+.4f}]",
                      "yes" if row["excludes_zero"] else "no")
    console = terminal.console()
    console.print(f"A = {run_a}\nB = {run_b}", soft_wrap=True, markup=False, highlight=False)
    console.print(table)
