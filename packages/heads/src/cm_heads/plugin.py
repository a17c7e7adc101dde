"""The ``heads`` entry point of group ``cm``: registers the heads and poolings."""

from cm.hookspecs import hookimpl
from cm_heads import heads, poolings


@hookimpl
def register_heads(register):
    register("linear", heads.linear_head, options=heads.LinearHeadOptions)
    register("mlp", heads.mlp_head, options=heads.MLPHeadOptions)


@hookimpl
def register_poolings(register):
    register("cls", poolings.ClsPooling, options=poolings.NoPoolingOptions)
    register("mean", poolings.MeanPooling, options=poolings.NoPoolingOptions)
    register("max", poolings.MaxPooling, options=poolings.NoPoolingOptions)
    register("cls_mean", poolings.ClsMeanPooling, options=poolings.NoPoolingOptions)
    register("attention", poolings.AttentionPooling, options=poolings.AttentionPoolingOptions)
    register(
        "weighted_layers", poolings.WeightedLayersPooling, options=poolings.WeightedLayersOptions
    )
