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
        context.batching = "packing"
        # default: half of max_length; longer examples get a row alone (PackedBatches)
        context.token_budget = (self.options.token_budget
                                or max(16, context.experiment.data.max_length // 2))
        self.details = f"rows of {context.token_budget} tokens"
