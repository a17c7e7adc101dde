"""`cm new plugin` without installing anything: what it writes, and what it refuses."""

import ast
import tempfile
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cm.cli.main import cli
from cm.scaffold import KINDS, write_plugin


def new_plugin(*args):
    return CliRunner().invoke(cli, ["new", "plugin", *args])


def test_the_distribution_has_its_entry_point_and_only_the_asked_kinds(tmp_path):
    folder = tmp_path / "out"
    result = new_plugin("cm-shiny", "--kinds", "loss,head", "--out", str(folder))
    assert result.exit_code == 0, result.output
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "README.md", "pyproject.toml", "src/cm_shiny/__init__.py",
        "src/cm_shiny/components.py", "src/cm_shiny/plugin.py", "tests/test_plugin.py"]
    project = tomllib.loads((folder / "pyproject.toml").read_text())
    assert project["project"]["name"] == "cm-shiny"
    assert project["project"]["entry-points"]["cm"] == {"shiny": "cm_shiny.plugin"}
    plugin = (folder / "src/cm_shiny/plugin.py").read_text()
    assert 'register("shiny_head", "cm_shiny.components:Head"' in plugin
    assert 'register("shiny_loss", "cm_shiny.components:Loss"' in plugin
    assert "register_poolings" not in plugin and "register_optimizations" not in plugin
    assert "torch" not in plugin  # every cm command imports it


@settings(max_examples=15, deadline=None)
@given(suffix=st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4}){0,2}", fullmatch=True),
       kinds=st.sets(st.sampled_from(KINDS), min_size=1))
def test_every_generated_module_parses_and_names_its_kinds_only(suffix, kinds):
    with tempfile.TemporaryDirectory() as root:
        folder = write_plugin(f"cm-test-{suffix}", sorted(kinds), Path(root) / "plugin")
        package = f"cm_test_{suffix.replace('-', '_')}"
        modules = [folder / "src" / package / name for name in
                   ("__init__.py", "plugin.py", "components.py")]
        for path in [*modules, folder / "tests" / "test_plugin.py"]:
            ast.parse(path.read_text(), str(path))
        hooks = {node.name for node in ast.parse(modules[1].read_text()).body
                 if isinstance(node, ast.FunctionDef)}
        plural = {"head": "heads", "pooling": "poolings", "loss": "losses",
                  "optimization": "optimizations"}
        assert hooks == {f"register_{plural[kind]}" for kind in kinds}


@pytest.mark.parametrize(("args", "message"), [
    (["Cm_Bad"], "error: plugin name 'Cm_Bad': use lowercase letters, digits and single "
                 "hyphens, starting with a letter (e.g. cm-gated-head)"),
    (["cm-heads"], "error: plugin name 'cm-heads': a module named 'cm_heads' is already "
                   "importable here; choose another name"),
    (["cm-new", "--kinds", "heads"], "error: --kinds: 'heads' is not a kind the template has "
                                     "(kinds: head, pooling, loss, optimization); did you "
                                     "mean 'head'?"),
    (["cm-new", "--kinds", ","], "error: --kinds: name at least one of head, pooling, loss, "
                                 "optimization"),
])
def test_a_bad_name_or_kind_is_refused_with_the_fix(tmp_path, args, message):
    result = new_plugin(*args, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.stderr == message + "\n"
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_not_empty_is_refused(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = new_plugin("cm-new", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == (f"error: {tmp_path}: the folder is not empty; give --out a new "
                             "or empty folder\n")
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
