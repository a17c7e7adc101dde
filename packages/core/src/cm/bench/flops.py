"""Training FLOPs of a DeBERTa-v2/v3 encoder from its shape, and GPU peak FLOP rates, for
model FLOP utilization (MFU = useful model FLOPs per second / the device's dense peak).

Counted: every matrix multiply of the encoder, 2 FLOPs per multiply-accumulate. With H the
hidden size, I the intermediate size, T a sequence's length and k the attention span
(``position_buckets`` when > 0, else ``max_relative_positions``; the model keeps 2k relative
embeddings), one layer's forward costs, per sequence of T tokens:

* projections and feed-forward: ``2 T (4 H^2 + 2 H I)`` (Q, K, V, output; up, down);
* content-to-content scores ``Q K^T`` and the weighted sum ``A V``: ``2 T^2 H`` each;
* disentangled attention: content-to-position ``Q K_r^T`` and position-to-content
  ``K Q_r^T`` score every token against all 2k relative embeddings (then gather the T
  columns they need): ``2 T (2k) H`` each, one per entry of ``pos_att_type``;

and, once per forward of a batch (not per sequence: the relative embeddings are projected
once and repeated over the batch), the projections of the 2k relative embeddings through
the key and query maps: ``2 (2k) H^2`` each (both with ``share_att_key``, as in v3; else one
per ``pos_att_type`` entry).

Training = forward + backward, and the backward of a matmul is two matmuls of the same
size (gradient of each operand), so train FLOPs = 3 x forward. Not counted: embeddings
(lookups), softmax, LayerNorm, GELU, gathers (no multiplies worth counting), and the
pooling/classification head (a few H^2 per sequence). Useful FLOPs use each example's own
length: padding, and attention across packed segments that the block mask discards, are
work the hardware does but the model does not need, so they do not count toward MFU.
"""

from collections.abc import Iterable

# Dense (no sparsity) peak tensor-core FLOP/s from the vendors' datasheets, by precision.
# H100 SXM: 989 TFLOPS bf16/fp16, 494 tf32; H100 PCIe: 756 / 378; H200: as H100 SXM;
# A100: 312 bf16/fp16, 156 tf32.
PEAK_FLOPS = {
    "H100 PCIe": {"bf16": 756e12, "fp16": 756e12, "fp32": 378e12},
    "H100": {"bf16": 989e12, "fp16": 989e12, "fp32": 494e12},
    "H200": {"bf16": 989e12, "fp16": 989e12, "fp32": 494e12},
    "A100": {"bf16": 312e12, "fp16": 312e12, "fp32": 156e12},
}


def attention_span(config) -> int:
    """k: the model holds 2k relative position embeddings."""
    if getattr(config, "position_buckets", -1) > 0:
        return config.position_buckets
    span = getattr(config, "max_relative_positions", -1)
    return span if span >= 1 else config.max_position_embeddings


def _position_terms(config) -> tuple[int, int]:
    """(score matmuls per token against relative embeddings, projections per forward)."""
    if not getattr(config, "relative_attention", False):
        return 0, 0
    kinds = [k for k in (getattr(config, "pos_att_type", None) or []) if k in ("c2p", "p2c")]
    projections = 2 if kinds and getattr(config, "share_att_key", False) else len(kinds)
    return len(kinds), projections


def forward_flops(config, lengths: Iterable[int]) -> int:
    """Forward FLOPs of one batch (one forward) of sequences with these lengths."""
    hidden, inter = config.hidden_size, config.intermediate_size
    span2 = 2 * attention_span(config)
    scores, projections = _position_terms(config)
    per_layer = projections * 2 * span2 * hidden * hidden
    for t in lengths:
        per_layer += 2 * t * (4 * hidden * hidden + 2 * hidden * inter)  # dense
        per_layer += 2 * 2 * t * t * hidden  # Q K^T and A V
        per_layer += scores * 2 * t * span2 * hidden  # c2p / p2c
    return config.num_hidden_layers * per_layer


def train_flops(config, lengths: Iterable[int]) -> int:
    """Forward + backward FLOPs of one training step on a batch with these lengths."""
    return 3 * forward_flops(config, lengths)


def peak_flops(device_name: str, precision: str) -> float | None:
    """The dense peak FLOP/s of a known GPU at "bf16", "fp16" or "fp32" (TF32 tensor cores),
    or None for an unknown device (MFU is then reported as n/a)."""
    for key, rates in PEAK_FLOPS.items():  # "H100 PCIe" is listed before "H100"
        if all(part in device_name for part in key.split()):
            return rates.get(precision)
    return None
