"""The ``core`` entry point of group ``cm``: registers cm-core's built-in components.

Factories are ``"module:attr"`` strings, imported when a run builds them, so listing and
validating (``cm plugins``, ``cm config``) never import torch."""

from cm.builtin import options
from cm.data import datasets
from cm.hookspecs import hookimpl

LOSSES = "cm.builtin.losses"
OPTIMIZERS = "cm.builtin.adamw"
SCHEDULERS = "cm.builtin.schedulers"


@hookimpl
def register_losses(register):
    register("bce", f"{LOSSES}:bce", options=options.BCEOptions)
    register("weighted_ce", f"{LOSSES}:weighted_ce", options=options.WeightedCEOptions)
    register("focal", f"{LOSSES}:focal", options=options.FocalOptions)


@hookimpl
def register_optimizers(register):
    register("adamw", f"{OPTIMIZERS}:adamw", options=options.AdamWOptions)
    register("adamw_8bit", f"{OPTIMIZERS}:adamw_8bit", options=options.AdamW8bitOptions)


@hookimpl
def register_schedulers(register):
    register("linear", f"{SCHEDULERS}:linear", options=options.WarmupOptions)
    register("cosine", f"{SCHEDULERS}:cosine", options=options.CosineOptions)
    register("constant", f"{SCHEDULERS}:constant", options=options.WarmupOptions)


@hookimpl
def register_datasets(register):
    register("redsm5", datasets.redsm5, options=datasets.Redsm5Options)
    register("demo", datasets.demo, options=datasets.DemoOptions)
