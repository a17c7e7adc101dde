"""The ``core`` entry point of group ``cm``: registers cm-core's built-in components."""

from cm.builtin import losses, optimizers, schedulers
from cm.data import datasets
from cm.hookspecs import hookimpl


@hookimpl
def register_losses(register):
    register("bce", losses.bce, options=losses.BCEOptions)
    register("weighted_ce", losses.weighted_ce, options=losses.WeightedCEOptions)
    register("focal", losses.focal, options=losses.FocalOptions)


@hookimpl
def register_optimizers(register):
    register("adamw", optimizers.adamw, options=optimizers.AdamWOptions)
    register("adamw_8bit", optimizers.adamw_8bit, options=optimizers.AdamW8bitOptions)


@hookimpl
def register_schedulers(register):
    register("linear", schedulers.linear, options=schedulers.WarmupOptions)
    register("cosine", schedulers.cosine, options=schedulers.CosineOptions)
    register("constant", schedulers.constant, options=schedulers.WarmupOptions)


@hookimpl
def register_datasets(register):
    register("redsm5", datasets.redsm5, options=datasets.Redsm5Options)
    register("demo", datasets.demo)
