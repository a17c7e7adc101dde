"""Reading experiment files: ``base`` inheritance, ``--set`` overrides, then decoding."""

import tomllib
from pathlib import Path

from cm.config.decode import ConfigError, decode
from cm.config.keys import BadKey, merge, parse_key, set_keys
from cm.config.schema import Experiment
from cm.errors import UserError
from cm.textfile import read_text


def read_toml(path: Path) -> dict:
    text = read_text(path, "experiment file")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None


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


def parse_value(text: str):
    """A TOML value (``3e-5``, ``true``, ``[1, 2]``, ``{ name = "mlp" }``); bare words are
    taken as strings so ``--set model.backbone=/models/x`` works without quotes."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


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


__all__ = ["ConfigError", "apply_overrides", "load_experiment", "load_raw"]
