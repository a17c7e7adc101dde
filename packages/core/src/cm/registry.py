"""The component registry: plugins call ``register(name, factory, options=OptionsClass)``.

``factory`` is a callable or a ``"module:attr"`` string imported when the component is first
built: ``cm plugins`` and ``cm config`` then list and validate every component (they only
need the attrs options classes) without importing torch."""

import functools
import os
import traceback
from collections.abc import Callable

import attrs

from cm.config.decode import structure
from cm.config.dump import to_dict
from cm.contracts import REQUIRED, missing_members
from cm.errors import PluginError, first_line, suggest
from cm.factories import import_factory
from cm.hookspecs import KINDS
from cm.plugin_intent import meant_components
from cm.plugins import ENV_LISTS, PluginFailure, PluginInfo, Plugins, installed_plugins


@attrs.frozen
class NoOptions:
    """Options class of a component that takes no options."""


@attrs.frozen
class Component:
    kind: str
    name: str
    factory: Callable | str
    options: type
    provider: PluginInfo

    def build(self, options=None, **kwargs):
        """Call the factory with its options (defaults when None) and runtime arguments;
        a factory that does not import or take its contract's arguments, or a result
        lacking what its kind's contract requires, fails naming the plugin."""
        factory = import_factory(self)
        built = factory(self.options() if options is None else options, **kwargs)
        protocol = REQUIRED.get(self.kind)
        missing = missing_members(built, protocol) if protocol else []
        if missing:
            raise PluginError(
                f"{self.kind} {self.name!r} from plugin {self.provider}: its factory returned "
                f"{type(built).__name__}, which lacks {', '.join(missing)} (required of every "
                f"{self.kind}: see cm.contracts.{protocol.__name__}); fix the plugin, or "
                f"disable it with CM_DISABLE_PLUGINS={self.provider.name}")
        return built


class UnknownComponent(PluginError, ValueError):
    def __init__(self, kind, name, known):
        listing = ", ".join(sorted(known)) or "none installed"
        super().__init__(
            f"{name!r} is not a registered {kind} (known: {listing}){suggest(name, known)}"
        )


@attrs.define
class Registry:
    """Components by kind and name, plus the plugins that failed while registering."""

    components: dict[str, dict[str, Component]]
    plugins: Plugins

    @property
    def failures(self) -> list[PluginFailure]:
        return self.plugins.failures

    def get(self, kind, name) -> Component:
        table = self.components[kind]
        if name not in table:
            error = UnknownComponent(kind, name, table)
            meant = self.failed_providers(kind, name)
            if meant:
                error.args = (f"{error}; {meant[0].info} meant to provide it and failed: "
                              f"{first_line(meant[0].error)} (fix or reinstall it; "
                              "`cm plugins --verbose` shows where it failed)",)
            elif self.failures:
                failed = ", ".join(sorted({f.info.name for f in self.failures}))
                error.args = (f"{error}; plugins that failed to load: {failed} "
                              "(see `cm plugins`)",)
            if self.plugins.excluded:
                error.args = (f"{error}; {excluded_by_env(self.plugins)}",)
            raise error
        return table[name]

    def build(self, spec, **kwargs):
        """The component ``spec`` names (a head, a loss, a tracker ...: a
        ``cm.config.schema.Spec``), built with its options and the runtime ``kwargs``: the
        one way cm builds a component."""
        return self.get(spec.kind, spec.name).build(spec.options, **kwargs)

    def names(self, kind) -> list[str]:
        return sorted(self.components[kind])

    def failed_providers(self, kind, name) -> list[PluginFailure]:
        """The failures of plugins that meant to register this component."""
        return [f for f in self.failures if (kind, name) in f.components]


def excluded_by_env(plugins: Plugins) -> str:
    """Which installed plugins the environment left out, naming the variables to fix."""
    settings = " and ".join(f"{name}={os.environ[name]!r}" for name in ENV_LISTS
                            if os.environ.get(name))
    left = ", ".join(sorted(info.name for info in plugins.excluded))
    return (f"installed plugins left out by {settings or 'the plugin allow/block lists'}: "
            f"{left}; unset {' / '.join(ENV_LISTS)} or list the plugin's entry-point name "
            "(see `cm plugins`)")


def _registrar(kind, table, provider, added, clashes):
    def register(name, factory, options=NoOptions):
        if not isinstance(name, str) or not name:
            raise TypeError(f"{kind} name must be a non-empty string, got {name!r}")
        if not (callable(factory) or _is_reference(factory)):
            raise TypeError(f"{kind} {name!r}: factory must be a callable or a 'module:attr' "
                            f"string, got {factory!r}")
        if not attrs.has(options):
            raise TypeError(f"{kind} {name!r}: options must be an attrs class, got {options!r}")
        if name in table:
            clashes.append((name, f"{kind} {name!r} is already registered by "
                                  f"{table[name].provider}; this one is left out: rename it, "
                                  "or disable this plugin with "
                                  f"CM_DISABLE_PLUGINS={provider.name}"))
            return
        problems = default_problems(options)
        if problems:
            raise TypeError(f"{kind} {name!r}: the defaults of {options.__name__} do not "
                            f"decode as its own fields declare ({'; '.join(problems)}); "
                            "fix the default or the annotation")
        table[name] = Component(kind, name, factory, options, provider)
        added.append(name)

    return register


def default_problems(options) -> list[str]:
    """Why ``options()`` written as TOML would not decode again, as ``$.field: message``
    lines (``width: int = "128"`` would be written ``width = "128"`` and then refused)."""
    try:
        defaults = options()
    except Exception as exc:  # noqa: BLE001 - reported with the component's name
        return [f"{options.__name__}() fails: {type(exc).__name__}: {exc}; every option "
                "needs a valid default"]
    empty = Registry({kind: {} for kind in KINDS}, Plugins(None))
    return structure(to_dict(defaults), options, empty)[1]


def _is_reference(factory):
    if not isinstance(factory, str):
        return False
    module, colon, attr = factory.partition(":")
    return bool(colon and module and attr.isidentifier())


def build_registry(plugins: Plugins) -> Registry:
    """Ask every plugin to register its components. A plugin whose hook raises is recorded
    as failed and its half-registered components removed; a name already taken is recorded
    as that plugin's failure (the first provider keeps it) and the others go on."""
    components = {kind: {} for kind in KINDS}
    for kind, hook_name in KINDS.items():
        table = components[kind]
        for impl in getattr(plugins.manager.hook, hook_name).get_hookimpls():
            provider = plugins.loaded.get(impl.plugin_name) or PluginInfo(
                impl.plugin_name, "unknown", "unknown"
            )
            added, clashes = [], []
            try:
                impl.function(register=_registrar(kind, table, provider, added, clashes))
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
                for name in added:
                    del table[name]
                error = f"{hook_name} raised {type(exc).__name__}: {exc}"
                plugins.failures.append(PluginFailure(provider, error, traceback.format_exc(),
                                                      _meant(kind, added, impl.plugin)))
            plugins.failures.extend(PluginFailure(provider, clash, components=((kind, name),))
                                    for name, clash in clashes)
    return Registry(components, plugins)


def _meant(kind, added, plugin) -> tuple[tuple[str, str], ...]:
    """The components of ``kind`` a plugin whose hook raised meant to register: those it
    registered before raising (rolled back), and those its source names after."""
    read = meant_components(getattr(plugin, "__name__", ""))
    return tuple(dict.fromkeys([*((kind, name) for name in added),
                                *(pair for pair in read if pair[0] == kind)]))


@functools.cache
def get_registry() -> Registry:
    """The registry of the installed plugins, built once per process."""
    return build_registry(installed_plugins())
