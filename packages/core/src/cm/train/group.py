"""``cm run FILE --seeds N`` and cross-validated experiments (``data.folds = K``): one run
per member (seed, fold) in one group folder, then the group's aggregate.

The group is a tracked run itself (``cm.train.lifecycle``) with the experiment as given:
its folder ``<output_dir>/<name>/<timestamp>/`` holds one run folder per member (``seed-42``,
``fold-1``, ``seed-42-fold-1``), and at the end ``aggregate.json``, ``summary.md``,
``ensemble/`` (the averaged model's reports and predictions, as a run's) and, when
cross-validated, ``folds.csv`` (post id -> fold, ids only). Its trackers hear it as they hear
any run (the MLflow tracker makes it the parent of the members' runs); its metrics are the
aggregate, and ``evaluated`` is called once with split ``"group"`` and those files.

Members differ only in ``seed`` (``seed``, ``seed + 1``, ...: weights, batch order) and
``data.fold``; ``data.split_seed`` is fixed to the experiment's split seed, so every member
scores the same test posts, and one member's ``config.toml`` replays that member alone."""

import json
import os

import attrs

from cm.data.pairs import label_matrix
from cm.data.splits import fold_posts
from cm.errors import UserError
from cm.evaluate.groups import AGGREGATE, ensemble, headline, summarize
from cm.evaluate.report import write_split_report
from cm.train.engine import run_experiment
from cm.train.lifecycle import Run, tracked_run

MAX_SEED = 2**32 - 1
SHOWN = ("post_macro_f1", "post_micro_f1")  # in summary.md (narrow enough for a terminal)


@attrs.frozen
class Member:
    label: str  # its folder in the group's
    experiment: object


def members(experiment, seeds: int = 1) -> list[Member]:
    """One member per seed (``seed`` .. ``seed + seeds - 1``) and, when ``data.folds`` is
    set without ``data.fold``, per fold."""
    data = experiment.data
    if experiment.seed + seeds - 1 > MAX_SEED:
        raise UserError(f"--seeds {seeds} from seed {experiment.seed} passes {MAX_SEED}; "
                        "use a smaller seed")
    split_seed = experiment.seed if data.split_seed is None else data.split_seed
    folds = range(1, data.folds + 1) if data.all_folds else [data.fold]
    chosen = []
    for seed in range(experiment.seed, experiment.seed + seeds):
        for fold in folds:
            label = "-".join([*([f"seed-{seed}"] if seeds > 1 else []),
                              *([f"fold-{fold}"] if fold is not None else [])])
            chosen.append(Member(label, attrs.evolve(
                experiment, seed=seed, data=attrs.evolve(data, split_seed=split_seed,
                                                         fold=fold))))
    return chosen


def is_group(experiment, seeds: int = 1) -> bool:
    return seeds > 1 or experiment.data.all_folds


def run_group(experiment, seeds: int = 1, *, registry=None, console=None) -> Run:
    """Run every member of the group, then aggregate; returns the group's Run."""
    if "RANK" in os.environ:  # launched by torchrun (as cm.distributed.start tells)
        raise UserError("a group (--seeds, data.folds) cannot run under torchrun; run each "
                        "member alone: --set data.fold=<k> / --set seed=<s>")
    chosen = members(experiment, seeds)

    def body(group, registry, console, hooks):
        artifacts = {}
        if experiment.data.all_folds:
            artifacts["folds"] = write_folds(group, chosen[0].experiment)
        for i, member in enumerate(chosen, start=1):
            console.print(f"[bold]── {member.label} ({i}/{len(chosen)}) ──[/bold]")
            run_experiment(member.experiment, registry=registry, console=console,
                           parent=group, label=member.label)
        artifacts.update(conclude(group, chosen, console))
        hooks.evaluated(run=group, split="group", metrics={}, artifacts=artifacts)

    return tracked_run(experiment, body, registry=registry, console=console)


def write_folds(group, member):
    """``folds.csv``: each post's fold (1 .. K) or ``test``, from the group's data (its
    train+val posts are the members')."""
    fold_of = fold_posts(group.prepared.split_of, label_matrix(group.prepared.corpus),
                         member.data.folds, member.data.split_seed)
    path = group.directory / "folds.csv"
    path.write_text("post_id,fold\n" + "".join(
        f"{pid},{fold_of.get(pid, 'test')}\n" for pid in sorted(group.prepared.split_of)))
    return path


def conclude(group, chosen, console) -> dict:
    """``aggregate.json``, the group's metrics, ``summary.md``; returns the files' paths."""
    settings = group.experiment.eval
    dirs = [group.directory / m.label for m in chosen]
    metrics = [json.loads((d / "metrics.json").read_text()) for d in dirs]
    averaged = ensemble(dirs, settings.thresholds, group.experiment.seed,
                        settings.bootstrap_resamples)
    found = {"members": [m.label for m in chosen],
             "seeds": [m.experiment.seed for m in chosen],
             "folds": [m.experiment.data.fold for m in chosen],
             "metrics": summarize(metrics),
             "headline": headline(dirs, group.experiment.seed, settings.bootstrap_resamples),
             "ensemble": averaged.scores}
    (group.directory / AGGREGATE).write_text(json.dumps(found, indent=2))
    write_ensemble(group.directory / "ensemble", averaged)
    group.record(metrics=flat(found))
    table = summary_rows(chosen, metrics, found)
    (group.directory / "summary.md").write_text(markdown(table))
    console.print(rich_table(table, f"{len(chosen)} runs -> {group.directory}"))
    return {"aggregate": group.directory / AGGREGATE, "summary": group.directory / "summary.md",
            "ensemble": group.directory / "ensemble"}


def write_ensemble(directory, averaged):
    """The ensemble's per-split reports, as a run writes them: ``ensemble/`` is a folder
    ``cm compare`` takes like a run's."""
    for split, (pairs, sentence_ids) in averaged.splits.items():
        write_split_report(directory, split, pairs, sentence_ids, averaged.decision,
                           list(averaged.decision.thresholds), averaged.scores[split])


def flat(found: dict) -> dict:
    """The aggregate as a run's metrics: ``<metric>/mean|sd|min|max``,
    ``headline/<name>/mean|low|high``, ``ensemble/<split>_tuned/<name>``."""
    out = {f"{name}/{stat}": value for name, row in found["metrics"].items()
           for stat, value in row.items()}
    out.update({f"headline/{name}/{stat}": value for name, row in found["headline"].items()
                for stat, value in row.items()})
    out.update({f"ensemble/{split}_tuned/{name}": value
                for split, scores in found["ensemble"].items()
                for name, value in scores.items()})
    return out


def summary_rows(chosen, metrics, found) -> list[list[str]]:
    """Header, one row per member (val at its own decision, test), mean ± sd, the pooled
    interval and the ensemble, for val and test of each ``SHOWN`` score."""
    columns = [f"{split}_tuned/{name}" for name in SHOWN for split in ("val", "test")]
    rows = [["run", *(c.replace("_tuned/", " ") for c in columns)]]
    rows += [[m.label, *(f"{run.get(c, float('nan')):.3f}" for c in columns)]
             for m, run in zip(chosen, metrics, strict=True)]
    summary = found["metrics"]
    rows.append(["mean ± sd", *(f"{summary[c]['mean']:.3f} ± {summary[c]['sd']:.3f}"
                                if c in summary else "-" for c in columns)])
    pooled = found["headline"]
    rows.append(["95% pooled", *(
        f"[{pooled[n]['low']:.3f}, {pooled[n]['high']:.3f}]"
        if s == "test" and n in pooled else "-" for c in columns
        for s, n in [c.split("_tuned/")])])
    ensembled = found["ensemble"]
    rows.append(["ensemble", *(f"{ensembled[s][n]:.3f}" if n in ensembled[s] else "-"
                               for c in columns for s, n in [c.split("_tuned/")])])
    return rows


def markdown(rows) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows[1:]]) + "\n"


def rich_table(rows, title):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, name in enumerate(rows[0]):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows[1:]:
        table.add_row(*row)
    return table
