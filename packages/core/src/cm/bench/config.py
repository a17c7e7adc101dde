"""A bench file: an experiment (``base = ...`` and any keys) plus a ``[bench]`` table.

    [bench]
    examples = 512          # train examples in each configuration's timed pass
    warmup = 2              # untimed batches before it
    rounds = 3              # every configuration is measured this many times, interleaved
    output_dir = "benchmarks/results"   # results go in <output_dir>/<device>-<timestamp>/
    vocab_size = 128100     # optional: pad the embedding matrix to this many rows
    threads = 1             # optional: torch CPU threads for every row (default: torch's)
    only = ["packing-bf16"] # optional: measure only these configurations (and the reference)
    lengths = "redsm5"      # optional: pair lengths drawn from a real corpus's profile
                            # (cm.bench.lengths) instead of the demo's own

    [[bench.configs]]
    name = "packing-bf16"
    set = { "optimizations.packing" = {}, "optimizations.bf16" = {} }

The ``[bench]`` table is decoded by the experiment's own strict decoder (``BenchTable``).
Each configuration is the experiment with its ``set`` overrides applied (dotted keys, as
``--set``), decoded as strictly as ``cm run`` does. The plain Hugging Face reference runs at
each precision the configurations use and is named ``reference`` (fp32) or
``reference-<precision>``, so configuration names may not start with ``reference``.
"""

from typing import Any

import attrs
from attrs import field
from attrs.validators import ge, matches_re, min_len, optional

from cm.bench.lengths import PROFILES
from cm.config.decode import ConfigError, decode, structure
from cm.config.keys import BadKey, set_keys
from cm.config.load import load_raw
from cm.errors import UserError
from cm.registry import get_registry


@attrs.frozen
class BenchEntry:
    """One ``[[bench.configs]]`` table: a name and the dotted keys it sets."""

    name: str = field(validator=matches_re(r"[A-Za-z0-9][A-Za-z0-9_.+-]*"))
    set: dict[str, Any] = attrs.Factory(dict)


@attrs.frozen
class BenchTable:
    """The ``[bench]`` table."""

    configs: list[BenchEntry] = field(validator=min_len(1))
    examples: int = field(default=256, validator=ge(1))
    warmup: int = field(default=2, validator=ge(0))
    # true: warm up on one untimed pass over the timed examples themselves, so every batch
    # shape the timed pass meets is compiled (compile, CUDA graphs, Triton kernels) before
    # the clock starts: the steady state of a long run; the warm-up time is reported
    warmup_pass: bool = False
    rounds: int = field(default=1, validator=ge(1))
    output_dir: str = field(default="benchmarks/results", validator=min_len(1))
    vocab_size: int | None = field(default=None, validator=optional(ge(1)))
    threads: int | None = field(default=None, validator=optional(ge(1)))
    only: list[str] = attrs.Factory(list)
    lengths: str | None = None

    def check(self):
        if self.lengths is not None and self.lengths not in PROFILES:
            yield "lengths", (f"{self.lengths!r} is not a length profile; choose one of "
                              f"{sorted(PROFILES)} or leave it out (the data's own lengths)")
        names = [entry.name for entry in self.configs]
        for name in set(self.only) - set(names):
            yield "only", f"{name!r} is not a configuration here; choose from {names}"
        seen = set()
        for i, entry in enumerate(self.configs):
            if entry.name.startswith("reference"):
                yield f"configs[{i}].name", (f"{entry.name!r}: names starting with "
                                             "'reference' are kept for the plain Hugging "
                                             "Face reference rows")
            if entry.name in seen:
                yield f"configs[{i}].name", f"{entry.name!r} is used twice; names must be unique"
            seen.add(entry.name)

    def settings(self) -> dict:
        """Everything but the configurations, as written to results.json."""
        return {k: v for k, v in attrs.asdict(self).items() if k != "configs"}


@attrs.frozen
class Config:
    name: str
    overrides: dict  # dotted key -> value, as written
    experiment: object


@attrs.frozen
class Bench:
    source: str
    experiment: object  # the file without [bench]: what the references are built from
    table: BenchTable
    configs: tuple[Config, ...]


def load_bench(path, overrides=(), registry=None) -> Bench:
    """Read a bench file (``base`` chain and ``--set`` overrides applied) and validate it;
    every problem of the ``[bench]`` table is reported at once, each with its key."""
    registry = registry or get_registry()
    raw = load_raw(path, overrides)
    source = str(path)
    if not isinstance(raw.get("bench"), dict):
        raise UserError(f"{source}: no [bench] table; add one with a list of configurations, "
                        'e.g. [[bench.configs]] name = "packing" set = { '
                        '"optimizations.packing" = {} }')
    written = raw.pop("bench")
    experiment = decode(raw, source=source, registry=registry)
    table, problems = structure(written, BenchTable, registry, "$.bench")
    if table is None:
        raise ConfigError(source, problems)
    configs = []
    for i, entry in enumerate(table.configs):
        if table.only and entry.name not in table.only:
            continue
        config = _config(entry, f"$.bench.configs[{i}]", raw, source, registry, problems)
        if config is not None:
            configs.append(config)
    problems += [f"$.bench.configs ({config.name}): train.batch_size = "
                 f"{config.experiment.train.batch_size}, but the reference runs at "
                 f"{experiment.train.batch_size}; set train.batch_size for the whole file "
                 "(a bench file per batch size), so every ratio compares equal batches"
                 for config in configs
                 if config.experiment.train.batch_size != experiment.train.batch_size]
    if problems:
        raise ConfigError(source, problems)
    return Bench(source, experiment, table, tuple(configs))


def _config(entry, where, raw, source, registry, problems) -> Config | None:
    try:
        patched = set_keys(raw, entry.set)
    except BadKey as exc:
        problems.append(f"{where}.set: {exc}")
        return None
    try:
        experiment = decode(patched, source=f"{source} ({where[2:]}, {entry.name})",
                            registry=registry)
    except ConfigError as exc:
        problems.extend(f"{where} ({entry.name}): {problem}" for problem in exc.problems)
        return None
    return Config(entry.name, dict(entry.set), experiment)
