"""Bench outputs: ``results.json`` (everything), ``results.md`` (the table), ``results.png``
(throughput relative to the reference), and the same table for the terminal."""

import json
import re
import subprocess
import time
from pathlib import Path

from rich.table import Table

from cm.bench.memory import label as memory_label
from cm.config.dump import dumps
from cm.environment import versions

COLUMNS = ("config", "precision", "samples/s", "tokens/s", "padding waste", "peak memory MiB",
           "MFU", "vs reference", "vs reference (CPU time)", "warm-up s")


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


def git_state() -> dict:
    """The commit of the working directory's repository and whether it has changes."""
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=30,
                              check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def assemble(bench, measured: dict) -> dict:
    """The full record of a bench: where, what, with which versions, and the rows."""
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": bench.source,
        "device": measured["device"],
        "versions": versions(),
        "git": git_state(),
        "bench": bench.table.settings(),
        "memory_measure": memory_label(measured["device"]["type"]),
        "configs": [{"name": c.name, "set": c.overrides} for c in bench.configs],
        "experiment": dumps(bench.experiment),
        "rows": measured["rows"],
    }


def cells(row: dict) -> list[str]:
    memory = row["peak_memory_mib"]
    return [row["name"], row["precision"], f"{row['samples_per_s']:.1f}",
            f"{row['tokens_per_s']:,.0f}", f"{row['padding_waste']:.1%}",
            "n/a" if memory is None else f"{memory:,.0f}",
            "n/a" if row["mfu"] is None else f"{row['mfu']:.1%}",
            _ratio(row["ratio_vs_reference"]), _ratio(row["ratio_vs_reference_cpu_time"]),
            f"{row['warmup_seconds']:.1f}"]


def _ratio(value) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def warmup(bench: dict) -> str:
    if bench["warmup_pass"]:
        return "warm-up: one untimed pass over the same examples (every batch shape compiled)"
    return f"{bench['warmup']} warmup batches"


def markdown(result: dict) -> str:
    device, git, bench = result["device"], result["git"], result["bench"]
    commit = (git["commit"] or "unknown")[:12] + (" (uncommitted changes)" if git["dirty"]
                                                  else "")
    load = [u for row in result["rows"] for u in row["cpu_utilization_rounds"]]
    lines = [
        f"# cm bench: {device['name']} ({device['type']})",
        "",
        f"{result['created']}, commit {commit}, torch {result['versions']['torch']}, "
        f"transformers {result['versions']['transformers']}, {device['torch_threads']} torch "
        f"threads; `{result['source']}`: {bench['examples']} train examples per row, "
        f"{warmup(bench)}, median of {bench['rounds']} round(s).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(COLUMNS))) + "|",
    ]
    lines += ["| " + " | ".join(cells(row)) + " |" for row in result["rows"]]
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
        "the untimed warm-up before the timed pass, where compilation lands.",
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
