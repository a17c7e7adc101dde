"""The ``[hpo.space]`` table: checked against the base experiment, sampled per trial.

A space key is any dotted config key; a trial's config is the base config with each sampled
value set at its key, exactly as ``--set key=value`` would. Categorical choices that are
arrays or tables (``hidden_dims = [256, 64]``) travel through Optuna as JSON text."""

import json

from cm.config import ConfigError, decode, flatten, key_path, set_keys, to_dict

SCALARS = (bool, int, float, str)


def space_path(key: str) -> str:
    return "$.hpo" + key_path("space") + key_path(key)


def candidates(param) -> list:
    """The values a parameter can take at its edges: every choice, or low and high."""
    if param.type == "categorical":
        return list(param.choices)
    if param.type == "int":
        return [int(param.low), int(param.high)]
    return [param.low, param.high]


def check_space(raw: dict, space: dict, source: str, registry) -> None:
    """Every key must be a config key of this experiment and every edge value valid there
    (so a typo or an out-of-range bound fails before any trial runs)."""
    problems = []
    for key, param in space.items():
        for value in candidates(param):
            try:
                decode(set_keys(raw, {key: value}), source=source, registry=registry)
            except ConfigError as exc:
                problems.append(f"{space_path(key)}: setting it to {value!r} fails: "
                                f"{exc.problems[0]} — fix the key or the bounds/choices")
                break
    if problems:
        raise ConfigError(source, problems)


def encode(value):
    return value if isinstance(value, SCALARS) else json.dumps(value)


def suggest(trial, key: str, param):
    """Sample ``param`` under the name ``key``; returns the config value."""
    if param.type == "float":
        return trial.suggest_float(key, param.low, param.high, log=param.log, step=param.step)
    if param.type == "int":
        return trial.suggest_int(key, int(param.low), int(param.high),
                                 step=int(param.step or 1), log=param.log)
    encoded = [encode(choice) for choice in param.choices]
    return param.choices[encoded.index(trial.suggest_categorical(key, encoded))]


def fits(param, value) -> bool:
    if param.type == "categorical":
        return encode(value) in [encode(choice) for choice in param.choices]
    if param.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return False
    return isinstance(value, int | float) and param.low <= value <= param.high


def baseline_params(experiment, space: dict) -> dict:
    """The base config's own values of the space's keys, where the space can hold them
    (Optuna params of the baseline trial; keys it cannot hold stay at the base value)."""
    flat = flatten(to_dict(experiment))
    return {key: encode(flat[key]) for key, param in space.items()
            if key in flat and fits(param, flat[key])}


def config_values(params: dict, space: dict) -> dict:
    """Optuna params (JSON text for array/table choices) back to config values."""
    values = {}
    for key, value in params.items():
        param = space[key]
        if param.type == "categorical":
            encoded = [encode(choice) for choice in param.choices]
            value = param.choices[encoded.index(value)]
        values[key] = value
    return values
