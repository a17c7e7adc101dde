"""One training epoch: grad accumulation, clipping, scheduler, progress bar, step hooks."""

import math
import time

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cm.errors import UserError
from cm.train.batches import to_device


def progress_bar(console):
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                    console=console, transient=False)


def train_epoch(model, loss, loader, optimizer, scheduler, train, context, scaler, progress,
                hooks, run, step) -> tuple[float, int]:
    """Train one epoch; returns (mean loss, global step after it). Runs under autocast when
    an AMP optimization set ``context.autocast_dtype``; fp16 steps go through ``scaler``,
    which skips a step whose gradients hold inf/NaN (DeBERTa's fp16 attention overflows).
    A non-finite loss is counted in ``run.metrics["train/nonfinite_losses"]`` and left out
    of the mean when the scaler can skip its step; otherwise it stops the run."""
    model.train()
    device = context.device
    autocast = torch.autocast(torch.device(device).type, dtype=context.autocast_dtype,
                              enabled=context.autocast_dtype is not None)
    task = progress.add_task(f"epoch {run.epoch}", total=len(loader), info="")
    total, count, seen, started = 0.0, 0, 0, time.perf_counter()
    accumulate = train.grad_accum_steps
    optimizer.zero_grad(set_to_none=True)
    for i, batch in enumerate(loader, start=1):
        batch.pop("index")
        batch = to_device(batch, device)
        with autocast:
            value = loss(model(batch).float(), batch["labels"])
        scaler.scale(value / accumulate).backward()
        item = value.item()
        if math.isfinite(item):
            total, count = total + item, count + 1
        else:
            check_nonfinite(item, scaler, run, i)
        seen += len(batch["labels"])
        if i % accumulate == 0 or i == len(loader):
            if train.max_grad_norm > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), train.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            rate = seen / (time.perf_counter() - started)
            lr = optimizer.param_groups[0]["lr"]
            hooks.step_ended(run=run, step=step, metrics={
                "train/loss": item, "train/lr": lr, "train/samples_per_s": rate})
            progress.update(task, info=f"loss {total / count:.4f}  lr {lr:.2e}  "
                                       f"{rate:.1f} samples/s")
        progress.advance(task)
    if count == 0:
        raise UserError(f"train: every loss of epoch {run.epoch} was inf/NaN; lower train.lr "
                        "or use optimizations.bf16 instead of fp16")
    return total / count, step


def check_nonfinite(value, scaler, run, batch):
    """fp16 with the scaler: count it (the scaler skips that step and lowers the scale).
    Without a scaler the weights would be corrupted: stop with the fix."""
    if not scaler.is_enabled():
        raise UserError(f"train: the loss is {value} at epoch {run.epoch}, batch {batch}; "
                        "lower train.lr, set train.max_grad_norm, or check the data")
    key = "train/nonfinite_losses"
    run.metrics[key] = run.metrics.get(key, 0) + 1
