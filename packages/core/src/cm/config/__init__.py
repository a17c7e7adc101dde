"""Experiment configuration: TOML files decoded strictly into attrs classes.

The names below are the package's public face: plugins import them from ``cm.config``,
never from its modules (tests/test_import_layers.py holds them to it)."""

from cm.config.decode import ConfigError, decode, key_path
from cm.config.dump import dumps, flatten, to_dict
from cm.config.keys import set_keys
from cm.config.load import load_experiment, load_raw, read_toml
from cm.config.schema import Experiment, OptimizerSpec, TrackerSpec

__all__ = ["ConfigError", "Experiment", "OptimizerSpec", "TrackerSpec", "decode", "dumps",
           "flatten", "key_path", "load_experiment", "load_raw", "read_toml", "set_keys",
           "to_dict"]
