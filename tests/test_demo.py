"""The README's main job, run as a user runs it: `cm run experiments/demo.toml`, then
`cm predict` with the checkpoint it wrote. One demo run (about 2 minutes) serves every
test."""

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

ROOT = Path(__file__).resolve().parents[1]
CM = shutil.which("cm", path=str(Path(sys.executable).parent)) or "cm"


def cm(*args, cwd):
    return subprocess.run([CM, *args], cwd=cwd, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo")
    result = cm("run", str(ROOT / "experiments" / "demo.toml"), cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    [run_dir] = (work / "outputs" / "demo").iterdir()
    return work, run_dir, result


def test_demo_learns_every_criterion(demo):
    """Issue 11's bar for the demo: test 9-criterion macro-F1 >= 0.80 and every criterion's
    F1 >= 0.5 (measured here: 0.97, every criterion >= 0.85; 100 test posts)."""
    _, run_dir, _ = demo
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_tuned/post_macro_f1"] >= 0.80, metrics["test_tuned/post_macro_f1"]
    per_criterion = {f"A.{i}": metrics[f"test_tuned/A.{i}/f1"] for i in range(1, 10)}
    assert min(per_criterion.values()) >= 0.5, per_criterion
    assert metrics["test/roc_auc"] > 0.95


def test_demo_prints_progress_and_a_summary(demo):
    _, run_dir, result = demo
    out = result.stdout
    assert "dry run ok" in out and "epoch 1:" in out and "samples/s" in out
    assert "9-criterion macro-F1" in out and "test per criterion" in out
    assert "sentence evidence" in out
    assert f"run finished: outputs/demo/{run_dir.name}" in out


def test_predict_scores_every_criterion_at_the_tuned_threshold(demo, tmp_path):
    work, run_dir, _ = demo
    posts = tmp_path / "posts.csv"
    posts.write_text("post_id,text\np1,I have not slept more than three hours a night for weeks "
                     "and I wake up at 4am every day.\n"
                     'p2,"Went hiking with friends, great day."\n')
    result = cm("predict", "--model", str(run_dir / "checkpoint"), str(posts), cwd=work)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["post_id"], r["criterion_id"]) for r in rows] == [
        (p, f"A.{i}") for p in ("p1", "p2") for i in range(1, 10)]
    thresholds = json.loads((run_dir / "checkpoint" / "meta.json").read_text())["thresholds"]
    for row in rows:
        assert 0.0 <= float(row["probability"]) <= 1.0
        assert int(row["decision"]) == (float(row["probability"])
                                        >= thresholds[row["criterion_id"]])
    assert "text" not in rows[0]  # outputs carry ids, not post text


def test_predict_rejects_a_file_without_text(demo, tmp_path):
    work, run_dir, _ = demo
    bad = tmp_path / "bad.csv"
    bad.write_text("id,body\n1,x\n")
    result = cm("predict", "--model", str(run_dir / "checkpoint"), str(bad), cwd=work)
    assert result.returncode == 2
    assert "missing column(s) ['post_id', 'text']" in result.stderr
