"""What a plugin that failed meant to register, read from its module's source (it could
not be imported, or implements a hook cm does not declare, so its hooks never ran): each
``register("name", ...)`` call with a literal name inside a registration hook, the hook's
kind from its name (a misspelled hook counts for its close match)."""

import ast
import difflib
import importlib.util
from pathlib import Path

from cm.hookspecs import KINDS


def meant_components(module_name: str) -> tuple[tuple[str, str], ...]:
    """(kind, name) of every component the plugin module's source registers by a literal
    name; empty when the source cannot be found or read."""
    try:
        spec = importlib.util.find_spec(module_name)
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - a best effort: the plugin already failed
        return ()
    kinds = {hook: kind for kind, hook in KINDS.items()}
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        hook = difflib.get_close_matches(node.name, kinds, n=1, cutoff=0.8)
        if hook:
            found += [(kinds[hook[0]], name) for name in registered_names(node)]
    return tuple(found)


def registered_names(function: ast.FunctionDef) -> list[str]:
    return [call.args[0].value for call in ast.walk(function)
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "register"
            and call.args and isinstance(call.args[0], ast.Constant)
            and isinstance(call.args[0].value, str)]
