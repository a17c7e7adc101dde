"""Experiment configuration: TOML files decoded strictly into attrs classes."""

from cm.config.load import load_experiment
from cm.config.schema import Experiment

__all__ = ["Experiment", "load_experiment"]
