"""The paired difference over seeds and posts, read from runs' prediction files."""

import csv
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from cm.evaluate.compare import compare
from cm.evaluate.paired_seeds import paired_over_seeds
from cm.evaluate.report import PREDICTION_COLUMNS

CRITERIA = ("A.1", "A.2", "A.3")


def write_run(path: Path, labels, decisions, split="test") -> Path:
    """A run folder whose ``split`` predictions score post p<i // 3> on criterion i % 3."""
    path.mkdir(parents=True, exist_ok=True)
    with (path / f"{split}_predictions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(PREDICTION_COLUMNS)
        for i, (y, d) in enumerate(zip(labels, decisions, strict=True)):
            writer.writerow([f"p{i // 3}", CRITERIA[i % 3], "", y, 0.5, d])
    return path


def macro_f1(labels, decisions) -> float:
    """The 9-criterion (here 3) macro-F1 over posts, computed by scikit-learn."""
    y, d = np.reshape(labels, (-1, 3)), np.reshape(decisions, (-1, 3))
    return float(np.mean([f1_score(y[:, j], d[:, j], zero_division=0) for j in range(3)]))


def test_the_difference_is_the_mean_over_seeds_of_each_seeds_difference(tmp_path):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 120)
    runs, expected = [], []
    for seed in range(3):
        a = np.where(rng.random(120) < 0.1, 1 - labels, labels)
        b = np.where(rng.random(120) < 0.3, 1 - labels, labels)
        runs.append((write_run(tmp_path / f"a{seed}", labels, a),
                     write_run(tmp_path / f"b{seed}", labels, b)))
        expected.append(macro_f1(labels, a) - macro_f1(labels, b))
    row = paired_over_seeds(runs)["post_macro_f1"]
    assert row["per_seed"] == pytest.approx(expected)
    assert row["difference"] == pytest.approx(np.mean(expected))
    assert 0 < row["low"] <= row["difference"] <= row["high"]


def test_val_predictions_are_read_for_val(tmp_path):
    a = write_run(tmp_path / "a", [1, 1, 1], [1, 1, 1], split="val")
    b = write_run(tmp_path / "b", [1, 1, 1], [0, 1, 1], split="val")
    row = paired_over_seeds([(a, b)], split="val")["post_macro_f1"]
    assert row["a"] == 1.0 and row["difference"] == pytest.approx(1 / 3)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 12), st.integers(0, 2**16), st.integers(0, 100))
def test_one_seed_is_the_paired_bootstrap_over_posts_and_swapping_negates(posts, data, seed):
    rng = np.random.default_rng(data)
    labels = rng.integers(0, 2, posts * 3)
    with tempfile.TemporaryDirectory() as scratch:
        a = write_run(Path(scratch) / "a", labels, rng.integers(0, 2, posts * 3))
        b = write_run(Path(scratch) / "b", labels, rng.integers(0, 2, posts * 3))
        ours = paired_over_seeds([(a, b)], seed=seed, resamples=200)
        theirs = compare([a], [b], seed=seed, resamples=200)
        swapped = paired_over_seeds([(b, a)], seed=seed, resamples=200)
    for name, row in ours.items():
        for key in ("difference", "low", "high", "a", "b"):
            assert row[key] == pytest.approx(theirs[name][key])
        assert swapped[name]["difference"] == pytest.approx(-row["difference"])
        assert swapped[name]["low"] == pytest.approx(-row["high"])
