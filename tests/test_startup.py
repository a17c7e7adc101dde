"""Fast start: the commands that only list or show import none of the heavy libraries
(torch alone takes seconds; ``cm config validate`` does import it: it checks the device,
the optimizations on it and the data as ``cm run`` does). They run in-process in one fresh
interpreter, since this test process has long imported torch; seconds are measured by
benchmarks/startup.py."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "mlflow", "optuna", "sklearn", "matplotlib")
COMMANDS = [["--version"], ["--help"], ["plugins"], ["plugins", "--json"],
            ["config", "show", "experiments/demo.toml"],
            ["run", "--help"], ["bench", "--help"], ["data", "--help"], ["new", "plugin", "--help"]]

SCRIPT = """
import json, sys
from click.testing import CliRunner
from cm.cli.main import cli

results = []
for args in json.loads(sys.argv[1]):
    outcome = CliRunner().invoke(cli, args)
    results.append({"args": args, "exit_code": outcome.exit_code,
                    "output": outcome.output})
print(json.dumps({"results": results,
                  "heavy": sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)}))
"""


def test_listing_and_showing_import_no_heavy_library():
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(COMMANDS), json.dumps(HEAVY)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for result in report["results"]:
        assert result["exit_code"] == 0, result
    listed = next(r for r in report["results"] if r["args"] == ["plugins", "--json"])
    assert json.loads(listed["output"])["failures"] == []
    assert report["heavy"] == []
