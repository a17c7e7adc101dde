"""The contract shared by optimization plugins (AMP, TF32, packing, bucketing, ...).

A factory returns an ``Optimization``. Before training, the engine asks each requested one
whether it can run here (``unavailable``), checks declared ``conflicts`` between the
requested ones, then calls ``apply`` on a ``TrainContext`` that the engine reads afterwards
(loader, autocast dtype, optimizer options, ...). In ``strict`` mode (the default: you asked
for it explicitly) an unavailable or conflicting optimization is an error naming the reason
and the fix; in ``auto`` mode it is skipped and the reason logged.
"""

from typing import Literal

import attrs

from cm.errors import UserError


@attrs.frozen
class OptimizationOptions:
    """Options every optimization has; plugins subclass this for their own options."""

    mode: Literal["strict", "auto"] = "strict"


@attrs.define
class TrainContext:
    """What optimizations may change before training; the engine builds from it after."""

    experiment: object
    device: str
    model: object  # trained by the engine; compile may replace it with a compiled wrapper
    batching: Literal["random", "bucketing", "packing"] = "random"
    token_budget: int | None = None  # packing: tokens per packed row
    pad_to_multiple: int | None = None  # pad training batches' length up to a multiple
    loader: dict = attrs.Factory(dict)  # extra DataLoader arguments (workers, pin_memory)
    autocast_dtype: object = None  # a torch dtype, or None for full precision
    grad_scaler: bool = False  # fp16 needs loss scaling
    # the OptimizerSpec the engine builds: train.optimizer unless an optimization rewrites it
    # (None without an experiment: a unit test may build a bare context; cm.testing's
    # train_context fixture gives a complete one)
    optimizer: object = attrs.Factory(
        lambda self: None if self.experiment is None else self.experiment.train.optimizer,
        takes_self=True)
    registry: object = None  # the run's cm.registry.Registry (an optimizer spec is built from it)

    def pad_lengths_to(self, multiple):
        """Pad training batches' length up to a multiple of ``multiple``: compiled code and
        the Triton attention see a few lengths, not one per batch (the largest ask wins)."""
        self.pad_to_multiple = max(self.pad_to_multiple or 1, multiple)


class Optimization:
    """Base class: override ``unavailable`` and ``apply``; list names in ``conflicts``."""

    conflicts: tuple[str, ...] = ()
    name = "?"  # resolve() sets the name it is registered under
    details = ""  # set by apply: what it did, shown in the telemetry table and logged

    def __init__(self, options: OptimizationOptions):
        self.options = options

    def unavailable(self, device: str) -> str | None:
        """Why this cannot run on a ``device`` of this type ("cpu", "cuda", "mps": the type
        only, also when the run's device is "cuda:1" under torchrun), or None when it can."""
        return None

    def apply(self, context: TrainContext) -> None:
        """Turn the optimization on for the run described by ``context``."""
        raise NotImplementedError


@attrs.frozen
class Telemetry:
    """One requested optimization: active (with the details it reported) or skipped (with
    the reason: unavailable here, or a declared conflict)."""

    name: str
    status: Literal["active", "skipped"]
    reason: str = ""
    details: str = ""


def apply_all(active, rows, context) -> list[Telemetry]:
    """Apply the active optimizations in request order; returns the telemetry rows with the
    ``details`` each one reported."""
    for optimization in active:
        optimization.apply(context)
    details = {optimization.name: optimization.details for optimization in active}
    return [attrs.evolve(row, details=details.get(row.name, "")) for row in rows]


def resolve(requested: dict, registry, device: str) -> tuple[list, list[Telemetry]]:
    """Build the requested optimizations, drop (auto) or refuse (strict, all of them in one
    error, a line each) the unavailable and conflicting ones; returns (active optimizations
    in request order, telemetry rows). ``device`` may name an index ("cuda:1" under
    torchrun): plugins are asked about its type."""
    import torch

    kind = torch.device(device).type
    active, rows, refused = [], [], []
    for name, spec in requested.items():
        optimization = registry.build(spec)
        optimization.name = name
        reason = optimization.unavailable(kind)
        clash = next((o.name for o in active if name in o.conflicts
                      or o.name in optimization.conflicts), None)
        if reason is None and clash is not None:
            reason = f"conflicts with {clash}"
        if reason is None:
            active.append(optimization)
            rows.append(Telemetry(name, "active"))
        elif spec.options.mode == "auto":
            rows.append(Telemetry(name, "skipped", reason))
        else:
            refused.append(f"optimizations.{name}: cannot be used here: {reason}; remove it, "
                           f"or set optimizations.{name}.mode = \"auto\" to skip it when it "
                           "cannot run")
    if refused:
        raise UserError("\n".join(refused))
    return active, rows
