"""The ``[hpo.space]`` table sampled per trial (``cm.config.decode`` checks it against the
base experiment when the experiment is read).

A space key is any dotted config key; a trial's config is the base config with each sampled
value set at its key, exactly as ``--set key=value`` would. Categorical choices that are
arrays or tables (``hidden_dims = [256, 64]``) travel through Optuna as JSON text."""

import json

from cm.config import flatten, to_dict

SCALARS = (bool, int, float, str)


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
