"""ReDSM5 data: typed records, a strict loader, (post, criterion) pairs, grouped splits, demo set.

Everything here is pure Python (no torch) so data problems surface before a model is built.
"""
