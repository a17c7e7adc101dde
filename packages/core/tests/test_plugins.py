"""Plugin discovery through real entry points of (fake, on-disk) distributions."""

import importlib.metadata as md
import textwrap

import pytest

from cm.errors import PluginError
from cm.plugins import discover, installed_plugins
from cm.registry import UnknownComponent, build_registry

GOOD = """
import attrs
from cm.hookspecs import hookimpl

@attrs.frozen
class Options:
    width: int = 3

@hookimpl
def register_heads(register):
    register("tiny_head", lambda options, **kw: options.width, options=Options)

@hookimpl
def register_poolings(register):
    register("first", lambda options, **kw: "first")
"""

BROKEN_IMPORT = "raise ImportError('needs a library that is not installed')\n"

BROKEN_HOOK = """
from cm.hookspecs import hookimpl

@hookimpl
def register_heads(register):
    register("half_registered", object)
    raise RuntimeError("boom while registering")
"""

DUPLICATE = """
from cm.hookspecs import hookimpl

@hookimpl
def register_heads(register):
    register("tiny_head", object)
"""


def make_distribution(root, dist, version, plugin, module, source):
    """Write an installed-looking distribution (module + dist-info) under ``root``."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[cm]\n{plugin} = {module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fake site-packages directory on sys.path; returns a function adding distributions."""
    monkeypatch.syspath_prepend(str(tmp_path))
    made = []

    def add(dist, version, plugin, module, source):
        make_distribution(tmp_path, dist, version, plugin, module, source)
        made.append(module)

    yield add, tmp_path


def entry_points(path):
    return [ep for dist in md.distributions(path=[str(path)]) for ep in dist.entry_points
            if ep.group == "cm"]


def test_discovery_reads_name_distribution_and_version(site):
    add, path = site
    add("cm-good", "1.2.3", "good", "cm_test_good", GOOD)
    plugins = discover(entry_points(path))
    registry = build_registry(plugins)
    head = registry.get("head", "tiny_head")
    assert (head.provider.name, head.provider.distribution, head.provider.version) == (
        "good", "cm-good", "1.2.3")
    assert head.build(None) == 3  # defaults of the options class are used
    assert registry.names("pooling") == ["first"]
    assert plugins.failures == []


def test_broken_import_is_reported_and_others_keep_working(site):
    add, path = site
    add("cm-good", "1.0", "good", "cm_test_good2", GOOD)
    add("cm-broken", "0.9", "broken", "cm_test_broken", BROKEN_IMPORT)
    plugins = discover(entry_points(path))
    registry = build_registry(plugins)
    assert registry.names("head") == ["tiny_head"]
    [failure] = plugins.failures
    assert (failure.info.name, failure.info.distribution, failure.info.version) == (
        "broken", "cm-broken", "0.9")
    assert "ImportError: needs a library that is not installed" in failure.error


def test_hook_that_raises_is_isolated_and_rolled_back(site):
    add, path = site
    add("cm-good", "1.0", "good", "cm_test_good3", GOOD)
    add("cm-halfway", "2.0", "halfway", "cm_test_halfway", BROKEN_HOOK)
    registry = build_registry(discover(entry_points(path)))
    assert registry.names("head") == ["tiny_head"]  # half_registered was removed
    [failure] = registry.failures
    assert failure.info.distribution == "cm-halfway"
    assert "register_heads raised RuntimeError: boom while registering" in failure.error


def test_duplicate_component_names_name_both_providers(site):
    add, path = site
    add("cm-good", "1.0", "good", "cm_test_good4", GOOD)
    add("cm-copycat", "0.1", "copycat", "cm_test_copycat", DUPLICATE)
    with pytest.raises(PluginError) as info:
        build_registry(discover(entry_points(path)))
    message = str(info.value)
    assert "head 'tiny_head' is registered twice" in message
    assert "cm-good 1.0" in message and "cm-copycat 0.1" in message
    assert "CM_DISABLE_PLUGINS=" in message


def test_allowlist_and_blocklist(site):
    add, path = site
    add("cm-good", "1.0", "good", "cm_test_good5", GOOD)
    add("cm-copycat", "0.1", "copycat", "cm_test_copycat2", DUPLICATE)
    only_good = discover(entry_points(path), allow={"good"})
    assert list(only_good.loaded) == ["good"]
    assert [i.name for i in only_good.excluded] == ["copycat"]
    blocked = discover(entry_points(path), block={"good"})
    assert list(blocked.loaded) == ["copycat"]
    assert build_registry(blocked).get("head", "tiny_head").provider.distribution == "cm-copycat"


def test_environment_lists_apply_to_installed_plugins(monkeypatch):
    installed_plugins.cache_clear()
    monkeypatch.setenv("CM_PLUGINS", "core, heads")
    try:
        plugins = installed_plugins()
        assert set(plugins.loaded) == {"core", "heads"}
        assert {"optimizations", "tracking"} <= {i.name for i in plugins.excluded}
        monkeypatch.delenv("CM_PLUGINS")
        monkeypatch.setenv("CM_DISABLE_PLUGINS", "heads")
        installed_plugins.cache_clear()
        assert "heads" not in installed_plugins().loaded
        assert "core" in installed_plugins().loaded
    finally:
        installed_plugins.cache_clear()


def test_unknown_component_lists_known_names_and_a_close_match(site):
    add, path = site
    add("cm-good", "1.0", "good", "cm_test_good6", GOOD)
    registry = build_registry(discover(entry_points(path)))
    with pytest.raises(UnknownComponent) as info:
        registry.get("head", "tiny_haed")
    assert str(info.value) == (
        "'tiny_haed' is not a registered head (known: tiny_head); did you mean 'tiny_head'?")


def test_options_must_be_an_attrs_class(site):
    add, path = site
    add("cm-sloppy", "1.0", "sloppy", "cm_test_sloppy", """
from cm.hookspecs import hookimpl

@hookimpl
def register_losses(register):
    register("plain", object, options=dict)
""")
    registry = build_registry(discover(entry_points(path)))
    assert registry.names("loss") == []
    assert "options must be an attrs class" in registry.failures[0].error
