"""Without a terminal (a batch job's log, CI, ``> file``) cm's tables print at their natural
width: no header is cut ("refe…") and no interval wraps onto a second line."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cm.bench.report import COLUMNS, table
from cm.cli.main import cli
from cm.terminal import NATURAL, console

BIN = Path(sys.executable).parent
CUT = "…"  # what rich puts where it cuts a cell


def test_a_file_gets_the_natural_width_and_columns_wins(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert console(file=io.StringIO()).width == NATURAL
    assert console(file=io.StringIO(), width=90).width == 90
    monkeypatch.setenv("COLUMNS", "132")
    assert console(file=io.StringIO()).width == 132


def bench_row(name):
    return {"name": name, "kind": "cm", "precision": "bf16", "samples_per_s": 812.25,
            "spread": 0.04, "steps": 100, "tokens_per_s": 181234.0, "padding_waste": 0.067,
            "peak_memory_mib": 44117.0, "mfu": 0.095, "ratio_vs_reference": 3.18,
            "ratio_vs_reference_cpu_time": None, "warmup_seconds": 179.3,
            "epoch_seconds": 13.2, "eval_pairs_per_s": 2410.0, "eval_seconds": 1.1}


def test_the_bench_table_keeps_every_header_and_value_whole(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    printed = io.StringIO()
    rows = [bench_row("reference-bf16"), bench_row("bucketing+bf16+fused+tf32+compile")]
    console(file=printed).print(table({"device": {"name": "NVIDIA H200"}, "rows": rows}))
    text = printed.getvalue()
    assert CUT not in text
    header = next(line for line in text.splitlines() if "config" in line)
    for column in COLUMNS:
        assert column in header
    for value in ("bucketing+bf16+fused+tf32+compile", "181,234", "44,117", "3.18x", "±2.0%"):
        assert value in text
    assert len([line for line in text.splitlines() if "NVIDIA H200" in line]) == 1


@pytest.mark.integration
def test_cm_plugins_to_a_file_names_every_component_whole(tmp_path):
    log = tmp_path / "plugins.txt"
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    with log.open("w") as out:
        done = subprocess.run([str(BIN / "cm"), "plugins"], stdout=out, env=env, timeout=120)
    assert done.returncode == 0
    text = log.read_text()
    assert CUT not in text
    for name in ("scaled_linear", "weighted_ce", "gradient_checkpointing", "mlflow"):
        assert re.search(rf"\b{re.escape(name)}\b", text), name


def test_a_run_summary_in_a_log_keeps_each_interval_on_its_line(tiny_run):
    printed = (Path(tiny_run.directory).parents[2] / "console.txt").read_text()
    assert CUT not in printed
    criteria = [line for line in printed.splitlines() if re.match(r"\W*A\.[1-9]\b", line)]
    assert criteria
    for line in criteria:  # "[low, high]" whole on the criterion's own line
        assert line.count("[") == line.count("]") >= 1, line


def test_cm_compare_to_a_pipe_keeps_its_table_whole(tiny_run):
    run = str(tiny_run.directory)
    result = CliRunner().invoke(cli, ["compare", run, run, "--resamples", "100"])
    assert result.exit_code == 0, result.output
    assert CUT not in result.output
    assert result.output.splitlines()[:2] == [f"A = {run}", f"B = {run}"]


def test_nothing_printed_fills_the_width():
    """A rule (``console.rule``) is as wide as the console: 10,000 characters in a log."""
    sources = Path(__file__).resolve().parents[1].glob("packages/*/src/**/*.py")
    assert [path.name for path in sources if ".rule(" in path.read_text()] == []
