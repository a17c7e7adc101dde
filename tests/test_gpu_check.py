"""scripts/gpu-check: its CPU dry run (the offline install into a throwaway folder, where
mlflow and optuna cannot be imported, and the CUDA test selection, every test skipped for
want of a GPU), and the summary it prints last."""

import json
import os
import subprocess
import sys
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu-check"
CUDA_TESTS = 19  # tests/cuda/test_cuda_paths.py, parametrizations counted


def gpu_check():
    loader = SourceFileLoader("gpu_check", str(SCRIPT))
    module = module_from_spec(spec_from_loader("gpu_check", loader))
    loader.exec_module(module)
    return module


def test_cpu_dry_run_installs_offline_and_selects_the_cuda_tests(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "PYTHONPATH")}
    done = subprocess.run([sys.executable, str(SCRIPT), "--cpu-dry-run", "--out",
                           str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    install = summary["steps"]["install"]
    assert install["returncode"] == 0 and install["wheels"] == []
    assert install["cm"].startswith(install["site"])  # not the editable checkout
    assert not Path(install["site"]).exists()  # thrown away
    tests = summary["steps"]["tests"]
    assert (tests["tests"], tests["skipped"], tests["failed"]) == (CUDA_TESTS, CUDA_TESTS, 0)
    assert tests["skip_reasons"] == ["needs a CUDA GPU: run scripts/gpu-check on one "
                                     "(benchmarks/README.md)"]
    assert summary["steps"]["bench"]["returncode"] == 0
    assert "benchmarks/gpu.toml decodes: bf16, bucketing+bf16" in done.stdout
    log = (tmp_path / "gpu-check.log").read_text()
    assert f"tests: {CUDA_TESTS} selected, 0 passed, 0 failed, {CUDA_TESTS} skipped" in log
    assert done.stdout.rstrip().splitlines()[-1] == (
        f"cm gpu-check (cpu-dry-run) on cpu: tests 0 passed / 0 failed / {CUDA_TESTS} "
        f"skipped of {CUDA_TESTS}")


def test_the_last_lines_are_the_tests_and_the_bench_table(capsys):
    row = {"name": "bucketing+bf16", "precision": "bf16", "samples_per_s": 812.25,
           "ratio_vs_reference": 3.1, "mfu": 0.412, "peak_memory_mib": 20480.0}
    summary = {"mode": "gpu", "machine": {"device": "NVIDIA H200"}, "steps": {
        "tests": {"tests": 3, "passed": 2, "failed": 1, "skipped": 0,
                  "failures": ["test_cuda_paths::test_x"]},
        "bench": {"rows": [row, {**row, "name": "bf16", "ratio_vs_reference": None,
                                 "mfu": None, "peak_memory_mib": None}]}}}
    gpu_check().print_table(summary)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == ("cm gpu-check (gpu) on NVIDIA H200: tests 2 passed / 1 failed / "
                        "0 skipped of 3")
    assert lines[1] == "  FAILED test_cuda_paths::test_x"
    assert lines[3].split() == ["bucketing+bf16", "bf16", "812.2", "3.10x", "41.2%", "20,480"]
    assert lines[4].split() == ["bf16", "bf16", "812.2", "n/a", "n/a", "n/a"]


def test_junit_counts_failures_errors_and_skips(tmp_path):
    xml = tmp_path / "pytest.xml"
    xml.write_text('<testsuites><testsuite><testcase classname="a" name="ok"/>'
                   '<testcase classname="a" name="bad"><failure message="x"/></testcase>'
                   '<testcase classname="a" name="broken"><error message="y"/></testcase>'
                   '<testcase classname="a" name="gpu"><skipped message="no GPU"/></testcase>'
                   '</testsuite></testsuites>')
    counts = gpu_check().junit(xml)
    assert counts == {"tests": 4, "passed": 1, "failed": 2, "skipped": 1,
                      "failures": ["a::bad", "a::broken"], "skip_reasons": ["no GPU"]}
    assert gpu_check().junit(tmp_path / "missing.xml")["tests"] == 0
