"""The ``heads`` entry point of group ``cm``: registers the heads and poolings.

Factories are ``"module:attr"`` strings, imported (with torch) when a model is built."""

from cm.hookspecs import hookimpl
from cm_heads import options

HEADS = "cm_heads.heads"
POOLINGS = "cm_heads.poolings"


@hookimpl
def register_heads(register):
    register("linear", f"{HEADS}:linear_head", options=options.LinearHeadOptions)
    register("mlp", f"{HEADS}:mlp_head", options=options.MLPHeadOptions)


@hookimpl
def register_poolings(register):
    none = options.NoPoolingOptions
    register("cls", f"{POOLINGS}:ClsPooling", options=none)
    register("mean", f"{POOLINGS}:MeanPooling", options=none)
    register("max", f"{POOLINGS}:MaxPooling", options=none)
    register("cls_mean", f"{POOLINGS}:ClsMeanPooling", options=none)
    register("attention", f"{POOLINGS}:AttentionPooling",
             options=options.AttentionPoolingOptions)
    register("weighted_layers", f"{POOLINGS}:WeightedLayersPooling",
             options=options.WeightedLayersOptions)
