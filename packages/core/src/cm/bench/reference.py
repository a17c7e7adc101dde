"""The reference every configuration is compared with: the training loop a user would write
with plain Hugging Face and PyTorch, no cm. ``DebertaV2ForSequenceClassification`` (the same
dimensions as cm's backbone; ``AutoModelForSequenceClassification`` for a named checkpoint),
``DataCollatorWithPadding`` (dynamic padding to each batch's longest example), shuffled
batches, ``torch.optim.AdamW`` with a linear schedule, gradient clipping at 1.0, and
``torch.autocast`` at the same precision as the configurations it is compared with.

It is fed the same tokenized examples as cm (the tokenization is not timed for either)."""

import torch
from torch.utils.data import DataLoader
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    DebertaV2ForSequenceClassification,
    get_linear_schedule_with_warmup,
)

from cm.model.tiny import TINY_NAME, tiny_config


def reference_model(experiment, tokenizer, seed: int):
    """A 2-label sequence classifier of the experiment's backbone shape."""
    backbone = experiment.model.backbone
    if backbone != TINY_NAME:
        return AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=2)
    config = tiny_config(tokenizer, experiment.model.tiny)
    config.num_labels = 2
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DebertaV2ForSequenceClassification(config)


def reference_loader(features: list[dict], tokenizer, batch_size: int, seed: int):
    """``features``: ``{"input_ids", "token_type_ids", "labels"}`` per example."""
    return DataLoader(features, batch_size=batch_size, shuffle=True,
                      collate_fn=DataCollatorWithPadding(tokenizer),
                      generator=torch.Generator().manual_seed(seed))


def reference_optimizer(model, lr: float, weight_decay: float, total_steps: int):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    return optimizer, get_linear_schedule_with_warmup(optimizer, 0, total_steps)


def train_reference(model, loader, optimizer, scheduler, dtype, device, on_step=None) -> float:
    """One pass over ``loader``; returns the mean loss."""
    model.train()
    device_type = torch.device(device).type
    scaler = torch.amp.GradScaler(device_type, enabled=dtype == torch.float16)
    total, count = 0.0, 0
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
            loss = model(**batch).loss
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        total, count = total + loss.item(), count + 1
        if on_step is not None:
            on_step()
    return total / max(count, 1)
