"""The component registry: plugins call ``register(name, factory, options=OptionsClass)``."""

import difflib
import functools
from collections.abc import Callable

import attrs

from cm.errors import PluginError
from cm.hookspecs import KINDS
from cm.plugins import PluginFailure, PluginInfo, Plugins, installed_plugins


@attrs.frozen
class NoOptions:
    """Options class of a component that takes no options."""


@attrs.frozen
class Component:
    kind: str
    name: str
    factory: Callable
    options: type
    provider: PluginInfo

    def build(self, options=None, **kwargs):
        """Call the factory with its options (defaults when None) and runtime arguments."""
        return self.factory(self.options() if options is None else options, **kwargs)


def suggest(name, known):
    """A ``; did you mean 'x'?`` hint, or an empty string when nothing is close."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


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
            if self.failures:
                failed = ", ".join(sorted({f.info.name for f in self.failures}))
                error.args = (f"{error}; plugins that failed to load: {failed} "
                              "(see `cm plugins`)",)
            raise error
        return table[name]

    def names(self, kind) -> list[str]:
        return sorted(self.components[kind])


def _registrar(kind, table, provider, added):
    def register(name, factory, options=NoOptions):
        if not isinstance(name, str) or not name:
            raise TypeError(f"{kind} name must be a non-empty string, got {name!r}")
        if not attrs.has(options):
            raise TypeError(f"{kind} {name!r}: options must be an attrs class, got {options!r}")
        if name in table:
            raise PluginError(
                f"{kind} {name!r} is registered twice: by {table[name].provider} and by "
                f"{provider}; uninstall one of them or disable one with "
                f"CM_DISABLE_PLUGINS={provider.name}"
            )
        table[name] = Component(kind, name, factory, options, provider)
        added.append(name)

    return register


def build_registry(plugins: Plugins) -> Registry:
    """Ask every plugin to register its components; a plugin whose hook raises is recorded
    as failed and its half-registered components removed. Duplicate names are an error."""
    components = {kind: {} for kind in KINDS}
    for kind, hook_name in KINDS.items():
        table = components[kind]
        for impl in getattr(plugins.manager.hook, hook_name).get_hookimpls():
            provider = plugins.loaded.get(impl.plugin_name) or PluginInfo(
                impl.plugin_name, "unknown", "unknown"
            )
            added = []
            try:
                impl.function(register=_registrar(kind, table, provider, added))
            except PluginError:
                raise
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
                for name in added:
                    del table[name]
                error = f"{hook_name} raised {type(exc).__name__}: {exc}"
                plugins.failures.append(PluginFailure(provider, error))
    return Registry(components, plugins)


@functools.cache
def get_registry() -> Registry:
    """The registry of the installed plugins, built once per process."""
    return build_registry(installed_plugins())
