"""Training batches with less padding: length bucketing, or sequence packing (several pairs
per row with a block-diagonal mask; exact for DeBERTaV3, which has no absolute positions)."""


from cm.errors import UserError
from cm.model.packed import check_packable
from cm.optimization import Optimization


class Bucketing(Optimization):
    """Batches of similar length (sorted within shuffled chunks, batch order shuffled)."""

    conflicts = ("packing",)

    def apply(self, context):
        context.batching = "bucketing"


class Packing(Optimization):
    conflicts = ("bucketing",)

    def apply(self, context):
        try:
            check_packable(context.model.backbone)
        except ValueError as exc:
            raise UserError(f"optimizations.packing: {exc}") from None
        budget = self.options.token_budget or context.token_budget
        if budget < context.experiment.data.max_length:
            raise UserError(f"optimizations.packing.token_budget ({budget}) must be at least "
                            f"data.max_length ({context.experiment.data.max_length})")
        context.batching = "packing"
        context.token_budget = budget
