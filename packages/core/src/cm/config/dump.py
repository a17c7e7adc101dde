"""Writing a resolved Experiment back as TOML that ``cm`` accepts again."""

import attrs
import tomli_w

from cm.config.schema import Experiment, Spec
from cm.secrets import hidden


def to_dict(obj):
    """Plain TOML-ready data: specs become ``{name, **options}``, ``None`` is left out."""
    if isinstance(obj, Spec):
        return {"name": obj.name, **to_dict(obj.options)}
    if attrs.has(type(obj)):
        return {f.name: to_dict(v) for f in attrs.fields(type(obj))
                if (v := getattr(obj, f.name)) is not None}
    if isinstance(obj, dict):
        return {k: _named(v) if isinstance(v, Spec) else to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def _named(spec):
    """A spec inside a by-name table: its key already says the name."""
    return to_dict(spec.options)


def dumps(experiment: Experiment) -> str:
    """The TOML of ``experiment``, passwords in URIs shown as ``***`` (cm.secrets): what
    is written to files and printed."""
    return tomli_w.dumps(hidden(to_dict(experiment)))


def flatten(data: dict, prefix="") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (used for tracker params and sweep spaces)."""
    flat = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
