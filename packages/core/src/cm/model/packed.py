"""Run DeBERTa on packed rows (several examples per row) with results equal to running each alone.

``DebertaV2Model.forward`` multiplies the embeddings by its attention mask, so it cannot take
the 3-D block-diagonal mask a packed row needs. We drive its two halves directly instead:
``model.embeddings`` with the 2-D token mask, then ``model.encoder`` with the ``[R, T, T]``
block mask (the encoder unsqueezes a 3-D mask to ``[R, 1, T, T]`` and uses it as is).

Why this is exact for DeBERTaV3: it has no absolute position embeddings, and its relative
positions are ``i - j`` over row columns, so for a segment starting at column o the positions
between its tokens, ``(o + i) - (o + j)``, equal the unpacked ones; the block mask removes every
other key, and masked scores get ``finfo.min``, whose softmax weight is exactly 0. Models with
absolute positions (``position_biased_input``) get per-segment ``position_ids`` and stay exact.
Models with a convolution layer (``conv_kernel_size``, DeBERTa-v2 xlarge/xxlarge) would mix
neighbouring segments at their borders, so they are refused.

``unpack`` turns ``[R, T, H]`` packed states into ``[S, L, H]`` + mask, the padded layout, so
poolings written for padded batches work on packed ones unchanged; ``encode`` gives both paths
one interface.
"""

from __future__ import annotations

import torch
from torch import Tensor

Hidden = Tensor | tuple[Tensor, ...]


def _base(model: torch.nn.Module) -> torch.nn.Module:
    """The DebertaV2Model itself, also when handed a task model that wraps it as ``.deberta``."""
    return getattr(model, "deberta", model)


def check_packable(model: torch.nn.Module) -> None:
    """Raise ValueError when packing would not give the same results as running alone."""
    base = _base(model)
    if not hasattr(base, "embeddings") or not hasattr(base, "encoder"):
        raise ValueError(f"{type(model).__name__} has no .embeddings/.encoder to drive")
    if getattr(base.encoder, "conv", None) is not None:
        raise ValueError(
            "packing is not exact for models with a conv layer (conv_kernel_size > 0): the "
            "convolution reaches across segment borders; use padded batches"
        )
    if getattr(base, "z_steps", 0) > 1:
        raise ValueError("packing does not implement DeBERTa z_steps > 1")


def encode_packed(
    model: torch.nn.Module, batch: dict[str, Tensor], output_hidden_states: bool = False
) -> Hidden:
    """Hidden states ``[R, T, H]`` of a ``packed_batch``; with output_hidden_states a tuple.

    The tuple is (embedding output, layer 1, ..., layer N), like transformers' hidden_states,
    so its last element is the last hidden state. States on padding positions are meaningless.
    """
    check_packable(model)
    base = _base(model)
    embeddings = base.embeddings
    position_ids = batch.get("position_ids") if embeddings.position_biased_input else None
    hidden = embeddings(
        input_ids=batch["input_ids"],
        token_type_ids=batch["token_type_ids"],
        position_ids=position_ids,
        mask=batch["token_mask"],
    )
    output = base.encoder(hidden, batch["attention_mask"], output_hidden_states=True)
    if output_hidden_states:
        return tuple(output.hidden_states)
    return output.last_hidden_state


def unpack(hidden: Tensor, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Cut packed ``[R, T, H]`` states into ``([S, L, H], mask [S, L])``, one row per segment.

    L is the longest segment; positions past a segment's end are zero and masked 0. Segment
    order is the batch's (``segment_index``, ``labels``), first token first, so
    ``per_segment[:, 0]`` is each segment's [CLS]. Indexing keeps gradients flowing.
    """
    starts = batch["cls_positions"].to(hidden.device)
    lengths = batch["segment_lengths"].to(hidden.device)
    width = int(lengths.max())
    offsets = torch.arange(width, device=hidden.device)
    mask = offsets[None, :] < lengths[:, None]
    columns = (starts[:, 1:2] + offsets[None, :]).clamp(max=hidden.size(1) - 1)
    per_segment = hidden[starts[:, 0:1], columns]
    per_segment = per_segment * mask[:, :, None].to(per_segment.dtype)
    return per_segment, mask.long()


def encode_padded(
    model: torch.nn.Module, batch: dict[str, Tensor], output_hidden_states: bool = False
) -> tuple[Hidden, Tensor]:
    """The ordinary path on a ``pad_batch``: ``(hidden [B, T, H] or tuple, mask [B, T])``."""
    output = _base(model)(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        token_type_ids=batch["token_type_ids"],
        output_hidden_states=output_hidden_states,
        return_dict=True,
    )
    hidden = tuple(output.hidden_states) if output_hidden_states else output.last_hidden_state
    return hidden, batch["attention_mask"]


def encode(
    model: torch.nn.Module, batch: dict[str, Tensor], output_hidden_states: bool = False
) -> tuple[Hidden, Tensor]:
    """One interface for both batch kinds: ``(hidden [N, L, H] or tuple, mask [N, L])``.

    N is the batch size for a ``pad_batch`` and the segment count for a ``packed_batch``;
    either way row n lines up with ``batch["labels"][n]``.
    """
    if "segment_ids" not in batch:
        return encode_padded(model, batch, output_hidden_states)
    packed = encode_packed(model, batch, output_hidden_states)
    if isinstance(packed, tuple):
        layers = [unpack(layer, batch) for layer in packed]
        return tuple(states for states, _ in layers), layers[0][1]
    return unpack(packed, batch)
