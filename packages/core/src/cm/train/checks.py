"""The one-batch dry run: fail fast, with a clear message, before any training time is spent."""

import math

import torch

from cm.errors import UserError

MAX_UNKNOWN_FRACTION = 0.05


def dry_run(model, loss, batch, tokenizer, device) -> dict:
    """Check tokenization, shapes, dtypes, devices and one forward/backward on ``batch``.
    Returns what it saw (for the log); raises UserError naming the problem and the fix."""
    ids = batch["input_ids"]
    real = batch.get("token_mask", batch["attention_mask"]).bool()  # packed: token_mask
    unknown = tokenizer.unk_token_id
    if unknown is not None:
        fraction = (ids[real] == unknown).float().mean().item()
        if fraction > MAX_UNKNOWN_FRACTION:
            raise UserError(
                f"dry run: the tokenizer maps {fraction:.0%} of the tokens of the first batch to "
                f"{tokenizer.unk_token}; it does not segment this text (a DebertaV2Tokenizer built "
                "from its constructor does this; load it with from_pretrained on its folder)")
    vocab = model.backbone.get_input_embeddings().num_embeddings
    if ids.max().item() >= vocab:
        raise UserError(f"dry run: token id {ids.max().item()} is outside the model's "
                        f"{vocab}-token embedding table: tokenizer and backbone do not match")
    wrong = {n for n, p in model.named_parameters() if p.device.type != torch.device(device).type}
    if wrong:
        raise UserError(f"dry run: parameters not on {device}: {sorted(wrong)[:5]}")
    model.train()
    logits = model(batch)
    expected = (len(batch["labels"]), loss.num_logits)
    if tuple(logits.shape) != expected:
        raise UserError(f"dry run: the head returned logits of shape {list(logits.shape)}, "
                        f"expected {list(expected)} for the loss (num_logits={loss.num_logits})")
    if not logits.dtype.is_floating_point:
        raise UserError(f"dry run: logits have dtype {logits.dtype}, expected floating point")
    value = loss(logits, batch["labels"])
    if not math.isfinite(value.item()):
        raise UserError(f"dry run: the loss of the first batch is {value.item()}")
    value.backward()
    model.zero_grad(set_to_none=True)
    return {"batch_shape": list(ids.shape), "logits_shape": list(logits.shape),
            "first_loss": value.item(), "device": str(device)}
