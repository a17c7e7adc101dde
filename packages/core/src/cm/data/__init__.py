"""ReDSM5 data: typed records, a strict loader, (post, criterion) pairs, grouped splits, demo set.

Nothing here builds or loads a model (nothing is imported from the model package), so
data problems surface before one is built; ``batching`` makes the torch batches.
"""
