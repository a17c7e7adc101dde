"""The contract shared by optimization plugins (AMP, TF32, packing, LoRA, ...).

A factory returns an ``Optimization``. The engine asks each requested one whether it can run
here (``unavailable``), checks declared ``conflicts`` between the requested ones, then calls
``apply``. In ``strict`` mode (the default for explicit requests) an unavailable or
conflicting optimization is an error; in ``auto`` mode it is skipped with the reason logged.
"""

from typing import Literal

import attrs


@attrs.frozen
class OptimizationOptions:
    """Options every optimization has; plugins subclass this for their own options."""

    mode: Literal["strict", "auto"] = "strict"


class Optimization:
    """Base class: override ``unavailable`` and ``apply``; list names in ``conflicts``."""

    conflicts: tuple[str, ...] = ()

    def __init__(self, options: OptimizationOptions):
        self.options = options

    def unavailable(self, device: str) -> str | None:
        """Why this cannot run on ``device`` ("cpu", "cuda", ...), or None when it can."""
        return None

    def apply(self, context) -> None:
        """Turn the optimization on for the run described by ``context``."""
        raise NotImplementedError
