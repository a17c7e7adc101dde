"""Under torchrun every process trains on "cuda:<local rank>": the optimizations must treat
that as CUDA. No GPU here, so CUDA's availability is faked; nothing is run on it."""

from pathlib import Path

import pytest
import torch

from cm.config import load_experiment
from cm.optimization import resolve
from cm.registry import get_registry
from cm.testing import TINY_RUN

DEMO = Path(__file__).resolve().parents[3] / "experiments" / "demo-posts.toml"
CUDA_ONLY = ("fp16", "tf32", "fused_adamw", "cuda_graphs")


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
@pytest.mark.parametrize("name", ["bf16", *CUDA_ONLY])
def test_an_indexed_cuda_device_is_cuda(fake_cuda, tmp_path, device, name):
    experiment = load_experiment(DEMO, [*TINY_RUN, f"output_dir={tmp_path}",
                                        f"optimizations.{name}={{}}"], registry=get_registry())
    active, telemetry = resolve(experiment.optimizations, get_registry(), device)
    assert [o.name for o in active] == [name]
    assert [(row.name, row.status) for row in telemetry] == [(name, "active")]


def test_cuda_only_ones_stay_refused_on_cpu(tmp_path):
    experiment = load_experiment(DEMO, [*TINY_RUN, f"output_dir={tmp_path}",
                                        *(f"optimizations.{n}={{ mode = 'auto' }}"
                                          for n in ("fp16", "tf32", "cuda_graphs"))],
                                 registry=get_registry())
    active, telemetry = resolve(experiment.optimizations, get_registry(), "cpu")
    assert active == []
    assert [row.status for row in telemetry] == ["skipped"] * 3


@pytest.mark.parametrize(("device", "pinned"), [("cuda:1", True), ("cuda", True), ("cpu", False)])
def test_loader_pins_memory_for_any_cuda_device(tmp_path, device, pinned):
    from cm.optimization import TrainContext
    from cm_optimizations.loader import Loader
    from cm_optimizations.options import LoaderOptions

    experiment = load_experiment(DEMO, [*TINY_RUN, f"output_dir={tmp_path}"],
                                 registry=get_registry())
    context = TrainContext(experiment, device, model=None)
    Loader(LoaderOptions()).apply(context)
    assert context.loader["pin_memory"] is pinned


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_peak_memory_reads_the_cuda_allocator_for_any_cuda_device(monkeypatch, device):
    from cm.train.engine import peak_memory_mb

    asked = []
    monkeypatch.setattr(torch.cuda, "max_memory_allocated",
                        lambda where=None: asked.append(where) or 3 * 2**20)
    assert peak_memory_mb(device) == 3.0
    assert asked == [device]
