"""Docs that must stay true: every hook is documented, every CLI command is in the contract."""

import inspect
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from cm import hookspecs
from cm.cli.main import cli

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLE_TESTS = ROOT / "examples" / "cm-plugin-example" / "tests" / "test_plugin.py"


def hook_names():
    return sorted(name for name in dir(hookspecs)
                  if hasattr(getattr(hookspecs, name), "cm_spec"))


def test_there_are_hooks():
    assert "register_heads" in hook_names() and "run_finished" in hook_names()


def documented_hooks() -> dict[str, str]:
    return dict(re.findall(r"^### `(\w+)\(([^)]*)\)`", (DOCS / "plugins.md").read_text(), re.M))


def test_every_documented_hook_exists():
    assert sorted(documented_hooks()) == hook_names()


@pytest.mark.parametrize("name", hook_names())
def test_every_hook_is_documented_with_its_arguments(name):
    """datasette's habit: each hookspec has a ``### `name(arguments)` `` section in
    docs/plugins.md whose argument names are the hookspec's own."""
    expected = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    assert documented_hooks().get(name) == expected


@pytest.mark.parametrize("name", hook_names())
def test_every_hook_has_a_test(name):
    """... and a test named ``test_hook_<name>`` somewhere in the tests."""
    sources = "\n".join(path.read_text() for pattern in ("packages/*/tests/*.py", "tests/*.py")
                        for path in ROOT.glob(pattern))
    assert re.search(rf"^def test_hook_{name}\b", sources, re.M)


def command_names() -> list[str]:
    """Every command ``cm --help`` lists: the core's and the installed plugins' (listing asks
    the plugins for theirs, whichever test ran before)."""
    return cli.list_commands(click.Context(cli))


def test_the_command_list_holds_the_plugins_commands():
    assert {"run", "predict", "sweep", "replay"} <= set(command_names())


@pytest.mark.parametrize("name", command_names())
def test_every_command_is_in_the_cli_contract(name):
    assert f"## `cm {name}" in (DOCS / "cli.md").read_text()


def test_the_plugin_tests_in_the_docs_run_outside_the_repo(tmp_path):
    """docs/plugins.md shows the example plugin's whole test file; copied into a folder
    outside the repo, it passes with nothing but the installed packages and their fixtures
    (this is also where the suite runs the example's tests)."""
    assert not tmp_path.is_relative_to(ROOT)
    text = (DOCS / "plugins.md").read_text()
    block = text.split("## Testing a plugin", 1)[1].split("```python\n", 1)[1].split("```")[0]
    assert block == EXAMPLE_TESTS.read_text()
    (tmp_path / "test_plugin.py").write_text(block)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "test_plugin.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"\b4 passed\b", done.stdout), done.stdout[-3000:]
