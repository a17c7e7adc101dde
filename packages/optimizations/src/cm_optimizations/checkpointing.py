"""Gradient (activation) checkpointing: recompute encoder layers' activations in the backward
pass instead of storing them; less memory for about a third more compute."""


from cm.errors import UserError
from cm.optimization import Optimization


class GradientCheckpointing(Optimization):
    def unavailable(self, device):
        if self.options.offload and device != "cuda":
            return "offload = true needs CUDA (it moves activations from GPU to host memory)"
        return None

    def apply(self, context):
        backbone = context.model.backbone
        if not getattr(backbone, "supports_gradient_checkpointing", False):
            raise UserError("optimizations.gradient_checkpointing: the backbone "
                            f"{type(backbone).__name__} does not support it")
        backbone.activation_checkpointing_enable(
            activation_checkpointing_kwargs={"use_reentrant": False},
            every_n_layers=self.options.every_n_layers, offload=self.options.offload)
