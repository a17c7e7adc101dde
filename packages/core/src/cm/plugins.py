"""Plugin discovery: every entry point of group ``cm`` is loaded on its own, once.

Built-in components (cm-core, cm-heads, ...) register through the same entry-point group
as third-party packages, so the core cannot tell them apart. A plugin that fails to import
is recorded with its distribution and version and the others keep working.

Environment: ``CM_PLUGINS=a,b`` loads only the named entry points (allowlist);
``CM_DISABLE_PLUGINS=a,b`` skips the named ones (blocklist).
"""

import functools
import importlib.metadata as md
import os
import traceback

import attrs
import pluggy

from cm import hookspecs
from cm.errors import suggest
from cm.plugin_intent import meant_components

GROUP = "cm"
ENV_LISTS = ("CM_PLUGINS", "CM_DISABLE_PLUGINS")  # allowlist, blocklist


@attrs.frozen
class PluginInfo:
    """Where a plugin comes from: entry-point name, distribution and its version."""

    name: str
    distribution: str
    version: str

    def __str__(self):
        return f"{self.name} ({self.distribution} {self.version})"


@attrs.frozen
class PluginFailure:
    info: PluginInfo
    error: str
    traceback: str = ""  # where it failed, for ``cm plugins --verbose``
    # (kind, name) of the components it meant to register and did not
    components: tuple[tuple[str, str], ...] = ()


@attrs.define
class Plugins:
    """A plugin manager with its loaded plugins, failures and the ones left out by env."""

    manager: pluggy.PluginManager
    loaded: dict[str, PluginInfo] = attrs.Factory(dict)
    failures: list[PluginFailure] = attrs.Factory(list)
    excluded: list[PluginInfo] = attrs.Factory(list)


def _names(value):
    return {part.strip() for part in (value or "").split(",") if part.strip()}


def _info(entry_point):
    dist = entry_point.dist
    if dist is None:
        return PluginInfo(entry_point.name, "unknown", "unknown")
    return PluginInfo(entry_point.name, dist.name, dist.version)


def discover(entry_points=None, allow=None, block=frozenset()) -> Plugins:
    """Load plugins from ``entry_points`` (default: the installed ``cm`` group).

    ``allow`` (a set of names, or None for all) and ``block`` filter by entry-point name.
    """
    manager = pluggy.PluginManager(GROUP)
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(manager)
    if entry_points is None:
        entry_points = md.entry_points(group=GROUP)
    for entry_point in sorted(entry_points, key=lambda ep: ep.name):
        info = _info(entry_point)
        if (allow is not None and info.name not in allow) or info.name in block:
            plugins.excluded.append(info)
            continue
        if info.name in plugins.loaded:
            other = plugins.loaded[info.name]
            error = f"plugin name {info.name!r} is already taken by {other}"
            plugins.failures.append(PluginFailure(info, error))
            continue
        try:
            plugin = entry_point.load()
            manager.register(plugin, name=info.name)
        except Exception as exc:  # noqa: BLE001 - any import error must not take cm down
            plugins.failures.append(PluginFailure(info, f"{type(exc).__name__}: {exc}",
                                                  traceback.format_exc(),
                                                  meant_components(entry_point.module)))
            continue
        unknown = unknown_hooks(manager, plugin)
        if unknown:
            manager.unregister(plugin)
            plugins.failures.append(PluginFailure(info, "; ".join(unknown),
                                                  components=meant_components(
                                                      entry_point.module)))
            continue
        plugins.loaded[info.name] = info
    return plugins


def unknown_hooks(manager, plugin) -> list[str]:
    """A line for each ``@hookimpl`` of ``plugin`` that no cm hookspec declares (a misspelled
    hook would otherwise never be called)."""
    known = [name for name in vars(hookspecs) if hasattr(getattr(hookspecs, name), "cm_spec")]
    return [f"{caller.name} is not a cm hook{suggest(caller.name, known)} "
            f"(hooks: {', '.join(sorted(known))})"
            for caller in manager.get_hookcallers(plugin) or () if not caller.has_spec()]



@functools.cache
def installed_plugins() -> Plugins:
    """The installed plugins, loaded on first use and then reused (honours the env lists)."""
    allow_list, block_list = ENV_LISTS
    allow = _names(os.environ.get(allow_list)) or None
    return discover(allow=allow, block=_names(os.environ.get(block_list)))


def add_commands(plugins: Plugins, cli) -> None:
    """Let every plugin add its commands to ``cli`` (``register_commands``). A plugin whose
    hook raises, or that replaces or changes a command already there (its parameters or its
    callback: core commands are extended through hooks such as ``fetch_run``, not patched), is
    recorded as failed (the commands are put back as they were before it) and the others go
    on."""
    for impl in plugins.manager.hook.register_commands.get_hookimpls():
        before = command_state(cli)
        try:
            impl.function(cli=cli)
            after = command_state(cli)
            changed = sorted(name for name, state in before.items() if after.get(name) != state)
            if changed:
                raise ValueError(f"it replaces or changes the command(s) {', '.join(changed)}; "
                                 "add commands of its own")
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take cm down
            restore_commands(cli, before)
            info = plugins.loaded.get(impl.plugin_name) or PluginInfo(
                impl.plugin_name, "unknown", "unknown")
            error = f"register_commands raised {type(exc).__name__}: {exc}"
            plugins.failures.append(PluginFailure(info, error))


def command_state(cli) -> dict:
    """Each command of ``cli`` by name: the object, its parameters and its callback."""
    return {name: (command, list(command.params), command.callback)
            for name, command in cli.commands.items()}


def restore_commands(cli, state: dict) -> None:
    """``cli``'s commands as ``command_state`` saw them, parameters and callbacks included."""
    cli.commands.clear()
    for name, (command, params, callback) in state.items():
        command.params, command.callback = list(params), callback
        cli.commands[name] = command
