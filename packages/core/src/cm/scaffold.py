"""``cm new plugin``: a ready plugin distribution written from the templates shipped in
``cm/templates/plugin/`` (``string.Template`` files): pyproject with the ``cm`` entry point,
the registrations, one component per requested kind, a README and tests using cm's
fixtures."""

import importlib.metadata as md
import importlib.util
import json
import keyword
import re
from importlib.resources import files
from pathlib import Path
from string import Template

from cm.errors import UserError, suggest
from cm.plugins import GROUP

KINDS = ("head", "pooling", "loss", "optimization")  # the kinds the template has
NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
TEMPLATES = files("cm") / "templates" / "plugin"

# the import lines each generated module needs: always (None) and for each kind
IMPORTS = {
    "plugin.py": {None: ["from cm.hookspecs import hookimpl"], "head": ["import attrs"],
                  "loss": ["import attrs"],
                  "optimization": ["import attrs",
                                   "from cm.optimization import OptimizationOptions"]},
    "components.py": {"head": ["from torch import nn"], "pooling": ["from torch import nn"],
                      "loss": ["import torch", "from torch import nn"],
                      "optimization": ["from cm.optimization import Optimization"]},
    "test.py": {None: ["from cm.registry import get_registry"], "head": ["import torch"],
                "pooling": ["import torch"], "loss": ["import torch"]},
}
# each kind's table in an experiment file, as the README shows it
USAGE = {"head": '[model.head]\nname = "$head"\ndropout = 0.1',
         "pooling": '[model.pooling]\nname = "$pooling"',
         "loss": '[train.loss]\nname = "$loss"\nsmoothing = 0.05',
         "optimization": "[optimizations.$optimization]\npad_to = 8"}


def write_plugin(name: str, kinds: list[str], folder: Path) -> Path:
    """Write the distribution ``name`` with one component per kind into ``folder`` (new or
    empty); returns the folder."""
    kinds = checked_kinds(kinds)
    values = template_values(checked_name(name), kinds)
    check_folder(folder)
    package = values["package"]
    parts = {"pyproject.toml": render("pyproject.toml", values),
             "README.md": render("README.md", values),
             f"src/{package}/__init__.py": render("__init__.py", values),
             f"src/{package}/plugin.py": module("plugin.py", "plugin.py", kinds, values),
             f"src/{package}/components.py": module("components.py", "components.py", kinds,
                                                    values),
             "tests/test_plugin.py": module("test_plugin.py", "test.py", kinds, values)
             + render("tiny_run.py", values)}
    for path, text in parts.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text, encoding="utf-8")
    return folder


def checked_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise UserError(f"plugin name {name!r}: use lowercase letters, digits and single "
                        "hyphens, starting with a letter (e.g. cm-gated-head)")
    package = name.replace("-", "_")
    entry = package.removeprefix("cm_")
    if keyword.iskeyword(package) or importlib.util.find_spec(package) is not None:
        raise UserError(f"plugin name {name!r}: a module named {package!r} is already "
                        "importable here; choose another name")
    taken = {ep.name: ep for ep in md.entry_points(group=GROUP)}
    if entry in taken:
        owner = taken[entry].dist.name if taken[entry].dist else "an installed package"
        raise UserError(f"plugin name {name!r}: its entry-point name {entry!r} is taken by "
                        f"{owner}; choose another name")
    return name


def checked_kinds(kinds: list[str]) -> list[str]:
    wanted = [kind.strip() for kind in kinds if kind.strip()]
    for kind in wanted:
        if kind not in KINDS:
            raise UserError(f"--kinds: {kind!r} is not a kind the template has (kinds: "
                            f"{', '.join(KINDS)}){suggest(kind, KINDS)}")
    if not wanted:
        raise UserError(f"--kinds: name at least one of {', '.join(KINDS)}")
    return [kind for kind in KINDS if kind in wanted]


def check_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: is a file; give --out a new or empty folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise UserError(f"{folder}: the folder is not empty; give --out a new or empty folder")


def template_values(name: str, kinds: list[str]) -> dict:
    package = name.replace("-", "_")
    entry = package.removeprefix("cm_")
    names = {kind: f"{entry}_{kind}" for kind in KINDS}
    usage = "\n\n".join(Template(USAGE[kind]).substitute(names) for kind in kinds)
    return {"dist": name, "package": package, "entry": entry, **names,
            "summary": ", ".join(f"{kind} '{names[kind]}'" for kind in kinds),
            "usage": f"```toml\n{usage}\n```\n", "tables": tiny_tables(kinds, names)}


def tiny_tables(kinds: list[str], names: dict) -> str:
    """The keyword arguments of the generated tiny run's ``tiny_experiment`` call."""
    tables = {}
    for kind in kinds:
        if kind == "optimization":
            tables.setdefault("optimizations", {})[names[kind]] = {}
        else:
            section = "train" if kind == "loss" else "model"
            tables.setdefault(section, {})[kind] = {"name": names[kind]}
    return ",\n        ".join(f"{key}={json.dumps(value)}" for key, value in tables.items())


def module(header: str, part: str, kinds: list[str], values: dict) -> str:
    """A generated module: its header with the imports its kinds need, then each kind's
    part."""
    needs = IMPORTS[part]
    lines = {line for key in (None, *kinds) for line in needs.get(key, ())}
    imports = "\n".join(sorted(lines, key=lambda line: (line.startswith("from"), line)))
    text = render(header, {**values, "imports": imports})
    return text + "".join(render(f"{kind}/{part}", values) for kind in kinds)


def render(name: str, values: dict) -> str:
    return Template((TEMPLATES / f"{name}.tmpl").read_text(encoding="utf-8")).substitute(values)
