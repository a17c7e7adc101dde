"""The ``heads`` entry point: discovery, registration and TOML-friendly options."""

import importlib.metadata as md
import pathlib
import tomllib
import types
import typing

import attrs
import pytest
import tomli_w

from cm.config.decode import make_converter
from cm.config.dump import to_dict
from cm.plugins import discover
from cm.registry import build_registry

ENTRY_POINT = md.EntryPoint(name="heads", value="cm_heads.plugin", group="cm")
PYPROJECT = pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml"

HEADS = ["linear", "mlp"]
POOLINGS = ["attention", "cls", "cls_mean", "max", "mean", "weighted_layers"]


@pytest.fixture(scope="module")
def registry():
    return build_registry(discover(entry_points=[ENTRY_POINT]))


def test_entry_point_loads_without_failures(registry):
    assert list(registry.plugins.loaded) == ["heads"]
    assert registry.failures == []


def test_registers_exactly_the_heads_and_poolings(registry):
    assert registry.names("head") == HEADS
    assert registry.names("pooling") == POOLINGS
    for kind in ("loss", "optimizer", "scheduler", "optimization", "dataset", "tracker"):
        assert registry.names(kind) == [], kind
    providers = {c.provider.name for kind in ("head", "pooling")
                 for c in registry.components[kind].values()}
    assert providers == {"heads"}


def test_pyproject_declares_the_entry_point():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert project["name"] == "cm-heads"
    assert project["version"] == "0.1.0"
    assert project["entry-points"]["cm"] == {"heads": ENTRY_POINT.value}
    assert "cm-core" in project["dependencies"]
    assert "torch>=2.2" in project["dependencies"]


def test_plugin_module_holds_only_hookimpls():
    module = ENTRY_POINT.load()
    hooks = {name for name, value in vars(module).items()
             if callable(value) and hasattr(value, "cm_impl")}
    assert hooks == {"register_heads", "register_poolings"}


_SCALARS = {int, float, str, bool}


def _toml_friendly(annotation):
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation in _SCALARS:
        return True
    if origin is typing.Literal:
        return all(type(a) in _SCALARS for a in args)
    if origin in (list, tuple):
        return all(a is Ellipsis or a in _SCALARS for a in args)
    if origin in (typing.Union, types.UnionType):
        return type(None) in args and all(a is type(None) or _toml_friendly(a) for a in args)
    return False


@pytest.mark.parametrize("kind,name", [("head", n) for n in HEADS]
                         + [("pooling", n) for n in POOLINGS])
def test_options_are_toml_friendly_and_round_trip(registry, kind, name):
    options_cls = registry.get(kind, name).options
    assert attrs.has(options_cls) and attrs.fields(options_cls) is not None
    hints = typing.get_type_hints(options_cls)
    for attribute in attrs.fields(options_cls):
        assert _toml_friendly(hints[attribute.name]), (name, attribute.name, hints[attribute.name])
        assert attribute.default is not attrs.NOTHING, (name, attribute.name)
    defaults = options_cls()
    text = tomli_w.dumps(to_dict(defaults))
    decoded = make_converter(registry).structure(tomllib.loads(text), options_cls)
    assert decoded == defaults
    hash(decoded)  # frozen options must stay hashable (no list fields)


def test_mlp_options_decode_from_toml(registry):
    options_cls = registry.get("head", "mlp").options
    raw = tomllib.loads('hidden_dims = [512, 128]\nactivation = "gelu"\nlayer_norm = true\n')
    options = make_converter(registry).structure(raw, options_cls)
    assert options.hidden_dims == (512, 128)
    assert options.activation == "gelu"
    assert options.layer_norm is True
    assert options.dropout == 0.1
    assert tomllib.loads(tomli_w.dumps(to_dict(options)))["hidden_dims"] == [512, 128]
