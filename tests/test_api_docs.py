"""docs/api.md documents every public name a plugin author touches: the top-level names of
the modules below, the fields and members of their public classes, and every hook."""

import ast
import importlib
import re
from pathlib import Path

import pytest

from cm import hookspecs

API = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
MODULES = ["cm.contracts", "cm.optimization", "cm.registry", "cm.testing", "cm.pytest_plugin"]


def public(names):
    return [name for name in names if not name.startswith("_")]


def assigned(node):
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return [target.id for target in targets if isinstance(target, ast.Name)]


def defined(body):
    """Names a module or class body defines: functions, classes, assignments."""
    names = []
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            names += assigned(node)
    return public(names)


def module_tree(name):
    return ast.parse(Path(importlib.import_module(name).__file__).read_text())


def members():
    """(module, class, member) for each public member of each public class."""
    for name in MODULES:
        for node in module_tree(name).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                yield from ((name, node.name, member) for member in defined(node.body))


def documented(name) -> bool:
    return re.search(rf"`{re.escape(name)}\b", API) is not None


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_is_documented(module):
    names = defined(module_tree(module).body)
    assert names
    assert [name for name in names if not documented(name)] == []


@pytest.mark.parametrize(("module", "owner", "member"), list(members()))
def test_every_class_member_is_documented(module, owner, member):
    """As ``Class.member``, or on a line naming the class, inside backticks."""
    beside_owner = any(f"`{owner}" in line and re.search(rf"`[^`]*\b{member}\b[^`]*`", line)
                       for line in API.splitlines())
    assert documented(f"{owner}.{member}") or beside_owner


@pytest.mark.parametrize("hook", sorted(name for name in dir(hookspecs)
                                        if hasattr(getattr(hookspecs, name), "cm_spec")))
def test_every_hook_is_in_the_reference(hook):
    assert documented(hook)


def test_a_name_left_out_is_found():
    assert not documented("an_undocumented_helper")
    assert documented("TrainContext.autocast_dtype")
