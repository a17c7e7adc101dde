"""LR schedules as ``LambdaLR`` multipliers of each group's own LR: warmup, then a shape.

Multiplying (rather than setting) keeps the per-group LRs of ``param_groups`` (head LR,
layer-wise decay) in proportion for the whole run. Step ``s`` is the multiplier used for
the optimizer step after ``s`` calls to ``scheduler.step()``: it rises linearly from 0 at
step 0 to 1 at the end of warmup (the HuggingFace convention), which is ``ceil(warmup_ratio
* num_training_steps)`` steps so any non-zero ratio warms up at least one step.
"""

import math

from torch.optim.lr_scheduler import LambdaLR

from cm.builtin.options import CosineOptions, WarmupOptions


def warmup_steps(warmup_ratio: float, num_training_steps: int) -> int:
    if num_training_steps < 1:
        raise ValueError(f"num_training_steps must be >= 1, got {num_training_steps}")
    return math.ceil(warmup_ratio * num_training_steps)


def _schedule(optimizer, warmup, after):
    """LambdaLR: linear warmup over ``warmup`` steps, then ``after(steps since warmup)``."""

    def multiplier(step):
        if step < warmup:
            return step / warmup
        return after(step - warmup)

    return LambdaLR(optimizer, multiplier)


def linear(options: WarmupOptions, optimizer, num_training_steps: int) -> LambdaLR:
    """Warmup, then linear decay to 0 at ``num_training_steps``."""
    warmup = warmup_steps(options.warmup_ratio, num_training_steps)
    span = max(1, num_training_steps - warmup)
    return _schedule(optimizer, warmup, lambda s: max(0.0, 1.0 - s / span))


def cosine(options: CosineOptions, optimizer, num_training_steps: int) -> LambdaLR:
    """Warmup, then a half-cosine from 1 down to ``min_lr_ratio`` at ``num_training_steps``."""
    warmup = warmup_steps(options.warmup_ratio, num_training_steps)
    span = max(1, num_training_steps - warmup)
    floor = options.min_lr_ratio

    def after(s):
        progress = min(1.0, s / span)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return _schedule(optimizer, warmup, after)


def constant(options: WarmupOptions, optimizer, num_training_steps: int) -> LambdaLR:
    """Warmup, then the full LR until the end."""
    warmup = warmup_steps(options.warmup_ratio, num_training_steps)
    return _schedule(optimizer, warmup, lambda s: 1.0)
