"""Factory strings checked before a run (cm config validate, cm run, cm plugins --check) and
failed plugins named where a config meets them, through real entry points of fake on-disk
distributions."""

import importlib.metadata as md

import pytest
from click.testing import CliRunner

from cm.cli.main import cli
from cm.errors import PluginError
from cm.factories import FactoryError, import_factory
from cm.plugins import discover, installed_plugins
from cm.registry import build_registry, get_registry

TYPO = """
from cm.hookspecs import hookimpl

@hookimpl
def register_heads(register):
    register("gated", "{module}:GatedHead")
"""

COMPONENTS = """
def GatedHead(options, *, in_features, num_logits):
    return "a head"

def Narrow(options, width):
    return "takes width, not in_features"

class Pool:
    def __init__(self, options, hidden_size, num_layers=1, **extra):
        self.out_features = hidden_size
"""

PREFIX = "head 'gated' from plugin typo (cm-typo 1.0): its factory "
FIX = ("; fix the factory given to register() (a callable, or 'module:attr' naming an "
       "importable module and its attribute), or disable the plugin with "
       "CM_DISABLE_PLUGINS=typo")


@pytest.fixture
def cli_site(site):
    """``site`` (conftest.py) holding the factories' module; ``use()`` has the CLI load its
    plugins beside the installed ones (the process's registry is rebuilt then and after
    the test)."""
    add, path = site
    (path / "cm_test_parts.py").write_text(COMPONENTS)

    def use():
        installed_plugins.cache_clear()
        get_registry.cache_clear()

    yield add, path, use
    installed_plugins.cache_clear()
    get_registry.cache_clear()


def registry_of(path):
    points = [ep for dist in md.distributions(path=[str(path)]) for ep in dist.entry_points
              if ep.group == "cm"]
    return build_registry(discover(points))


@pytest.mark.parametrize(("factory", "problem"), [
    ("cm_test_nosuch.component:GatedHead",
     "cannot be imported (ModuleNotFoundError: No module named 'cm_test_nosuch')"),
    ("cm_test_parts:GatedHaed",
     "names 'GatedHaed', which module 'cm_test_parts' does not define; did you mean "
     "'GatedHead'?"),
    ("cm_test_parts:Narrow",
     "cannot be called as cm.contracts.HeadFactory says, factory(options, in_features=..., "
     "num_logits=...): missing a required argument: 'width'"),
])
def test_a_bad_factory_is_refused_naming_plugin_component_and_string(cli_site, factory,
                                                                       problem):
    add, path, _ = cli_site
    add("cm-typo", "1.0", "typo", f"cm_test_typo_{abs(hash(factory))}",
                     TYPO.replace("{module}:GatedHead", factory))
    head = registry_of(path).get("head", "gated")
    expected = f"head 'gated' from plugin typo (cm-typo 1.0): its factory {factory!r} {problem}"
    with pytest.raises(FactoryError) as info:
        import_factory(head)
    assert str(info.value) == expected + FIX
    with pytest.raises(PluginError, match="cannot|names"):  # a run building it: exit 2
        head.build(in_features=4, num_logits=1)


def test_a_good_factory_passes_and_builds(cli_site):
    add, path, _ = cli_site
    add("cm-fine", "1.0", "fine", "cm_test_fine", """
from cm.hookspecs import hookimpl

@hookimpl
def register_heads(register):
    register("gated", "cm_test_parts:GatedHead")

@hookimpl
def register_poolings(register):
    register("pool", "cm_test_parts:Pool")
""")
    registry = registry_of(path)
    for kind, name in (("head", "gated"), ("pooling", "pool")):
        assert callable(import_factory(registry.get(kind, name)))
    assert registry.get("head", "gated").build(in_features=4, num_logits=1) == "a head"


def test_validate_and_run_refuse_a_factory_typo_with_exit_2(cli_site):
    add, path, use = cli_site
    add("cm-typo", "1.0", "typo", "cm_test_typo_cli",
                     TYPO.replace("{module}", "cm_test_nosuch.component"))
    use()
    for command in (["config", "validate"], ["run"]):
        result = CliRunner().invoke(cli, [*command, "experiments/demo-posts.toml",
                                          "--set", "model.head.name=gated"])
        assert result.exit_code == 2, result.output
        assert result.stderr == (
            f"error: {PREFIX}'cm_test_nosuch.component:GatedHead' cannot be imported "
            f"(ModuleNotFoundError: No module named 'cm_test_nosuch'){FIX}\n")


def test_plugins_check_imports_every_factory(cli_site):
    add, path, use = cli_site
    use()
    fine = CliRunner().invoke(cli, ["plugins", "--check"])
    assert fine.exit_code == 0, fine.output
    assert fine.stdout.endswith("components: every factory imports and takes its "
                                "contract's arguments\n")
    add("cm-typo", "1.0", "typo", "cm_test_typo_check",
                     TYPO.replace("{module}:GatedHead", "cm_test_parts:Narow"))
    add("cm-broken", "1.0", "broken", "cm_test_broken_check",
                     "raise ImportError('needs a library that is not installed')\n")
    use()
    bad = CliRunner().invoke(cli, ["plugins", "--check", "--kind", "head"])
    assert bad.exit_code == 2
    assert bad.stderr.splitlines() == [
        "error: plugin broken (cm-broken 1.0) failed: ImportError: needs a library that is "
        "not installed (`cm plugins --verbose` shows where)",
        "head 'gated' from plugin typo (cm-typo 1.0): its factory 'cm_test_parts:Narow' "
        "names 'Narow', which module 'cm_test_parts' does not define; did you mean "
        f"'Narrow'?{FIX}"]


BROKEN_IMPORT = """
import attrs
import cm_test_not_installed
from cm.hookspecs import hookimpl

@hookimpl
def register_heads(register):
    register("fancy", "cm_test_parts:GatedHead")
    register("linear", "cm_test_parts:GatedHead")
"""

LATER_LINEAR = """
from cm.hookspecs import hookimpl

@hookimpl
def register_heads(register):
    register("linear", "cm_test_parts:GatedHead")
"""


def test_what_a_failed_plugin_meant_to_register_is_known(cli_site):
    add, path, _ = cli_site
    add("cm-broken", "1.0", "broken", "cm_test_broken_meant", BROKEN_IMPORT)
    add("cm-typo", "1.0", "typo", "cm_test_typo_meant", """
from cm.hookspecs import hookimpl

@hookimpl
def register_head(register):
    register("misspelled", "cm_test_parts:GatedHead")
""")
    add("cm-half", "1.0", "half", "cm_test_half_meant", """
from cm.hookspecs import hookimpl

@hookimpl
def register_poolings(register):
    register("kept_then_removed", "cm_test_parts:Pool")
    raise RuntimeError("boom")
    register("never_reached", "cm_test_parts:Pool")
""")
    meant = {f.info.name: f.components for f in registry_of(path).failures}
    assert meant == {"broken": (("head", "fancy"), ("head", "linear")),
                     "typo": (("head", "misspelled"),),
                     "half": (("pooling", "kept_then_removed"), ("pooling", "never_reached"))}


def test_a_failed_plugin_is_one_warning_line_in_validate_run_and_sweep(cli_site):
    add, path, use = cli_site
    add("cm-broken", "1.0", "broken", "cm_test_broken_warn", BROKEN_IMPORT)
    use()
    warning = ("warning: plugin broken (cm-broken 1.0) failed, what it registers is left out: "
               "ModuleNotFoundError: No module named 'cm_test_not_installed' "
               "(`cm plugins --verbose` shows where)")
    valid = CliRunner().invoke(cli, ["config", "validate", "experiments/demo-posts.toml"])
    assert valid.exit_code == 0, valid.output
    assert valid.stderr.splitlines() == [warning]
    for command in ("run", "sweep"):
        result = CliRunner().invoke(cli, [command, "experiments/demo-posts.toml", "--set",
                                          "train.lr=-1"])
        assert result.exit_code == 2
        assert result.stderr.splitlines()[0] == warning


def test_a_config_naming_a_failed_plugins_component_names_that_plugin(cli_site):
    add, path, use = cli_site
    add("cm-broken", "1.0", "broken", "cm_test_broken_named", BROKEN_IMPORT)
    use()
    result = CliRunner().invoke(cli, ["config", "validate", "experiments/demo-posts.toml",
                                      "--set", "model.head.name=fancy"])
    assert result.exit_code == 2
    error = result.stderr.splitlines()[1:]
    assert error[0] == "error: experiments/demo-posts.toml: 1 problem"
    assert error[1].startswith("  $.model.head.name: 'fancy' is not a registered head (known: ")
    assert error[1].endswith(
        "; broken (cm-broken 1.0) meant to provide it and failed: ModuleNotFoundError: No "
        "module named 'cm_test_not_installed' (fix or reinstall it; `cm plugins --verbose` "
        "shows where it failed)")


@pytest.mark.parametrize(("dist", "plugin", "source", "error"), [
    ("cm-broken", "broken", BROKEN_IMPORT,
     "ModuleNotFoundError: No module named 'cm_test_not_installed'"),
    ("cm-later", "later", LATER_LINEAR, None)])
def test_a_built_in_used_in_place_of_a_failed_override_is_a_warning(cli_site, dist, plugin,
                                                                     source, error):
    add, path, use = cli_site
    add(dist, "1.0", plugin, f"cm_test_{plugin}_override", source)
    use()
    result = CliRunner().invoke(cli, ["config", "validate", "experiments/demo-posts.toml",
                                      "--set", "model.head.name=linear"])
    assert result.exit_code == 0, result.output
    linear = get_registry().get("head", "linear").provider
    assert linear.distribution == "cm-heads"
    assert result.stderr.splitlines()[1] == (
        f"warning: $.model.head: head 'linear' was meant to come from plugin {plugin} "
        f"({dist} 1.0), which failed; the one of {linear} is used instead (fix that plugin, "
        "or name another component)")
