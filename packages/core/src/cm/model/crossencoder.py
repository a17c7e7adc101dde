"""The cross-encoder: backbone -> pooling -> head, on padded or packed batches."""

from torch import nn

from cm.model.packed import encode


class CrossEncoder(nn.Module):
    """``[CLS] criterion [SEP] post [SEP]`` -> logits. DeBERTa has no pooler output, so the
    pooling is a component of ours; packed batches are unpacked before pooling."""

    def __init__(self, backbone, pooling, head):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.head = head

    def forward(self, batch):
        all_layers = getattr(self.pooling, "needs_all_hidden", False)
        hidden, mask = encode(self.backbone, batch, output_hidden_states=all_layers)
        if all_layers:
            return self.head(self.pooling(hidden[-1], mask, hidden))
        return self.head(self.pooling(hidden, mask, None))


def build_cross_encoder(experiment, registry, backbone, num_logits) -> CrossEncoder:
    """Pooling and head from the experiment's components, sized from the backbone."""
    config = backbone.config
    pooling = registry.build(experiment.model.pooling, hidden_size=config.hidden_size,
                             num_layers=config.num_hidden_layers)
    head = registry.build(experiment.model.head, in_features=pooling.out_features,
                          num_logits=num_logits)
    return CrossEncoder(backbone, pooling, head)
