"""DataLoader tuning: worker processes prepare batches while the model trains; pinned
memory speeds host-to-GPU copies (CUDA only, ignored elsewhere)."""

import torch

from cm.optimization import Optimization


class Loader(Optimization):
    def apply(self, context):
        options = self.options
        cuda = torch.device(context.device).type == "cuda"
        context.loader.update(num_workers=options.num_workers,
                              pin_memory=options.pin_memory and cuda,
                              persistent_workers=options.persistent_workers
                              and options.num_workers > 0)
