"""A run's decisions end to end on the tiny model: selection metric, per-criterion
thresholds and the calibrator in the checkpoint and used by predict, intervals, evidence,
cm compare, and the sentence level."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

from cm.cli.main import cli
from cm.config import load_experiment
from cm.data.demo import write_demo
from cm.model.checkpoint import load_checkpoint
from cm.predict import predict
from cm.registry import get_registry
from cm.testing import TINY_RUN
from cm.train import engine

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

DEMO = Path(__file__).resolve().parents[3] / "experiments" / "demo-posts.toml"
CRITERIA = [f"A.{i}" for i in range(1, 10)]


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("CM_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cm-cache"))


def quiet():
    return Console(file=open("/dev/null", "w"))  # noqa: SIM115


def small(tmp_path, *more):
    return load_experiment(DEMO, [*TINY_RUN, f"output_dir={tmp_path}", *more],
                           registry=get_registry())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    console = Console(record=True, width=160, file=open("/dev/null", "w"))  # noqa: SIM115
    return engine.run_experiment(small(out, "train.epochs=2", "eval.bootstrap_resamples=300",
                                       "eval.evidence=true"),
                                 console=console), console.export_text()


def test_summary_leads_with_the_nine_criterion_macro_f1_and_its_interval(run):
    result, printed = run
    metrics = json.loads((result.directory / "metrics.json").read_text())
    assert metrics == pytest.approx(result.metrics)
    for split in ("val_tuned", "test_tuned"):
        value = metrics[f"{split}/post_macro_f1"]
        assert metrics[f"{split}/post_macro_f1_low"] <= value <= metrics[
            f"{split}/post_macro_f1_high"]
        for cid in CRITERIA:
            assert {f"{split}/{cid}/{k}" for k in ("threshold", "f1", "f1_low", "f1_high",
                                                   "ece_raw", "ece")} <= set(metrics)
        for name in ("hit_at_1", "hit_at_3", "random_hit_at_1", "overlap_hit_at_3"):
            assert 0 <= metrics[f"{split}/evidence_{name}"] <= 1
    headline = printed.index("9-criterion macro-F1")
    assert headline < printed.index("pair macro-F1")
    lo, hi = metrics["test_tuned/post_macro_f1_low"], metrics["test_tuned/post_macro_f1_high"]
    assert f"{metrics['test_tuned/post_macro_f1']:.3f} [{lo:.3f}, {hi:.3f}]" in printed
    assert "ECE" in printed and "most word overlap" in printed
    hits = [f"{metrics[f'test_tuned/evidence_{w}hit_at_1']:.3f} / "
            f"{metrics[f'test_tuned/evidence_{w}hit_at_3']:.3f}" for w in ("", "random_",
                                                                       "overlap_")]
    assert all(h in printed for h in hits)
    # the mean of the criteria's F1 is the headline (the post view)
    assert metrics["test_tuned/post_macro_f1"] == pytest.approx(
        np.mean([metrics[f"test_tuned/{c}/f1"] for c in CRITERIA]))


def test_the_tf_idf_floor_is_scored_and_shown_beside_the_model(run):
    result, printed = run
    metrics = result.metrics
    for split in ("val", "test"):
        value = metrics[f"floor/{split}/post_macro_f1"]
        assert 0 <= metrics[f"floor/{split}/post_macro_f1_low"] <= value <= metrics[
            f"floor/{split}/post_macro_f1_high"] <= 1
        assert value == pytest.approx(np.mean([metrics[f"floor/{split}/{c}/f1"]
                                               for c in CRITERIA]))
    assert "TF-IDF floor, test" in printed
    floor, model = metrics["floor/test/post_macro_f1"], metrics["test_tuned/post_macro_f1"]
    verdict = "does not beat the TF-IDF floor" if model <= floor else "beats the TF-IDF floor"
    assert f"{verdict} on test" in printed and f"{floor:.3f}" in printed


def test_calibration_is_kept_only_where_it_does_not_raise_val_ece(run):
    result, printed = run
    metrics = result.metrics
    assert metrics["val_tuned/ece"] <= metrics["val_tuned/ece_raw"]
    assert metrics["test_tuned/ece_low"] <= metrics["test_tuned/ece"] <= metrics[
        "test_tuned/ece_high"]
    assert "calibration kept on val: " in printed


def test_best_epoch_is_the_selection_metrics_best(run):
    result, _ = run
    history = json.loads((result.directory / "history.json").read_text())
    scores = [h["val_tuned/post_macro_f1"] for h in history]
    assert result.metrics["best_epoch"] == 1 + int(np.argmax(scores))


def test_checkpoint_carries_the_decision_and_predict_uses_it(run, tmp_path):
    result, _ = run
    checkpoint = load_checkpoint(result.directory / "checkpoint")
    meta = checkpoint.meta
    calibrator = meta["calibrator"]
    assert set(meta["thresholds"]) == set(calibrator["biases"]) == set(CRITERIA)
    assert calibrator["kept"] in ("none", "prior", "platt")
    assert result.metrics["calibration/platt_kept"] == float(calibrator["kept"] == "platt")
    for cid in CRITERIA:
        assert meta["thresholds"][cid] == result.metrics[f"test_tuned/{cid}/threshold"]
        assert calibrator["biases"][cid] == result.metrics[f"calibration/{cid}/bias"]
        assert calibrator["slopes"][cid] == result.metrics[f"calibration/{cid}/slope"]
    with (result.directory / "test_predictions.csv").open() as handle:
        logged = list(csv.DictReader(handle))
    post = logged[0]["post_id"]
    from cm.data.prepare import prepare

    posts = prepare(checkpoint.experiment, get_registry()).corpus.posts
    text = next(p.text for p in posts if p.post_id == post)
    rows = predict(checkpoint, [(post, text)], with_text=True)
    for row, saved in zip(rows, [r for r in logged if r["post_id"] == post], strict=True):
        assert row["probability"] == pytest.approx(float(saved["probability"]), abs=1e-5)
        assert row["decision"] == int(saved["decision"])
        assert row["decision"] == int(row["probability"] >= meta["thresholds"][row["criterion_id"]])
        if row["decision"]:
            assert text[row["evidence_start"]:row["evidence_end"]] == row["evidence_text"]
            assert 0 <= row["evidence_score"] <= 1


def test_compare_with_itself_is_zero(run):
    result, _ = run
    out = CliRunner().invoke(cli, ["compare", str(result.directory), str(result.directory),
                                   "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert rows["post_macro_f1"] == {**rows["post_macro_f1"], "difference": 0.0, "low": 0.0,
                                     "high": 0.0}


def test_thresholds_global_and_fixed(tmp_path):
    fixed = engine.run_experiment(small(tmp_path, "eval.thresholds=0.4",
                                        "eval.calibration=none", "eval.evidence=false",
                                        "eval.floor=false"),
                                  console=quiet())
    assert not [k for k in fixed.metrics if k.startswith("floor/")]
    assert {fixed.metrics[f"test_tuned/{c}/threshold"] for c in CRITERIA} == {0.4}
    assert {fixed.metrics[f"calibration/{c}/slope"] for c in CRITERIA} == {1.0}
    assert fixed.metrics["calibration/prior_kept"] == fixed.metrics["calibration/platt_kept"] == 0
    assert "test_tuned/evidence_hit_at_1" not in fixed.metrics
    shared = engine.run_experiment(small(tmp_path, "eval.thresholds=global",
                                         "eval.evidence=false"), console=quiet())
    assert len({shared.metrics[f"test_tuned/{c}/threshold"] for c in CRITERIA}) == 1


def test_sentence_level_runs_end_to_end(tmp_path):
    root = write_demo(tmp_path / "data", n_posts=40)
    experiment = small(tmp_path, "data.level=sentence", f'data.dataset={{name="redsm5", '
                       f'root="{root}"}}', "data.max_length=48", "eval.bootstrap_resamples=200")
    result = engine.run_experiment(experiment, console=quiet())
    assert result.status == "FINISHED"
    with (result.directory / "test_predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert all(":" in r["sentence_id"] for r in rows)
    labels = [int(r["label"]) for r in rows]
    assert 0 < sum(labels) < 0.1 * len(labels)  # sentences: mostly negatives now
    posts = {r["post_id"] for r in rows}
    assert result.metrics["test_tuned/post_n_posts"] == len(posts)
    assert result.metrics["test_tuned/n"] == len(rows)  # pair scores over sentences
    assert result.metrics["floor/test/post_n_posts"] == len(posts)  # the floor reads posts
    assert result.metrics["floor/test/n"] == len(posts) * len(CRITERIA)
    checkpoint = load_checkpoint(result.directory / "checkpoint")
    scored = predict(checkpoint, [("new", "I can't sleep at all. The weather is nice.")])
    assert [r["criterion_id"] for r in scored] == CRITERIA  # one row per post and criterion
