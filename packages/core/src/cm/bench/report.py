"""Bench outputs: ``results.json`` (everything), ``results.md`` (the table), ``results.png``
(throughput relative to the reference), and the same table for the terminal."""

import json
import re
import time
from pathlib import Path

from rich.table import Table

from cm.bench.memory import label as memory_label
from cm.bench.source import gpu_state, source_state
from cm.config.dump import dumps
from cm.environment import versions

COLUMNS = ("config", "precision", "samples/s", "spread", "steps", "tokens/s", "padding waste",
           "peak memory MiB", "MFU", "vs reference", "vs reference (CPU time)", "warm-up s",
           "real epoch s", "eval pairs/s", "real val+test s")
TRUSTED_ROUNDS, TRUSTED_STEPS = 3, 100  # fewer: the row is marked indicative


def output_directory(bench, device: dict) -> Path:
    """``<bench.output_dir>/<device>-<timestamp>``, never an existing folder."""
    slug = "cpu" if device["type"] == "cpu" else "gpu-" + re.sub(
        r"[^a-z0-9]+", "-", device["name"].lower()).strip("-")
    base = Path(bench.table.output_dir) / f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}"
    directory, n = base, 1
    while directory.exists():
        directory, n = Path(f"{base}-{n}"), n + 1
    directory.mkdir(parents=True)
    return directory


def assemble(bench, measured: dict) -> dict:
    """The full record of a bench: where, what, with which versions, and the rows."""
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "file": bench.source,
        "device": measured["device"],
        "versions": versions(),
        "source": source_state(Path.cwd()),
        "gpu": gpu_state() if measured["device"]["type"] == "cuda" else None,
        "bench": bench.table.settings(),
        "memory_measure": memory_label(measured["device"]["type"]),
        "configs": [{"name": c.name, "set": c.overrides} for c in bench.configs],
        "experiment": dumps(bench.experiment),
        "rows": measured["rows"],
    }


def cells(row: dict) -> list[str]:
    memory = row["peak_memory_mib"]
    epoch = row.get("epoch_seconds")
    return [row["name"], row["precision"], f"{row['samples_per_s']:.1f}",
            f"±{row['spread'] / 2:.1%}", str(row["steps"]),
            f"{row['tokens_per_s']:,.0f}", f"{row['padding_waste']:.1%}",
            "n/a" if memory is None else f"{memory:,.0f}",
            "n/a" if row["mfu"] is None else f"{row['mfu']:.1%}",
            _ratio(row["ratio_vs_reference"]), _ratio(row["ratio_vs_reference_cpu_time"]),
            f"{row['warmup_seconds']:.1f}", _number(epoch, ",.0f"),
            _number(row.get("eval_pairs_per_s"), ",.0f"), _number(row.get("eval_seconds"), ",.1f")]


def _number(value, spec) -> str:
    return "n/a" if value is None else format(value, spec)


def indicative(row: dict) -> bool:
    """Too few rounds or steps to tell a ratio from the noise between runs."""
    return (len(row["samples_per_s_rounds"]) < TRUSTED_ROUNDS
            or row["steps"] < TRUSTED_STEPS)


def _ratio(value) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def warmup(bench: dict) -> str:
    if bench["warmup_pass"]:
        return "warm-up: one untimed pass over the same examples (every batch shape compiled)"
    return f"{bench['warmup']} warmup batches"


def commit(source: dict) -> str:
    """``commit <sha>`` with how it is known, or why it is not."""
    if source["commit"] is None:
        return (f"commit unknown (the tree differs from git's HEAD "
                f"{(source.get('git_head') or 'none')[:12]} and no matching stamp; source "
                f"digest {source['digest'][:12]})")
    how = "clean git tree" if source["known_by"] == "git" else "stamp, source digest matches"
    return (f"commit {source['commit'][:12]}"
            + (" plus uncommitted changes" if source["dirty"] else "") + f" ({how})")


EPOCHS = 5  # a typical fine-tuning run, for weighing a row's warm-up against its speed-up


def five_epochs(rows: list[dict]) -> list[str]:
    """Per cm row with a real-epoch estimate: what its warm-up costs in a 5-epoch run on
    the real data, and what its speed saves there against the reference."""
    references = {row["precision"]: row for row in rows if row["kind"] == "reference"}
    lines = []
    for row in rows:
        reference = references.get(row["precision"])
        if row["kind"] == "reference" or not row.get("epoch_seconds") or not reference:
            continue
        training = EPOCHS * row["epoch_seconds"]
        saved = EPOCHS * reference["epoch_seconds"] - training
        lines.append(f"- {row['name']}: warm-up {row['warmup_seconds']:.0f} s is "
                     f"{row['warmup_seconds'] / (row['warmup_seconds'] + training):.0%} of a "
                     f"{EPOCHS}-epoch real run ({training:,.0f} s of training); its speed "
                     f"saves {saved:,.0f} s against the reference there.")
    return ["", f"A {EPOCHS}-epoch run on the real data (the profile's epoch):", *lines] \
        if lines else []


def lengths(bench: dict) -> str:
    if not bench.get("lengths"):
        return "pair lengths as the data's own"
    return f"pair lengths drawn from the {bench['lengths']!r} profile (cm.bench.lengths)"


def markdown(result: dict) -> str:
    device, bench = result["device"], result["bench"]
    load = [u for row in result["rows"] for u in row["cpu_utilization_rounds"]]
    lines = [
        f"# cm bench: {device['name']} ({device['type']})",
        "",
        f"{result['created']}, {commit(result['source'])}, torch "
        f"{result['versions']['torch']}, transformers {result['versions']['transformers']}, "
        f"{device['torch_threads']} torch threads; `{result['file']}`: {bench['examples']} "
        f"train examples per row, {warmup(bench)}, median of {bench['rounds']} round(s); "
        f"{lengths(bench)}.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(COLUMNS))) + "|",
    ]
    lines += ["| " + " | ".join(cells(row)) + " |" for row in result["rows"]]
    shaky = [row["name"] for row in result["rows"] if indicative(row)]
    if shaky:
        lines += ["", f"**Indicative only** (fewer than {TRUSTED_ROUNDS} rounds or "
                      f"{TRUSTED_STEPS} timed steps): {', '.join(shaky)}."]
    lines += five_epochs(result["rows"])
    if result.get("gpu"):
        lines += ["", "GPU at the end: " + ", ".join(f"{k} {v}" for k, v in
                                                       result["gpu"].items()) + "."]
    missing = [c["name"] for c in result["configs"]
               if c["name"] not in {row["name"] for row in result["rows"]}]
    fewer = [row["name"] for row in result["rows"]
             if len(row["samples_per_s_rounds"]) < bench["rounds"]]
    if missing or fewer:
        lines += ["", f"**Partial** (interrupted, or still running): not measured: "
                      f"{', '.join(missing) or 'none'}; fewer than {bench['rounds']} rounds: "
                      f"{', '.join(fewer) or 'none'}."]
    lines += [
        "",
        "tokens/s counts real tokens (padding excluded); padding waste = computed tokens "
        "(input_ids cells) / real tokens - 1; peak memory: "
        f"{result['memory_measure']}; vs reference: samples/s over the plain Hugging Face "
        "loop's at the same precision; (CPU time): the same with this process's CPU seconds "
        "instead of wall seconds, which a busy machine disturbs less (CPU only); warm-up s: "
        "the untimed warm-up before the timed pass, where compilation lands; spread: "
        "(slowest - fastest round) / median / 2; real epoch s: the train pairs of one real "
        "epoch at this level (the length profile's) at the row's samples/s; eval pairs/s: "
        "the same examples scored as validation scores them (eval batch size, padding and "
        "precision as the row trains; cm rows only); real val+test s: the profile's val + "
        "test pairs at that rate (the evidence pass of post-level runs comes on top).",
        "",
        f"Process CPU time / wall time during the timed passes: {min(load):.2f} to "
        f"{max(load):.2f} (the process ran {device['torch_threads']} threads; lower means it "
        "waited for cores that other work held).",
        "",
    ]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [row for row in result["rows"] if row["ratio_vs_reference"] is not None]
    if not rows:  # an interrupted bench before its first reference: nothing to compare
        return
    fig = Figure(figsize=(7, 0.45 * len(rows) + 1.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    names = [row["name"] for row in rows][::-1]
    ratios = [row["ratio_vs_reference"] for row in rows][::-1]
    colors = ["0.6" if row["kind"] == "reference" else "tab:blue" for row in rows][::-1]
    bars = ax.barh(names, ratios, color=colors)
    ax.bar_label(bars, labels=[f"{r:.2f}x" for r in ratios], padding=3)
    ax.axvline(1.0, color="0.3", linewidth=0.8)
    ax.set_xlim(0, max(ratios) * 1.2)
    ax.set_xlabel("samples/s relative to the plain HF loop at the same precision")
    ax.set_title(f"cm bench on {result['device']['name']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_results(result: dict, directory: Path) -> dict:
    paths = {"json": directory / "results.json", "md": directory / "results.md",
             "png": directory / "results.png"}
    paths["json"].write_text(json.dumps(result, indent=2) + "\n")
    paths["md"].write_text(markdown(result))
    plot(result, paths["png"])
    return {kind: path for kind, path in paths.items() if path.exists()}


def table(result: dict) -> Table:
    view = Table(title=f"cm bench on {result['device']['name']}", title_justify="left")
    for i, column in enumerate(COLUMNS):
        view.add_column(column, justify="left" if i < 2 else "right")
    for row in result["rows"]:
        view.add_row(*cells(row))
    return view
