"""DataLoader tuning: worker processes prepare batches while the model trains; pinned
memory speeds host-to-GPU copies (CUDA only, ignored elsewhere)."""

import attrs
import torch
from attrs.validators import ge

from cm.optimization import Optimization, OptimizationOptions


@attrs.frozen
class LoaderOptions(OptimizationOptions):
    num_workers: int = attrs.field(default=2, validator=ge(0))
    pin_memory: bool = True
    persistent_workers: bool = True


class Loader(Optimization):
    def apply(self, context):
        options = self.options
        cuda = torch.device(context.device).type == "cuda"
        context.loader.update(num_workers=options.num_workers,
                              pin_memory=options.pin_memory and cuda,
                              persistent_workers=options.persistent_workers
                              and options.num_workers > 0)
