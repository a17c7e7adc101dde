"""cm compare on run directories: paired differences, itself, and refusals."""

import csv
import json

import numpy as np
from click.testing import CliRunner

from cm.cli.main import cli
from cm.evaluate.report import PREDICTION_COLUMNS


def _run(path, labels, decisions, posts=None, criteria=("A.1", "A.2", "A.3")):
    path.mkdir(parents=True)
    posts = posts or [f"p{i // len(criteria)}" for i in range(len(labels))]
    with (path / "test_predictions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(PREDICTION_COLUMNS)
        for i, (y, d) in enumerate(zip(labels, decisions, strict=True)):
            writer.writerow([posts[i], criteria[i % len(criteria)], "", y, 0.5, d])
    return path


def _compare(*args):
    result = CliRunner().invoke(cli, ["compare", *map(str, args)])
    return result


def test_compare_with_itself_is_zero_with_a_zero_width_interval(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 90)
    run = _run(tmp_path / "a", labels, rng.integers(0, 2, 90))
    result = _compare(run, run, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert list(rows)[0] == "post_macro_f1"
    for row in rows.values():
        assert row["difference"] == row["low"] == row["high"] == 0.0 and row["a"] == row["b"]


def test_compare_finds_the_better_run(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 150)
    noisy = np.where(rng.random(150) < 0.4, 1 - labels, labels)
    good = _run(tmp_path / "good", labels, labels)
    bad = _run(tmp_path / "bad", labels, noisy)
    result = _compare(good, bad, "--json")
    rows = json.loads(result.output)
    assert rows["post_macro_f1"]["a"] == 1.0
    assert 0 < rows["post_macro_f1"]["low"] <= rows["post_macro_f1"]["difference"]
    table = _compare(good, bad)
    assert "post_macro_f1" in table.output and "95% interval" in table.output


def test_compare_refuses_different_test_posts(tmp_path):
    a = _run(tmp_path / "a", [1, 0, 1], [1, 0, 0])
    b = _run(tmp_path / "b", [1, 0, 1], [1, 0, 0], posts=["q0", "q0", "q0"])
    result = _compare(a, b)
    assert result.exit_code == 2
    assert "different test posts: 1 only in" in result.output
    assert "['p0']" in result.output and "['q0']" in result.output
    relabelled = _run(tmp_path / "c", [0, 0, 1], [1, 0, 0])
    assert "labels differ" in _compare(a, relabelled).output
    assert "no test_predictions.csv" in _compare(a, tmp_path).output


def test_compare_of_runs_with_different_criteria_names_them(tmp_path):
    nine = _run(tmp_path / "nine", [1, 0, 1] * 3, [1, 0, 0] * 3,
                criteria=[f"A.{i}" for i in range(1, 10)])
    ten = _run(tmp_path / "ten", [1, 0, 1, 0, 1] * 2, [1, 0, 0, 0, 1] * 2,
               criteria=[f"A.{i}" for i in range(1, 11)])
    result = _compare(nine, ten)
    assert result.exit_code == 2, result.output
    assert f"different test criteria: 0 only in A {nine} ([]), 1 only in B" in result.output
    assert f"{ten} (['A.10']); compare runs with the same criteria file" in result.output


def test_compare_refuses_a_predictions_file_with_a_quoting_error(tmp_path):
    run = _run(tmp_path / "a", [1, 0, 1], [1, 0, 0])
    path = run / "test_predictions.csv"
    path.write_text(path.read_text().replace("p0,A.2", 'p0,"A.2'))
    result = _compare(run, run)
    assert result.exit_code == 2
    assert f"{path} (line 3): unreadable CSV" in result.output
