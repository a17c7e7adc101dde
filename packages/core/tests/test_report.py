"""Split reports: every artifact is written, parses, and carries the same numbers as metrics."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from sklearn import metrics as skm

from cm.evaluate.metrics import pair_metrics, per_criterion, post_level
from cm.evaluate.report import metrics_table, write_split_report

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


def write(tmp_path: Path, data, threshold=0.45):
    return write_split_report(
        tmp_path / "reports",
        "test",
        data["labels"],
        data["probs"],
        threshold,
        data["ids"],
        data["posts"],
        CRITERIA,
    )


def test_writes_all_artifacts(tmp_path, split_data):
    paths = write(tmp_path, split_data)
    assert {name: path.name for name, path in paths.items()} == {
        "classification_report": "test_classification_report.json",
        "confusion_matrix": "test_confusion_matrix.png",
        "per_criterion": "test_per_criterion.csv",
        "metrics": "test_metrics.json",
    }
    assert all(path.is_file() and path.parent == tmp_path / "reports" for path in paths.values())


def test_classification_report_json(tmp_path, split_data):
    report = json.loads(write(tmp_path, split_data)["classification_report"].read_text())
    keys = {"no_match", "match", "accuracy", "macro avg", "weighted avg", "threshold"}
    assert set(report) == keys
    assert report["threshold"] == 0.45
    y, pred = split_data["labels"], (split_data["probs"] >= 0.45).astype(int)
    assert report["match"]["support"] == int(y.sum())
    assert report["no_match"]["support"] == int(len(y) - y.sum())
    assert report["match"]["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))


def test_metrics_json_matches_the_metric_functions(tmp_path, split_data):
    data = split_data
    saved = json.loads(write(tmp_path, data)["metrics"].read_text())
    assert saved["split"] == "test" and saved["threshold"] == 0.45
    labels, probs = data["labels"], data["probs"]
    assert saved["pair"] == pytest.approx(pair_metrics(labels, probs, 0.45))
    expected_post = post_level(data["posts"], data["ids"], labels, probs, 0.45, CRITERIA)
    assert saved["post"] == pytest.approx(expected_post)
    assert saved["post"]["n_posts"] == 12
    assert list(saved["per_criterion"]) == CRITERIA
    for cid, row in per_criterion(data["ids"], labels, probs, 0.45).items():
        assert saved["per_criterion"][cid] == pytest.approx(row)
    assert {"roc_auc", "pr_auc", "macro_f1", "tp"} <= set(saved["pair"])


def test_confusion_matrix_png(tmp_path, split_data):
    path = write(tmp_path, split_data)["confusion_matrix"]
    raw = path.read_bytes()
    assert raw[:8] == PNG_MAGIC
    assert len(raw) > 5_000  # an actual plot, not an empty canvas
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 300
    assert image[..., :3].std() > 0.05  # not a blank image


def test_per_criterion_csv(tmp_path, split_data):
    path = write(tmp_path, split_data)["per_criterion"]
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 9
    assert [row["criterion"] for row in rows] == CRITERIA
    assert list(rows[0]) == ["criterion", "precision", "recall", "f1", "support", "n"]
    ids, labels = np.array(split_data["ids"]), split_data["labels"]
    pred = split_data["probs"] >= 0.45
    for row in rows:
        mask = ids == row["criterion"]
        assert int(row["n"]) == 12 and int(row["support"]) == labels[mask].sum()
        f1 = skm.f1_score(labels[mask], pred[mask], zero_division=0)
        assert float(row["f1"]) == pytest.approx(f1)


def test_artifacts_hold_ids_not_text(tmp_path, split_data):
    paths = write(tmp_path, split_data)
    text = "".join(paths[n].read_text() for n in ("classification_report", "metrics"))
    assert "s_0" not in text  # not even post ids: reports are aggregate only
    assert "A.1" in text


def test_bad_input_writes_nothing(tmp_path, split_data):
    data = dict(split_data, posts=split_data["posts"][:-1] + ["lonely"])
    with pytest.raises(ValueError, match="post"):
        write(tmp_path, data)
    assert not list((tmp_path / "reports").glob("*"))


def test_metrics_table_layout():
    rows = {
        "val": {"macro_f1": 0.812345, "tp": 12, "nested": {"a": 1}},
        "test": {"macro_f1": 0.7, "roc_auc": 0.91},
    }
    table = metrics_table(rows)
    assert [column.header for column in table.columns] == ["metric", "val", "test"]
    console = Console(record=True, width=100)
    console.print(table)
    lines = console.export_text().splitlines()
    by_metric = {line.split()[1]: line.split()[2:] for line in lines if line.startswith("│ ")}
    assert by_metric["macro_f1"] == ["│", "0.8123", "│", "0.7000", "│"]
    assert by_metric["tp"] == ["│", "12", "│", "-", "│"]
    assert by_metric["roc_auc"] == ["│", "-", "│", "0.9100", "│"]
    assert "nested" not in by_metric
