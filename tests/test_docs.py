"""Docs that must stay true: every hook is documented, every CLI command is in the contract."""

import re
from pathlib import Path

from cm import hookspecs
from cm.cli.main import cli

DOCS = Path(__file__).resolve().parents[1] / "docs"


def hook_names():
    return sorted(name for name in dir(hookspecs)
                  if hasattr(getattr(hookspecs, name), "cm_spec"))


def test_there_are_hooks():
    assert "register_heads" in hook_names() and "run_finished" in hook_names()


def test_every_hook_is_documented():
    documented = set(re.findall(r"^### `(\w+)", (DOCS / "plugins.md").read_text(), re.M))
    assert set(hook_names()) == documented


def test_every_command_is_in_the_cli_contract():
    contract = (DOCS / "cli.md").read_text()
    for name in cli.commands:
        assert f"## `cm {name}" in contract, name
