"""Split reports: every artifact is written, parses, and carries the same numbers as metrics."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from cm.evaluate.calibration import ece
from cm.evaluate.calibrator import Calibrator, logit, sigmoid
from cm.evaluate.decisions import Decision, Pairs, calibration_scores, intervals, scores
from cm.evaluate.metrics import pair_metrics, per_criterion, post_level
from cm.evaluate.report import write_split_report

CRITERIA = [f"A.{i}" for i in range(1, 10)]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def split_data():
    """12 posts x 9 criteria, shuffled into pairs, with informative but imperfect scores."""
    rng = np.random.default_rng(3)
    true = (rng.random((12, 9)) < 0.3).astype(int)
    true[0, 0] = 1  # both classes present
    scores = np.clip(true * 0.4 + rng.random((12, 9)) * 0.6, 0, 1)
    rows = [
        (f"s_{i}", c, true[i, j], scores[i, j]) for i in range(12) for j, c in enumerate(CRITERIA)
    ]
    rows = [rows[k] for k in rng.permutation(len(rows))]
    posts, ids, labels, probs = (list(column) for column in zip(*rows, strict=True))
    return {"posts": posts, "ids": ids, "labels": np.array(labels), "probs": np.array(probs)}


CALIBRATOR = Calibrator("platt", 0.5, dict.fromkeys(CRITERIA, 0.5),
                        {c: 0.1 * i for i, c in enumerate(CRITERIA)})
DECISION = Decision(CALIBRATOR, {c: 0.3 + 0.02 * i for i, c in enumerate(CRITERIA)})


def write(tmp_path: Path, data):
    pairs = Pairs.of(data["posts"], data["ids"], data["labels"], data["probs"])
    metrics = {**scores(pairs, DECISION, CRITERIA),
               **calibration_scores(pairs, DECISION, seed=0, resamples=200),
               **intervals(pairs, DECISION, seed=0, resamples=200)}
    return write_split_report(tmp_path / "reports", "test", pairs, [None] * len(pairs.labels),
                              DECISION, CRITERIA, metrics)


def _decided(data):
    bias = np.array([CALIBRATOR.biases[c] for c in data["ids"]])
    calibrated = sigmoid(0.5 * (logit(data["probs"]) - 0.5) + bias)
    cut = np.array([DECISION.thresholds[c] for c in data["ids"]])
    return calibrated, (calibrated >= cut).astype(int)


def test_writes_all_artifacts(tmp_path, split_data):
    paths = write(tmp_path, split_data)
    assert {name: path.name for name, path in paths.items()} == {
        "classification_report": "test_classification_report.json",
        "confusion_matrix": "test_confusion_matrix.png",
        "reliability": "test_reliability.png",
        "reliability_table": "test_reliability.csv",
        "per_criterion": "test_per_criterion.csv",
        "predictions": "test_predictions.csv",
        "metrics": "test_metrics.json",
    }
    assert all(path.is_file() and path.parent == tmp_path / "reports" for path in paths.values())


def test_classification_report_json(tmp_path, split_data):
    report = json.loads(write(tmp_path, split_data)["classification_report"].read_text())
    assert set(report) == {"no_match", "match", "accuracy", "macro avg", "weighted avg"}
    y, (_, pred) = split_data["labels"], _decided(split_data)
    assert report["match"]["support"] == int(y.sum())
    assert report["no_match"]["support"] == int(len(y) - y.sum())
    assert report["match"]["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))


def test_metrics_json_matches_the_metric_functions(tmp_path, split_data):
    data = split_data
    saved = json.loads(write(tmp_path, data)["metrics"].read_text())
    assert saved["split"] == "test" and saved["thresholds"] == DECISION.thresholds
    assert saved["calibrator"] == CALIBRATOR.meta()
    labels, (calibrated, _) = data["labels"], _decided(data)
    cut = np.array([DECISION.thresholds[c] for c in data["ids"]])
    metrics = saved["metrics"]
    for key, value in pair_metrics(labels, calibrated, cut).items():
        assert metrics[key] == pytest.approx(value)
    post = post_level(data["posts"], data["ids"], labels, calibrated, cut, CRITERIA)
    assert metrics["post_macro_f1"] == pytest.approx(post["macro_f1"])
    assert metrics["post_n_posts"] == 12
    for cid, row in per_criterion(data["ids"], labels, calibrated, cut).items():
        assert metrics[f"{cid}/f1"] == pytest.approx(row["f1"])
        assert metrics[f"{cid}/f1_low"] <= row["f1"] <= metrics[f"{cid}/f1_high"]
    assert metrics["ece_raw"] == pytest.approx(ece(labels, data["probs"]))
    assert metrics["ece"] == pytest.approx(ece(labels, calibrated))
    assert 0 <= metrics["ece_low"] <= metrics["ece_high"] <= 1
    assert metrics["ece_low"] < metrics["ece_high"]


def test_reliability_csv_per_criterion_uses_the_calibrated_probabilities(tmp_path, split_data):
    path = write(tmp_path, split_data)["reliability_table"]
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    calibrated, _ = _decided(split_data)
    ids, labels = np.array(split_data["ids"]), split_data["labels"]
    for cid in CRITERIA:
        mine = [r for r in rows if r["criterion"] == cid]
        assert sum(int(r["cells"]) for r in mine) == (ids == cid).sum()  # 12 posts each
        for r in mine:
            p = calibrated[ids == cid]
            inside = (p >= float(r["bin_low"])) & (p < float(r["bin_high"]))
            assert int(r["cells"]) == inside.sum()
            assert float(r["mean_probability"]) == pytest.approx(p[inside].mean(), abs=1e-6)
            assert float(r["match_rate"]) == pytest.approx(labels[ids == cid][inside].mean(),
                                                           abs=1e-6)


def test_pngs(tmp_path, split_data):
    import matplotlib.image

    paths = write(tmp_path, split_data)
    for name in ("confusion_matrix", "reliability"):
        raw = paths[name].read_bytes()
        assert raw[:8] == PNG_MAGIC
        assert len(raw) > 5_000  # an actual plot, not an empty canvas
        image = matplotlib.image.imread(paths[name])
        assert image.shape[0] > 300 and image.shape[1] > 300
        assert image[..., :3].std() > 0.05  # not a blank image


def test_per_criterion_csv(tmp_path, split_data):
    path = write(tmp_path, split_data)["per_criterion"]
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["criterion"] for row in rows] == CRITERIA
    assert list(rows[0]) == ["criterion", "threshold", "slope", "bias", "precision", "recall",
                             "f1", "f1_low", "f1_high", "ece_raw", "ece", "support"]
    ids, labels = np.array(split_data["ids"]), split_data["labels"]
    _, pred = _decided(split_data)
    for row in rows:
        mask = ids == row["criterion"]
        assert float(row["threshold"]) == DECISION.thresholds[row["criterion"]]
        assert int(row["support"]) == labels[mask].sum()
        f1 = skm.f1_score(labels[mask], pred[mask], zero_division=0)
        assert float(row["f1"]) == pytest.approx(f1)


def test_predictions_csv(tmp_path, split_data):
    path = write(tmp_path, split_data)["predictions"]
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    calibrated, pred = _decided(split_data)
    assert [r["post_id"] for r in rows] == split_data["posts"]
    assert [float(r["probability"]) for r in rows] == pytest.approx(calibrated, abs=1e-6)
    assert [int(r["decision"]) for r in rows] == list(pred)


def test_aggregate_artifacts_hold_no_post_ids(tmp_path, split_data):
    paths = write(tmp_path, split_data)
    text = "".join(paths[n].read_text() for n in ("classification_report", "metrics",
                                                   "per_criterion"))
    assert "s_0" not in text  # aggregate reports: not even post ids
    assert "A.1" in text
