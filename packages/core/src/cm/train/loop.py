"""The training loop: micro-steps (forward and backward of one batch) and optimizer steps
(unscale, clip, step, schedule) every ``train.grad_accum_steps`` micro-steps.

``Loop`` holds what trains and how far training got; nothing here knows about runs, hooks
or files: ``train_epoch`` reports each optimizer step to an ``on_step`` callback."""

import contextlib
import math
import time

import attrs
import torch

from cm.data.loaders import to_device
from cm.errors import UserError


@attrs.define
class Tally:
    """How far one epoch got: batches done and the sum and count of their finite losses (a
    resumed epoch carries on from a saved tally, see ``cm.train.resume``)."""

    epoch: int = 0
    batches: int = 0
    total: float = 0.0
    count: int = 0


@attrs.define
class Loop:
    """What trains (a ``cm.train.trainer.Trainer`` and the module its steps call) and how
    far it got."""

    trainer: object
    model: object  # trainer.context.model (compiled, LoRA ...), DDP-wrapped under torchrun
    scheduler: object
    epoch: int = 0
    step: int = 0  # optimizer steps so far
    nonfinite_losses: int = 0  # fp16 steps the scaler skipped
    tally: Tally = attrs.Factory(Tally)  # the current epoch's
    resumed: Tally | None = None  # a stopped epoch's, which the next train_epoch continues

    @property
    def settings(self):
        return self.trainer.context.experiment.train


def train_epoch(loop: Loop, loader, progress, label, on_step=None) -> float:
    """Train one epoch over ``loader``; returns the mean of its finite losses.
    ``on_step(step, metrics)`` is called after every optimizer step; ``progress`` (a
    ``cm.progress.Progress``: a bar on a terminal, plain lines elsewhere) shows ``label``.
    A ``loop.resumed`` tally of this epoch (a resumed run's) is continued: its batches are
    skipped and its losses counted."""
    loop.model.train()
    resumed, loop.resumed = loop.resumed, None
    loop.tally = resumed if resumed and resumed.epoch == loop.epoch else Tally(loop.epoch)
    tally, done = loop.tally, loop.tally.batches
    task = progress.add_task(label, total=len(loader) - done)
    seen, started = 0, time.perf_counter()
    loop.trainer.optimizer.zero_grad(set_to_none=True)
    for i, batch in enumerate(loader, start=1):
        if i <= done:
            continue
        boundary = i % loop.settings.grad_accum_steps == 0 or i == len(loader)
        value = micro_step(loop, batch, sync=boundary)
        if math.isfinite(value):
            tally.total, tally.count = tally.total + value, tally.count + 1
        else:
            check_nonfinite(loop, value, i)
        seen += len(batch["labels"])
        lr = rate = None
        if boundary:
            tally.batches = i
            lr = optimizer_step(loop)
            rate = seen / (time.perf_counter() - started)
            if on_step is not None:
                on_step(loop.step, {"train/loss": value, "train/lr": lr,
                                    "train/samples_per_s": rate})
        progress.advance(task, loss=tally.total / max(tally.count, 1), lr=lr,
                         samples_per_s=rate)
    if tally.count == 0:
        raise UserError(f"train: every loss of epoch {loop.epoch} was inf/NaN; lower train.lr "
                        "or use optimizations.bf16 instead of fp16")
    return tally.total / tally.count


def micro_step(loop: Loop, batch, sync=True) -> float:
    """Forward and backward of one batch (under autocast when an AMP optimization set
    ``context.autocast_dtype``); the gradients accumulate. Returns the batch's loss.
    Under DDP a micro-step that ends no optimizer step (``sync`` false) runs in
    ``no_sync()``: its gradients stay local, and the next synced backward all-reduces the
    accumulated sum once per optimizer step instead of once per micro-batch."""
    trainer = loop.trainer
    context = trainer.context
    batch = to_device({k: v for k, v in batch.items() if k != "index"}, context.device)
    local = not sync and hasattr(loop.model, "no_sync")  # DDP-wrapped under torchrun
    with loop.model.no_sync() if local else contextlib.nullcontext():
        with torch.autocast(torch.device(context.device).type, dtype=context.autocast_dtype,
                            enabled=context.autocast_dtype is not None):
            value = trainer.loss(loop.model(batch).float(), batch["labels"])
        trainer.scaler.scale(value / loop.settings.grad_accum_steps).backward()
    return value.item()


def optimizer_step(loop: Loop) -> float:
    """Clip, step (fp16: through the scaler, which skips a step whose gradients hold
    inf/NaN), schedule, zero the gradients; returns ``train.lr`` as scheduled for the next
    step (``scheduled_lr``)."""
    trainer, max_norm = loop.trainer, loop.settings.max_grad_norm
    optimizer, scaler = trainer.optimizer, trainer.scaler
    if max_norm > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(loop.model.parameters(), max_norm)
    scaler.step(optimizer)
    scaler.update()
    loop.scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    loop.step += 1
    return scheduled_lr(optimizer, loop.settings.lr)


def scheduled_lr(optimizer, lr: float) -> float:
    """``lr`` (``train.lr``) times the schedule's current factor. A schedule scales every
    parameter group's own rate by one factor (its ``lr`` over the ``initial_lr`` the
    scheduler recorded), so it is read off any group; a group's own rate would not do:
    with layer-wise decay the first group is the embeddings', far below ``train.lr``."""
    group = next((g for g in optimizer.param_groups if g.get("initial_lr")), None)
    return lr if group is None else lr * group["lr"] / group["initial_lr"]


def check_nonfinite(loop: Loop, value, batch):
    """fp16 with the scaler: count it (the scaler skips that step and lowers the scale).
    Without a scaler the weights would be corrupted: stop with the fix."""
    if not loop.trainer.scaler.is_enabled():
        raise UserError(f"train: the loss is {value} at epoch {loop.epoch}, batch {batch}; "
                        "lower train.lr, set train.max_grad_norm, or check the data")
    loop.nonfinite_losses += 1
