"""Plugin discovery through real entry points of (fake, on-disk) distributions."""

import importlib.metadata as md

import pytest
from click.testing import CliRunner

from cm.cli.main import cli
from cm.cli.plugins_cmd import listing
from cm.errors import PluginError
from cm.plugins import discover, installed_plugins
from cm.registry import UnknownComponent, build_registry, get_registry

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


def test_every_duplicate_name_is_a_failure_of_the_later_plugin(site):
    add, path = site
    add("cm-good", "1.0", "good", "cm_test_good4", GOOD)
    add("cm-copycat", "0.1", "later", "cm_test_copycat", DUPLICATE + """
@hookimpl
def register_poolings(register):
    register("first", object)
    register("second", lambda options, **kw: "second")
""")
    # plugins register in the order of their entry-point names: 'good' before 'later'
    registry = build_registry(discover(entry_points(path)))
    assert registry.get("head", "tiny_head").provider.distribution == "cm-good"  # first kept
    assert registry.get("pooling", "first").provider.distribution == "cm-good"
    assert registry.get("pooling", "second").provider.distribution == "cm-copycat"
    assert [(f.info.name, f.error) for f in registry.failures] == [
        ("later", "head 'tiny_head' is already registered by good (cm-good 1.0); this one "
                    "is left out: rename it, or disable this plugin with "
                    "CM_DISABLE_PLUGINS=later"),
        ("later", "pooling 'first' is already registered by good (cm-good 1.0); this one "
                    "is left out: rename it, or disable this plugin with "
                    "CM_DISABLE_PLUGINS=later")]
    assert listing(registry)["components"]["head"][0]["plugin"] == "good"  # cm plugins works


def test_a_misspelled_hook_fails_its_plugin(site):
    add, path = site
    add("cm-typo", "1.0", "typo", "cm_test_typo", """
from cm.hookspecs import hookimpl

@hookimpl
def register_head(register):
    register("never", object)

@hookimpl
def register_losses(register):
    register("not_registered_either", object)
""")
    plugins = discover(entry_points(path))
    assert "typo" not in plugins.loaded
    [failure] = plugins.failures
    assert failure.error.startswith("register_head is not a cm hook; did you mean "
                                    "'register_heads'? (hooks: ")
    assert build_registry(plugins).names("loss") == []


def test_options_defaults_must_decode_as_declared(site):
    add, path = site
    add("cm-stringly", "1.0", "stringly", "cm_test_stringly", """
import attrs
from cm.hookspecs import hookimpl

@attrs.frozen
class Options:
    width: int = "128"

@hookimpl
def register_heads(register):
    register("stringly", object, options=Options)
""")
    registry = build_registry(discover(entry_points(path)))
    assert registry.names("head") == []
    [failure] = registry.failures
    assert failure.error == (
        "register_heads raised TypeError: head 'stringly': the defaults of Options do not "
        "decode as its own fields declare ($.width: expected integer, got string '128'); "
        "fix the default or the annotation")


LACKING = """
from torch import nn
from cm.hookspecs import hookimpl

@hookimpl
def register_poolings(register):
    register("flat", lambda options, hidden_size, num_layers: nn.Identity())

@hookimpl
def register_losses(register):
    register("plain", lambda options, pos_weight: nn.BCEWithLogitsLoss())
"""


def test_a_component_lacking_its_contract_fails_naming_the_plugin(site):
    add, path = site
    add("cm-lacking", "0.2", "lacking", "cm_test_lacking", LACKING)
    registry = build_registry(discover(entry_points(path)))
    with pytest.raises(PluginError) as info:
        registry.get("pooling", "flat").build(hidden_size=8, num_layers=1)
    assert str(info.value) == (
        "pooling 'flat' from plugin lacking (cm-lacking 0.2): its factory returned Identity, "
        "which lacks out_features (required of every pooling: see cm.contracts.Pooling); fix "
        "the plugin, or disable it with CM_DISABLE_PLUGINS=lacking")
    with pytest.raises(PluginError, match="which lacks num_logits, probabilities "):
        registry.get("loss", "plain").build(pos_weight=None)


def test_cm_plugins_verbose_shows_where_a_plugin_failed(site, monkeypatch):
    add, path = site
    add("cm-halfway", "2.0", "halfway", "cm_test_halfway2", BROKEN_HOOK)
    monkeypatch.setenv("CM_PLUGINS", "halfway")
    installed_plugins.cache_clear()
    get_registry.cache_clear()
    try:
        plain = CliRunner().invoke(cli, ["plugins"])
        verbose = CliRunner().invoke(cli, ["plugins", "--verbose"])
    finally:
        installed_plugins.cache_clear()
        get_registry.cache_clear()
    assert plain.exit_code == 0 and verbose.exit_code == 0
    assert "failed plugin halfway (cm-halfway 2.0): register_heads raised RuntimeError" \
        in plain.output
    assert "Traceback" not in plain.output and "--verbose" in plain.output
    assert "Traceback (most recent call last)" in verbose.output
    assert 'cm_test_halfway2.py", line 7, in register_heads' in verbose.output


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


LAZY = """
import attrs
from cm.hookspecs import hookimpl

@attrs.frozen
class Options:
    width: int = 3

@hookimpl
def register_heads(register):
    register("lazy_head", "cm_test_lazy_impl:make", options=Options)
"""

LAZY_IMPL = """
BUILT = []

def make(options, **kwargs):
    BUILT.append(options.width)
    return options.width * 2
"""


def test_a_module_attr_factory_is_imported_only_when_built(site):
    import sys

    add, path = site
    add("cm-lazy", "1.0", "lazy", "cm_test_lazy", LAZY)
    (path / "cm_test_lazy_impl.py").write_text(LAZY_IMPL)
    head = build_registry(discover(entry_points(path))).get("head", "lazy_head")
    assert "cm_test_lazy_impl" not in sys.modules
    assert head.build(None) == 6
    assert sys.modules["cm_test_lazy_impl"].BUILT == [3]


@pytest.mark.parametrize("factory", ["no_colon", "module:", ":attr", "module:not-a-name", 3])
def test_a_factory_must_be_callable_or_a_module_attr_string(site, factory):
    add, path = site
    add("cm-bad", "1.0", "bad", f"cm_test_bad_{abs(hash(str(factory)))}", f"""
from cm.hookspecs import hookimpl

@hookimpl
def register_losses(register):
    register("bad", {factory!r})
""")
    registry = build_registry(discover(entry_points(path)))
    assert registry.names("loss") == []
    assert "factory must be a callable or a 'module:attr' string" in registry.failures[0].error


COMMANDS = """
import click
from cm.hookspecs import hookimpl

@click.command()
def hello():
    click.echo("hello from a plugin")

@hookimpl
def register_commands(cli):
    cli.add_command(hello)
"""

COMMAND_CLASH = """
import click
from cm.hookspecs import hookimpl

@hookimpl
def register_commands(cli):
    cli.add_command(click.Command("run", callback=lambda: None))
    cli.add_command(click.Command("extra", callback=lambda: None))
"""

COMMAND_CRASH = """
from cm.hookspecs import hookimpl

@hookimpl
def register_commands(cli):
    raise RuntimeError("no commands today")
"""


COMMAND_PATCH = """
import click
from cm.hookspecs import hookimpl

@hookimpl
def register_commands(cli):
    run = cli.commands["run"]
    run.params.append(click.Option(["--sneaky"]))
    run.callback = lambda sneaky: click.echo("patched")
    cli.add_command(click.Command("mine", callback=lambda: None))
"""


def test_a_plugin_that_patches_a_command_is_rolled_back_whole(site):
    """Changing an existing command's parameters or callback in place is refused like
    replacing it: the plugin fails and the command is as it was, its own additions gone."""
    import click
    from click.testing import CliRunner

    from cm.plugins import add_commands

    add, path = site
    add("cm-patch", "1.0", "patch", "cm_test_patch", COMMAND_PATCH)
    plugins = discover(entry_points(path))

    @click.group()
    def cli():
        pass

    callback = lambda fast: click.echo("core run")  # noqa: E731
    run = click.Command("run", callback=callback, params=[click.Option(["--fast"],
                                                                       is_flag=True)])
    cli.add_command(run)
    add_commands(plugins, cli)
    assert sorted(cli.commands) == ["run"] and cli.commands["run"] is run
    assert [p.name for p in run.params] == ["fast"] and run.callback is callback
    assert CliRunner().invoke(cli, ["run"]).output == "core run\n"
    assert "changes the command(s) run" in plugins.failures[0].error


def test_no_installed_plugin_changes_an_existing_command():
    """The installed plugins (cm-tracking: sweep, replay) only add commands: every core
    command keeps its object, parameters and callback."""
    import click

    from cm.cli.main import cli
    from cm.plugins import add_commands, command_state

    group = click.Group("cm", commands={name: cli.commands[name] for name in
                                        ("plugins", "config", "data", "run", "predict",
                                         "bench", "compare")})
    before = command_state(group)
    plugins = installed_plugins()
    failures = len(plugins.failures)
    add_commands(plugins, group)
    assert plugins.failures[failures:] == []
    assert {name: command_state(group)[name] for name in before} == before
    assert {"sweep", "replay"} <= set(group.commands)


def test_hook_register_commands(site):
    """Plugins add commands through the hook; a broken or clashing one is reported."""
    import click
    from click.testing import CliRunner

    from cm.plugins import add_commands

    add, path = site
    add("cm-hello", "1.0", "hello", "cm_test_hello", COMMANDS)
    add("cm-clash", "1.0", "clash", "cm_test_clash", COMMAND_CLASH)
    add("cm-crash", "1.0", "crash", "cm_test_crash", COMMAND_CRASH)
    plugins = discover(entry_points(path))

    @click.group()
    def cli():
        pass

    run = click.Command("run", callback=lambda: click.echo("core run"))
    cli.add_command(run)
    add_commands(plugins, cli)
    assert sorted(cli.commands) == ["hello", "run"]  # the clashing plugin's are put back
    assert cli.commands["run"] is run
    assert CliRunner().invoke(cli, ["hello"]).output == "hello from a plugin\n"
    errors = {f.info.name: f.error for f in plugins.failures}
    assert errors == {
        "clash": "register_commands raised ValueError: it replaces or changes the command(s) "
                 "run; add commands of its own",
        "crash": "register_commands raised RuntimeError: no commands today"}


def test_registry_build_passes_the_spec_options_and_runtime_arguments():
    from cm.builtin.options import BCEOptions
    from cm.config.schema import LossSpec

    loss = get_registry().build(LossSpec("bce", BCEOptions(auto_pos_weight=False)),
                                pos_weight=3.0)
    assert loss.pos_weight is None  # auto_pos_weight off: the runtime pos_weight is ignored
    assert get_registry().build(LossSpec("bce", BCEOptions()), pos_weight=3.0).pos_weight == 3.0


def test_no_source_builds_a_component_but_through_registry_build():
    """``registry.get(kind, name).build(...)`` written inline is the second way to build one:
    every site calls ``Registry.build(spec, **kwargs)`` (which alone calls ``self.get``)."""
    import ast
    from pathlib import Path

    inline = []
    for path in Path(__file__).resolve().parents[3].glob("packages/*/src/**/*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "build" and isinstance(node.func.value, ast.Call)
                    and isinstance(node.func.value.func, ast.Attribute)
                    and node.func.value.func.attr == "get"
                    and getattr(node.func.value.func.value, "id", "") != "self"):
                inline.append(f"{path.name}:{node.lineno}")
    assert inline == []
