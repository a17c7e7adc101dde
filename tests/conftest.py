"""Fixtures shared by the repository-level tests."""

from pathlib import Path

import pytest

from cm.testing import TINY_RUN

DEMO = Path(__file__).resolve().parents[1] / "experiments" / "demo-posts.toml"


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """A real (untrained) checkpoint of the tiny demo model, as `cm run` saves it."""
    from cm.config import load_experiment
    from cm.model.backbone import load_backbone
    from cm.model.checkpoint import save_checkpoint
    from cm.model.crossencoder import build_cross_encoder
    from cm.registry import get_registry

    directory = tmp_path_factory.mktemp("checkpoint")
    experiment = load_experiment(DEMO, TINY_RUN, registry=get_registry())
    backbone, tokenizer = load_backbone("tiny-deberta-v3", texts=["I cannot sleep at night"] * 60,
                                        tiny=experiment.model.tiny, cache_root=directory / "cache")
    model = build_cross_encoder(experiment, get_registry(), backbone, 1)
    criteria = [{"id": f"A.{i}", "text": f"criterion {i} text"} for i in range(1, 10)]
    return save_checkpoint(directory / "checkpoint", model, tokenizer, experiment,
                           {"num_logits": 1, "epoch": 1, "final": True, "criteria": criteria,
                            "temperatures": {c["id"]: 1.0 for c in criteria},
                            "thresholds": {c["id"]: 0.5 for c in criteria}})
