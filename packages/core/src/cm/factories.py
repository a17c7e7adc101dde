"""A component's factory, imported and checked against its kind's contract
(``cm.contracts.FACTORIES``): the ``"module:attr"`` string names an importable module and
one of its attributes, and that attribute can be called as ``factory(options, **keywords)``.
Checked when a run builds the component, for the components an experiment uses before
any work (``cm config validate``, ``cm run``, ``cm sweep``: ``cm.preflight``) and for all of
them by ``cm plugins --check``; a failure is a ``FactoryError`` naming the plugin, the
component, the factory and the fix."""

import importlib
import inspect

from cm.config.schema import used_components
from cm.contracts import FACTORIES
from cm.errors import PluginError, suggest


class FactoryError(PluginError):
    def __init__(self, component, problem):
        factory = component.factory
        shown = repr(factory) if isinstance(factory, str) else getattr(
            factory, "__qualname__", type(factory).__name__)
        super().__init__(
            f"{component.kind} {component.name!r} from plugin {component.provider}: its "
            f"factory {shown} {problem}; fix the factory given to register() (a callable, or "
            "'module:attr' naming an importable module and its attribute), or disable the "
            f"plugin with CM_DISABLE_PLUGINS={component.provider.name}")


def import_factory(component):
    """The component's factory as a callable, imported when it is a ``"module:attr"``."""
    factory = component.factory
    if isinstance(factory, str):
        module_name, _, attr = factory.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - whatever the plugin's module raises
            raise FactoryError(component, f"cannot be imported ({type(exc).__name__}: "
                                          f"{exc})") from exc
        if not hasattr(module, attr):
            raise FactoryError(component, no_attribute(module_name, attr, dir(module)))
        factory = getattr(module, attr)
    if not callable(factory):
        raise FactoryError(component, f"is not callable (it is a {type(factory).__name__})")
    check_call(component, runtime_signature(factory))
    return factory


def check_factories(experiment, registry) -> None:
    """Import the factory of every component ``experiment`` uses; one ``PluginError``
    lists each that does not check out."""
    problems = []
    for _, spec in used_components(experiment):
        try:
            import_factory(registry.get(spec.kind, spec.name))
        except FactoryError as error:
            problems += [str(error)] if str(error) not in problems else []
    if problems:
        raise PluginError("\n".join(problems))


def no_attribute(module_name, attr, names) -> str:
    public = [name for name in names if not name.startswith("_")]
    return f"names {attr!r}, which module {module_name!r} does not define{suggest(attr, public)}"


def check_call(component, signature) -> None:
    """Fail when ``signature`` cannot take the call its kind's contract makes."""
    protocol = FACTORIES.get(component.kind)
    if protocol is None or signature is None:
        return
    keywords = [name for name, parameter in inspect.signature(protocol.__call__).parameters
                .items() if parameter.kind is parameter.KEYWORD_ONLY]
    try:
        signature.bind(None, **dict.fromkeys(keywords))
    except TypeError as exc:
        call = ", ".join(["options", *(f"{name}=..." for name in keywords)])
        raise FactoryError(component, f"cannot be called as cm.contracts."
                                      f"{protocol.__name__} says, factory({call}): {exc}") from exc


def runtime_signature(factory) -> inspect.Signature | None:
    try:
        return inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins have none
        return None
