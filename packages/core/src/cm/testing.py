"""For tests of cm and of plugins written for it: ``--set`` overrides that shrink the demo
experiment to a DeBERTaV3-shaped run training in seconds on CPU (one layer, hidden 32,
64-token pairs, one epoch, 40/30/30 splits so val and test hold enough positives)."""

TINY_RUN = ["model.tiny.hidden_size=32", "model.tiny.num_heads=2", "model.tiny.num_layers=1",
            "model.tiny.intermediate_size=64", "data.max_length=64", "data.stride=16",
            "train.epochs=1", "train.batch_size=32", "data.split=[0.4, 0.3, 0.3]"]
