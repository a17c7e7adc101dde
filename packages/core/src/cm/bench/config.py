"""A bench file: an experiment (``base = ...`` and any keys) plus a ``[bench]`` table.

    [bench]
    examples = 512          # train examples in each configuration's timed pass
    warmup = 2              # untimed batches before it
    rounds = 3              # every configuration is measured this many times, interleaved
    output_dir = "benchmarks/results"   # results go in <output_dir>/<device>-<timestamp>/
    vocab_size = 128100     # optional: pad the embedding matrix to this many rows
    threads = 1             # optional: torch CPU threads for every row (default: torch's)

    [[bench.configs]]
    name = "packing-bf16"
    set = { "optimizations.packing" = {}, "optimizations.bf16" = {} }

Each configuration is the experiment with its ``set`` overrides applied (dotted keys, as
``--set``), decoded as strictly as ``cm run`` does. The plain Hugging Face reference runs at
each precision the configurations use and is named ``reference`` (fp32) or
``reference-<precision>``, so configuration names may not start with ``reference``.
"""

import re

import attrs

from cm.config.decode import ConfigError, decode
from cm.config.load import load_raw, merge, parse_key
from cm.errors import UserError
from cm.registry import get_registry, suggest

DEFAULTS = {"examples": 256, "warmup": 2, "rounds": 1, "output_dir": "benchmarks/results",
            "vocab_size": None, "threads": None}
MINIMUM = {"examples": 1, "warmup": 0, "rounds": 1, "vocab_size": 1, "threads": 1}
CONFIG_KEYS = ("name", "set")


@attrs.frozen
class Config:
    name: str
    overrides: dict  # dotted key -> value, as written
    experiment: object


@attrs.frozen
class Bench:
    source: str
    experiment: object  # the file without [bench]: what the references are built from
    configs: tuple[Config, ...]
    examples: int
    warmup: int
    rounds: int
    output_dir: str
    vocab_size: int | None
    threads: int | None


def load_bench(path, overrides=(), registry=None) -> Bench:
    """Read a bench file (``base`` chain and ``--set`` overrides applied) and validate it;
    every problem of the ``[bench]`` table is reported at once, each with its key."""
    registry = registry or get_registry()
    raw = load_raw(path, overrides)
    table = raw.pop("bench", None)
    source = str(path)
    if not isinstance(table, dict):
        raise UserError(f"{source}: no [bench] table; add one with a list of configurations, "
                        'e.g. [[bench.configs]] name = "packing" set = { '
                        '"optimizations.packing" = {} }')
    experiment = decode(raw, source=source, registry=registry)
    problems = []
    settings = _settings(table, problems)
    configs = []
    listed = table.get("configs")
    if not isinstance(listed, list) or not listed:
        problems.append("$.bench.configs: required: a non-empty array of tables "
                        "([[bench.configs]] with a name and optional set)")
        listed = []
    names = set()
    for i, entry in enumerate(listed):
        where = f"$.bench.configs[{i}]"
        config = _config(entry, where, names, raw, source, registry, problems)
        if config is not None:
            configs.append(config)
    if problems:
        raise ConfigError(source, problems)
    return Bench(source, experiment, tuple(configs), **settings)


def _settings(table, problems) -> dict:
    settings = dict(DEFAULTS)
    for key, value in table.items():
        if key == "configs":
            continue
        if key not in DEFAULTS:
            problems.append(f"$.bench.{key}: unknown key"
                            + (suggest(key, [*DEFAULTS, "configs"])
                               or f" (known: {', '.join([*DEFAULTS, 'configs'])})"))
        elif key == "output_dir":
            if isinstance(value, str) and value:
                settings[key] = value
            else:
                problems.append(f"$.bench.output_dir: expected a path string, got {value!r}")
        elif not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"$.bench.{key}: expected an integer, got {value!r}")
        elif value < MINIMUM[key]:
            problems.append(f"$.bench.{key}: must be >= {MINIMUM[key]}, got {value}")
        else:
            settings[key] = value
    return settings


def _config(entry, where, names, raw, source, registry, problems) -> Config | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected a table with name and set, got {entry!r}")
        return None
    for key in entry:
        if key not in CONFIG_KEYS:
            problems.append(f"{where}.{key}: unknown key"
                            + (suggest(key, CONFIG_KEYS) or " (known: name, set)"))
    name, overrides = entry.get("name"), entry.get("set", {})
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
        problems.append(f"{where}.name: required: letters, digits and _ . + - "
                        f"(got {name!r})")
        return None
    if name.startswith("reference"):
        problems.append(f"{where}.name: {name!r}: names starting with 'reference' are kept "
                        "for the plain Hugging Face reference rows")
    if name in names:
        problems.append(f"{where}.name: {name!r} is used twice; names must be unique")
    names.add(name)
    if not isinstance(overrides, dict):
        problems.append(f"{where}.set: expected a table of dotted keys to values, e.g. "
                        '{ "optimizations.packing" = {} }')
        return None
    patched = raw
    for key, value in overrides.items():
        try:
            *parents, leaf = parse_key(key)
        except UserError:
            problems.append(f'{where}.set."{key}": expected a dotted key like train.lr')
            return None
        patch = {leaf: value}
        for part in reversed(parents):
            patch = {part: patch}
        patched = merge(patched, patch)
    try:
        experiment = decode(patched, source=f"{source} ({where[2:]}, {name})",
                            registry=registry)
    except ConfigError as exc:
        problems.extend(f"{where} ({name}): {problem}" for problem in exc.problems)
        return None
    return Config(name, dict(overrides), experiment)
