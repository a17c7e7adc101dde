"""`cm new plugin` end to end: the generated distribution pip-installs, its own tests pass
with cm's fixtures, and `cm plugins` lists its components. It is installed into a folder of
its own on PYTHONPATH, not into the shared environment, so tests running beside it (pytest-xdist
workers) never see its plugins come and go."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cm.cli.main import cli

pytestmark = pytest.mark.integration  # installs a package, trains, starts processes

CM = shutil.which("cm", path=str(Path(sys.executable).parent)) or "cm"
PIP = [sys.executable, "-m", "pip"]


def test_a_generated_plugin_installs_lists_and_passes_its_tests(tmp_path):
    folder = tmp_path / "cm-scaffolded"
    made = CliRunner().invoke(cli, ["new", "plugin", "cm-scaffolded", "--out", str(folder)])
    assert made.exit_code == 0, made.output
    site = tmp_path / "site"
    subprocess.run([*PIP, "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(folder)], check=True, capture_output=True,
                   timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site)}
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
                            "-p", "no:cacheprovider", "tests"], cwd=folder, env=env,
                           capture_output=True, text=True, timeout=600)
    listed = subprocess.run([CM, "plugins", "--json"], env=env, capture_output=True, text=True,
                            timeout=120)
    checked = subprocess.run([CM, "plugins", "--check"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "5 passed" in tests.stdout
    components = json.loads(listed.stdout)["components"]
    provided = sorted((kind, c["name"]) for kind, items in components.items() for c in items
                      if c["distribution"] == "cm-scaffolded")
    assert provided == [("head", "scaffolded_head"), ("loss", "scaffolded_loss"),
                        ("optimization", "scaffolded_optimization"),
                        ("pooling", "scaffolded_pooling")]
    assert checked.returncode == 0, checked.stderr
