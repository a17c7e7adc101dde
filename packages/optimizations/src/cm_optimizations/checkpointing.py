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
        kwargs = {"use_reentrant": False}
        layers, offload = self.options.every_n_layers, self.options.offload
        if hasattr(backbone, "activation_checkpointing_enable"):  # transformers >= 5.23
            backbone.activation_checkpointing_enable(
                activation_checkpointing_kwargs=kwargs, every_n_layers=layers, offload=offload)
            return
        extra = {**({"every_n_layers": layers} if layers != 1 else {}),
                 **({"offload": True} if offload else {})}
        try:  # older transformers: the deprecated name; before 5.x without the two options
            backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs, **extra)
        except TypeError:
            import transformers

            raise UserError(f"optimizations.gradient_checkpointing: {', '.join(extra)} needs a "
                            f"newer transformers than {transformers.__version__} (5.17 has "
                            "both); upgrade it, or leave every_n_layers = 1 and "
                            "offload = false") from None
