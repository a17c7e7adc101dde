"""CUDA-marked tests (``pytest -m cuda``, run by scripts/gpu-check on a GPU machine). Where
no CUDA GPU is visible they are collected and skipped with the reason, so the default suite
passes on CPU and ``pytest -m cuda`` there lists what a GPU run would check."""

import pytest
import torch

REASON = "needs a CUDA GPU: run scripts/gpu-check on one (benchmarks/README.md)"


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(pytest.mark.skip(reason=REASON))
