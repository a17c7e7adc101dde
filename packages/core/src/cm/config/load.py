"""Reading experiment files: ``base`` inheritance, ``--set`` overrides, then decoding."""

import re
import tomllib
from pathlib import Path

from cm.config.decode import ConfigError, decode
from cm.config.schema import Experiment
from cm.errors import UserError
from cm.textfile import read_text

_KEY_PART = re.compile(r'"([^"]*)"|([^.]+)')


def read_toml(path: Path) -> dict:
    text = read_text(path, "experiment file")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None


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


def read_with_bases(path: Path, chain=()) -> dict:
    """The file's table merged over its ``base`` chain (paths relative to each file)."""
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise UserError(f"{path}: 'base' inheritance loops: {cycle}")
    raw = read_toml(path)
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise UserError(f"{path}: 'base' must be a path string, got {base!r}")
    base_path = path.parent / base
    if not base_path.exists():
        raise UserError(f"{path}: base file {base!r} not found (looked at {base_path})")
    return merge(read_with_bases(base_path, (*chain, path)), raw)


class BadKey(UserError):
    """A dotted key that cannot be split into table names."""


def parse_key(dotted: str) -> list[str]:
    """``a.b."c.d"`` -> ``["a", "b", "c.d"]``."""
    parts = [m.group(1) if m.group(1) is not None else m.group(2)
             for m in _KEY_PART.finditer(dotted)]
    if not parts or "".join(parts) == "" or any(p == "" for p in parts):
        raise BadKey(f"{dotted!r}: expected a dotted key like train.lr")
    return parts


def parse_value(text: str):
    """A TOML value (``3e-5``, ``true``, ``[1, 2]``, ``{ name = "mlp" }``); bare words are
    taken as strings so ``--set model.backbone=/models/x`` works without quotes."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


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


def apply_overrides(raw: dict, overrides) -> dict:
    """Apply ``key=value`` overrides to a raw config dict (returns a new dict)."""
    pairs = []
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise UserError(f"--set {item!r}: expected key=value, e.g. --set train.lr=3e-5")
        try:
            parse_key(key.strip())
        except BadKey as exc:
            raise UserError(f"--set {exc}") from None
        pairs.append((key.strip(), parse_value(text.strip())))
    return set_keys(raw, pairs)


def load_raw(path, overrides=()) -> dict:
    return apply_overrides(read_with_bases(Path(path)), overrides)


def load_experiment(path, overrides=(), *, registry) -> Experiment:
    """Read, inherit, override and strictly decode an experiment file, its components looked
    up in ``registry``."""
    return decode(load_raw(path, overrides), source=str(path), registry=registry)


__all__ = ["ConfigError", "apply_overrides", "load_experiment", "load_raw", "merge", "set_keys"]
