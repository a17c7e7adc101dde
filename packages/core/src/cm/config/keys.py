"""Dotted config keys (``train.lr``, ``hpo.space."train.lr".low``) and the one way a raw
config is patched at them: ``--set``, bench configurations, sweep spaces and trials."""

import re

from cm.errors import UserError

_PART = r'"[^"]+"|[^."]+'
_DOTTED = re.compile(rf"(?:{_PART})(?:\.(?:{_PART}))*")


def merge(base: dict, child: dict) -> dict:
    """Deep-merge ``child`` over ``base``. A component table whose ``name`` changes replaces
    the base table whole, so options of the old component do not leak into the new one."""
    merged = dict(base)
    for key, value in child.items():
        old = merged.get(key)
        same_component = not (
            isinstance(old, dict) and isinstance(value, dict)
            and "name" in value and old.get("name") != value["name"]
        )
        if isinstance(old, dict) and isinstance(value, dict) and same_component:
            merged[key] = merge(old, value)
        else:
            merged[key] = value
    return merged


class BadKey(UserError):
    """A dotted key that cannot be split into table names."""


def parse_key(dotted: str) -> list[str]:
    """``a.b."c.d"`` -> ``["a", "b", "c.d"]``. Every part is a name: an empty one
    (``train..lr``, ``.train.lr``, ``train.lr.``) is refused, never skipped."""
    if not _DOTTED.fullmatch(dotted):
        raise BadKey(f"{dotted!r}: not a dotted key: names joined by single dots, none "
                     'empty, e.g. train.lr or hpo.space."train.lr"')
    return [part.strip('"') for part in re.findall(_PART, dotted)]


def set_keys(raw: dict, values) -> dict:
    """``raw`` with each dotted key set to its value (``values``: a dict or (key, value)
    pairs); returns a new dict. The one patcher behind ``--set``, bench configurations and
    sweep trials. Component names go first: a new name replaces its table, which must not
    drop options set beside it."""
    items = list(values.items() if isinstance(values, dict) else values)
    result = dict(raw)
    for key, value in sorted(items, key=lambda item: not item[0].endswith(".name")):
        *parents, leaf = parse_key(key)
        patch = {leaf: value}
        for part in reversed(parents):
            patch = {part: patch}
        result = merge(result, patch)
    return result
