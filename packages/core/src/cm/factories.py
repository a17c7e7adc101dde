"""A component's factory, found and checked against its kind's contract
(``cm.contracts.FACTORIES``): the ``"module:attr"`` string names an importable module and
one of its attributes, and that attribute can be called as ``factory(options, **keywords)``.

``import_factory`` imports it (a run building the component, ``cm plugins --check``);
``find_factory`` reads the module's source instead (``cm config validate`` must not pay for
importing torch). Both fail with a ``FactoryError`` naming the plugin, the component, the
factory and the fix."""

import ast
import importlib
import importlib.util
import inspect
from pathlib import Path

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


def find_factory(component) -> None:
    """``import_factory``'s checks, made on the source of the factory's module without
    importing it (a factory whose signature the source does not show is taken as is)."""
    if not isinstance(component.factory, str):
        import_factory(component)  # a callable: already imported
        return
    module_name, _, attr = component.factory.partition(":")
    try:
        spec = importlib.util.find_spec(module_name)
    except Exception as exc:  # noqa: BLE001 - a parent package that fails to import
        raise FactoryError(component, f"cannot be imported ({type(exc).__name__}: "
                                      f"{exc})") from exc
    if spec is None:
        raise FactoryError(component, "cannot be imported (ModuleNotFoundError: No module "
                                      f"named {module_name!r})")
    if not (spec.origin or "").endswith(".py"):
        return  # a compiled or namespace module: nothing to read
    try:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"), spec.origin)
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise FactoryError(component, f"cannot be imported ({type(exc).__name__}: "
                                      f"{exc})") from exc
    defined = top_level_names(tree)
    if defined is None:
        return  # a star import or a module __getattr__: only importing can tell
    if attr not in defined:
        raise FactoryError(component, no_attribute(module_name, attr, defined))
    check_call(component, defined[attr])


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


def top_level_names(tree: ast.Module) -> dict[str, inspect.Signature | None] | None:
    """Each name a module defines at its top level, with the call signature its source
    shows (a plain function, or a class's own ``__init__``) or None; None for a module
    whose names only importing can tell."""
    names = {}
    for node in statements(tree.body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = source_signature(node)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names[alias.asname or alias.name.split(".")[0]] = None
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update((leaf.id, None) for target in targets for leaf in ast.walk(target)
                         if isinstance(leaf, ast.Name))
    return None if "__getattr__" in names else names


def statements(body):
    """The statements of a module, those inside top-level if/try/with/for blocks too."""
    for node in body:
        yield node
        for block in ("body", "orelse", "finalbody", "handlers"):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                yield from statements(getattr(node, block, []))


def source_signature(node) -> inspect.Signature | None:
    if node.decorator_list:
        return None  # a decorator (attrs, functools.wraps ...) may change the call
    if isinstance(node, ast.ClassDef):
        init = next((item for item in node.body if isinstance(item, ast.FunctionDef)
                     and item.name == "__init__" and not item.decorator_list), None)
        if init is None:
            return None  # inherited: the source here does not show it
        signature = arguments_signature(init.args)
        return signature.replace(parameters=list(signature.parameters.values())[1:])
    return arguments_signature(node.args)


def arguments_signature(args: ast.arguments) -> inspect.Signature:
    parameter = inspect.Parameter
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    parameters = [parameter(arg.arg, parameter.POSITIONAL_ONLY if i < len(args.posonlyargs)
                            else parameter.POSITIONAL_OR_KEYWORD,
                            default=parameter.empty if default is None else None)
                  for i, (arg, default) in enumerate(zip(positional, defaults, strict=True))]
    if args.vararg:
        parameters.append(parameter(args.vararg.arg, parameter.VAR_POSITIONAL))
    parameters += [parameter(arg.arg, parameter.KEYWORD_ONLY,
                             default=parameter.empty if default is None else None)
                   for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    if args.kwarg:
        parameters.append(parameter(args.kwarg.arg, parameter.VAR_KEYWORD))
    return inspect.Signature(parameters)
