"""Strict decoding of a raw TOML dict into an ``Experiment``, with every error reported.

Decoding runs in two passes so that a file's errors come out together, each with its path:
1. cattrs structures the dict (unknown keys, wrong types, unknown component names); a
   value that fails is reported and left out, and the rest is structured again, so one
   wrong type hides no other problem;
2. ``_finish`` fills unset component options with their defaults and runs every attrs
   validator and ``check()`` rule (out-of-range values, cross-field rules).
Then each edge value of ``[hpo.space]`` is set at its key and checked the same way.
"""

import functools
import itertools
import math
import re
import typing
from typing import Literal

import attrs
import cattrs
from cattrs.errors import ForbiddenExtraKeysError

from cm.config.keys import set_keys
from cm.config.schema import Experiment, Spec
from cm.errors import UserError, suggest


class ConfigError(UserError):
    """All problems of one experiment file, one ``$.path: message`` line each."""

    def __init__(self, source, problems):
        self.source = source
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"{source}: {count} problem{'s' if count > 1 else ''}\n{lines}")


class _PathError(ValueError):
    """An error that knows which key below the current path it is about."""

    def __init__(self, key, message):
        super().__init__(message)
        self.key = key


def _type_name(value):
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)


def _strict(expected, *accepted):
    def structure(value, _):
        if isinstance(value, bool) and expected is not bool:
            raise TypeError(f"expected {_type_name(expected())}, got boolean {value!r}")
        if not isinstance(value, accepted):
            raise TypeError(f"expected {_type_name(expected())}, got {_type_name(value)} "
                            f"{value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value!r}")
        return expected(value)

    return structure


def _word_or_number(value, _):
    """A setting that is a named mode or a number (``eval.thresholds``)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"expected a string or a number, got {_type_name(value)} {value!r}")
    return value if isinstance(value, str) else float(value)


def _literal(value, literal):
    choices = typing.get_args(literal)
    if value not in choices:
        listing = ", ".join(repr(c) for c in choices)
        raise ValueError(f"must be one of {listing}; got {value!r}{suggest(value, choices)}")
    return value


def make_converter(registry) -> cattrs.Converter:
    """The strict converter; component tables decode into the options class ``registry``
    (a ``cm.registry.Registry``) holds for their name."""
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(int, _strict(int, int))
    converter.register_structure_hook(float, _strict(float, int, float))
    converter.register_structure_hook(str, _strict(str, str))
    converter.register_structure_hook(bool, _strict(bool, bool))
    converter.register_structure_hook(str | float, _word_or_number)
    converter.register_structure_hook_func(
        lambda t: typing.get_origin(t) is Literal, _literal
    )

    def structure_spec(value, cls, name=None):
        if isinstance(value, str) and name is None:
            value = {"name": value}
        if not isinstance(value, dict):
            raise TypeError(f"expected a table like {{ name = \"...\" }}, got {_type_name(value)}")
        table = dict(value)
        if name is None:
            if "name" not in table:
                known = ", ".join(registry.names(cls.kind))
                raise _PathError("name", f"required key missing: which {cls.kind}? "
                                         f"(known: {known})")
            name = table.pop("name")
        try:
            component = registry.get(cls.kind, name)
        except ValueError as exc:
            raise _PathError("name", str(exc)) from None
        return cls(name, converter.structure(table, component.options))

    def structure_named(value, cls):
        spec_cls = typing.get_args(cls)[1]
        if not isinstance(value, dict):
            raise TypeError(f"expected a table of {spec_cls.kind}s by name, "
                            f"got {_type_name(value)}")
        result, errors = {}, []
        for key, table in value.items():
            try:
                if isinstance(table, dict) and "name" in table:
                    raise _PathError("name", "the table's key is its name; remove 'name'")
                result[key] = structure_spec(table, spec_cls, name=key)
            except Exception as exc:  # noqa: BLE001 - collected and reported with paths
                exc.add_note(cattrs.errors.AttributeValidationNote(f"@ {key}", key, spec_cls))
                errors.append(exc)
        if errors:
            raise cattrs.errors.ClassValidationError(f"While structuring {cls}", errors, cls)
        return result

    converter.register_structure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, Spec), structure_spec
    )
    converter.register_structure_hook_func(
        lambda t: typing.get_origin(t) is dict
        and isinstance(typing.get_args(t)[1], type)
        and issubclass(typing.get_args(t)[1], Spec),
        structure_named,
    )
    return converter


def key_path(key: str) -> str:
    """A table key as it is written in a path: ``.lr``, or quoted ``."train.lr"``."""
    return f".{key}" if re.fullmatch(r"[\w-]+", key) else f'."{key}"'


def _note_key(exc):
    """The key (a name, or a list index) a cattrs note says ``exc`` is about, else None."""
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, cattrs.errors.AttributeValidationNote):
            return note.name
        if isinstance(note, cattrs.errors.IterableValidationNote):
            return note.index
    return None


def _written(key) -> str:
    return key_path(key) if isinstance(key, str) else f"[{key}]"


def component_tables(cls=Experiment, prefix="") -> dict[str, tuple[str, str]]:
    """Where each kind of component is configured, by the key a user writes for it:
    ``{"loss": ("loss", "train.loss"), "optimizations": ("optimization",
    "optimizations.<name>"), ...}`` (read off the schema)."""
    tables = {}
    for name, tp in typing.get_type_hints(cls).items():
        args = typing.get_args(tp)
        if isinstance(tp, type) and issubclass(tp, Spec):
            tables[name] = (tp.kind, f"{prefix}{name}")
        elif typing.get_origin(tp) is dict and issubclass(args[1], Spec):
            tables[name] = (args[1].kind, f"{prefix}{name}.<name>")
        elif attrs.has(tp):
            tables.update(component_tables(tp, f"{prefix}{name}."))
    for kind, table in list(tables.values()):
        tables.setdefault(kind, (kind, table))
    return tables


def _misplaced(path, key):
    """``; a loss goes in [train.loss]`` when ``key`` names a component table elsewhere."""
    kind, table = component_tables().get(key, (None, None))
    if kind is None or f"$.{table}".startswith(f"{path}.{key}"):
        return ""
    return f"; a{'n' if kind[0] in 'aeiou' else ''} {kind} goes in [{table}]"


def _problems(exc, path, keys=()):
    """Flatten a cattrs exception tree into (keys of the value at fault, ``$.path: message``)
    pairs; the keys say what to leave out to decode the rest."""
    key = _note_key(exc)
    if key is not None:
        keys, path = (*keys, key), path + _written(key)
    if isinstance(exc, ForbiddenExtraKeysError):
        known = [f.name for f in attrs.fields(exc.cl)]
        listing = f" (known: {', '.join(known)})" if known else " (this takes no options)"
        for extra in sorted(exc.extra_fields):
            hint = _misplaced(path, extra) or suggest(extra, known) or listing
            yield (*keys, extra), f"{path}{key_path(extra)}: unknown key{hint}"
    elif isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            yield from _problems(sub, path, keys)
    elif isinstance(exc, _PathError):
        yield keys, f"{path}.{exc.key}: {exc}"
    elif isinstance(exc, KeyError):
        yield keys, f"{path}: required key missing"
    else:
        yield keys, f"{path}: {exc}"


def _without(raw, keys):
    """``raw`` less the value at ``keys`` (a whole array when the keys go into one), so
    that its default applies; ``raw`` itself when there is nothing to leave out."""
    names = list(itertools.takewhile(lambda key: isinstance(key, str), keys))
    if not names or not isinstance(raw, dict) or names[0] not in raw:
        return raw
    first, rest = names[0], names[1:]
    if not rest:
        return {key: value for key, value in raw.items() if key != first}
    return {**raw, first: _without(raw[first], rest)}


def _fill_spec(spec, registry, path, problems):
    if spec.options is not None:
        return spec
    try:
        return attrs.evolve(spec, options=registry.get(spec.kind, spec.name).options())
    except ValueError as exc:
        problems.append(f"{path}.name: {exc}")
        return spec


def _finish(obj, registry, path, problems):
    """Fill default component options and run all validators, collecting problems."""
    if isinstance(obj, Spec):
        obj = _fill_spec(obj, registry, path, problems)
        options = _finish(obj.options, registry, path, problems)
        return obj if options is obj.options else attrs.evolve(obj, options=options)
    if isinstance(obj, dict):
        return {k: _finish(v, registry, path + key_path(k), problems) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finish(v, registry, f"{path}[{i}]", problems) for i, v in enumerate(obj)]
    if not attrs.has(type(obj)):
        return obj
    changes = {}
    for attribute in attrs.fields(type(obj)):
        value = getattr(obj, attribute.name)
        where = f"{path}.{attribute.name}"
        if attribute.validator is not None:
            try:
                attribute.validator(obj, attribute, value)
            except (ValueError, TypeError) as exc:
                problems.append(f"{where}: {exc.args[0] if exc.args else exc}")
        finished = _finish(value, registry, where, problems)
        if finished is not value:
            changes[attribute.name] = finished
    for key, message in getattr(obj, "check", lambda: ())():
        problems.append(f"{path}.{key}: {message}")
    return attrs.evolve(obj, **changes) if changes else obj


def structure(raw, cls, registry, path="$"):
    """``raw`` decoded strictly into the attrs class ``cls``: returns (object, problems),
    each problem a ``$.path: message`` line; the object is None when structuring failed.
    A value that does not structure is reported, then left out (its default stands in) so
    that every other value is still structured and validated: all problems come at once."""
    converter = make_converter(registry)
    reported = []
    with attrs.validators.disabled():
        while True:
            try:
                obj = converter.structure(raw, cls)
                break
            except Exception as exc:  # noqa: BLE001 - turned into path-shaped problems
                found = list(_problems(exc, path))
            reported += [line for _, line in found]
            rest = functools.reduce(_without, (keys for keys, _ in found), raw)
            if rest == raw:
                return None, reported
            raw = rest
        problems = []
        obj = _finish(obj, registry, path, problems)
    at_fault = {line.split(": ", 1)[0] for line in reported}
    return obj, reported + [p for p in problems if p.split(": ", 1)[0] not in at_fault]


def edges(param) -> list:
    """The values a search parameter can take at its edges: every choice, or low and high."""
    if param.type == "categorical":
        return list(param.choices)
    if param.type == "int":
        return [int(param.low), int(param.high)]
    return [param.low, param.high]


def space_problems(raw: dict, space: dict, registry) -> list[str]:
    """``[hpo.space]`` checked against the experiment it searches: every key is a config key
    and every edge value is valid there (a typo or an out-of-range bound fails before any
    trial runs, and ``cm config validate`` says so)."""
    base = {key: value for key, value in raw.items() if key != "hpo"}
    already = set(structure(base, Experiment, registry)[1])  # the base's own: reported once
    problems = []
    for key, param in space.items():
        where = "$.hpo" + key_path("space") + key_path(key)
        for value in edges(param):
            try:
                found = structure(set_keys(base, {key: value}), Experiment, registry)[1]
            except UserError as exc:  # a malformed dotted key
                found = [str(exc)]
            found = [problem for problem in found if problem not in already]
            if found:
                problems.append(f"{where}: setting it to {value!r} fails: {found[0]} — fix "
                                "the key or the bounds/choices")
                break
    return problems


def decode(raw: dict, source="<config>", *, registry) -> Experiment:
    """Decode a merged raw dict (no ``base`` key left) into a fully resolved Experiment, its
    components looked up in ``registry`` (``cm.registry.get_registry()``: the installed ones)."""
    experiment, problems = structure(raw, Experiment, registry)
    if experiment is not None and experiment.hpo is not None:
        problems += space_problems(raw, experiment.hpo.space, registry)
    if problems:
        raise ConfigError(source, problems)
    return experiment
