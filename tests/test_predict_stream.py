"""`cm predict` streams (issue 21, point 3): the posts file is read a line at a time and
scored in groups, so the rows do not depend on how posts are grouped; a bad row anywhere is
refused before any row is written; rows go to standard output or --out as CSV, JSON or JSONL,
progress to standard error. Its speed and memory on 100,000 posts are measured in
benchmarks/predict_scale.py, not here."""

import csv
import io
import json

import attrs
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from cm.cli.main import cli
from cm.evaluate.decisions import Decision
from cm.model.checkpoint import load_checkpoint
from cm.posts_file import iter_posts
from cm.predict import Predictor
from cm.predict.stream import groups, predict_file
from cm.terminal import console

TEXTS = ["I cannot sleep at night.", "Nothing matters to me anymore. I eat all day.",
         "We went hiking, it was a great day!", "I feel worthless. I think about death. " * 30,
         "tired", "Work was fine."]


def posts_file(tmp_path, n=6, suffix=".jsonl"):
    path = tmp_path / f"posts{suffix}"
    rows = [(f"p{i}", TEXTS[i % len(TEXTS)]) for i in range(n)]
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps({"post_id": p, "text": t}) + "\n" for p, t in rows))
    else:
        buffer = io.StringIO()
        csv.writer(buffer).writerows([("post_id", "text"), *rows])
        path.write_text(buffer.getvalue())
    return path


@given(lengths=st.lists(st.integers(1, 50), max_size=30), chars=st.integers(1, 120))
def test_groups_keep_every_post_in_order_within_the_budget(lengths, chars):
    posts = [(f"p{i}", "x" * n) for i, n in enumerate(lengths)]
    made = list(groups(iter(posts), chars))
    assert [post for group in made for post in group] == posts
    assert all(group for group in made)
    for group in made:
        assert len(group) == 1 or sum(len(text) for _, text in group) <= chars


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_the_file_is_read_a_post_at_a_time(tmp_path, suffix):
    """The first post comes out before a bad row further down is read."""
    path = posts_file(tmp_path, 3, suffix)
    with path.open("a") as handle:
        handle.write("{not json\n" if suffix == ".jsonl" else "p9,too,many,fields\n")
    posts = iter_posts(path)
    assert next(posts) == ("p0", TEXTS[0])
    assert next(posts) == ("p1", TEXTS[1])


def test_rows_do_not_depend_on_how_posts_are_grouped(checkpoint, tmp_path):
    predictor = Predictor.of(load_checkpoint(checkpoint), batch_size=4)
    path = posts_file(tmp_path, 12)
    outputs = {}
    for chars in (1, 100, 10**9):  # a post per group, a few posts per group, one group
        out = tmp_path / f"out-{chars}.csv"
        predict_file(predictor, path, 12, out, "csv", console(file=io.StringIO()), chars)
        outputs[chars] = list(csv.DictReader(out.open()))
    one, *others = outputs.values()
    assert [(r["post_id"], r["criterion_id"]) for r in one] == \
        [(f"p{i}", f"A.{c}") for i in range(12) for c in range(1, 10)]
    for other in others:
        assert [{k: v for k, v in r.items() if k != "probability"} for r in other] == \
            [{k: v for k, v in r.items() if k != "probability"} for r in one]
        assert [float(r["probability"]) for r in other] == \
            pytest.approx([float(r["probability"]) for r in one], abs=2e-6)


def test_a_bad_row_at_the_end_is_refused_before_any_row_is_written(checkpoint, tmp_path):
    path = posts_file(tmp_path, 40)
    with path.open("a") as handle:
        handle.write(json.dumps({"post_id": "p3", "text": "again"}) + "\n")
    result = CliRunner().invoke(cli, ["predict", str(path), "--model", str(checkpoint)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{path} (line 41): duplicate post_id 'p3' (first on line 4)" in result.stderr


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_each_format_holds_every_row_and_progress_goes_to_stderr(fmt, checkpoint, tmp_path):
    path = posts_file(tmp_path)
    result = CliRunner().invoke(cli, ["predict", str(path), "--model", str(checkpoint),
                                      "--format", fmt, "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert list(rows[0]) == ["post_id", "criterion_id", "probability", "decision",
                                 "evidence_window", "evidence_tokens", "evidence_start",
                                 "evidence_end", "evidence_score"]
    elif fmt == "json":
        rows = json.loads(result.stdout)
    else:
        rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["post_id"], r["criterion_id"]) for r in rows] == \
        [(f"p{i}", f"A.{c}") for i in range(len(TEXTS)) for c in range(1, 10)]
    assert all(0 <= float(r["probability"]) <= 1 for r in rows)
    assert f"predict: posts {len(TEXTS)}/{len(TEXTS)} (100%)" in result.stderr
    assert f"predicted {len(TEXTS)} posts ({9 * len(TEXTS)} rows)" in result.stderr


def test_no_posts_writes_no_file(checkpoint, tmp_path):
    path, out = tmp_path / "posts.jsonl", tmp_path / "out.json"
    path.write_text("\n\n")
    result = CliRunner().invoke(cli, ["predict", str(path), "--model", str(checkpoint),
                                      "--out", str(out), "--format", "json"])
    assert result.exit_code == 2
    assert f"{path}: no posts" in result.stderr
    assert not out.exists()


def test_bf16_scores_close_to_fp32_on_cpu(checkpoint, tmp_path):
    loaded = load_checkpoint(checkpoint)
    posts = list(iter_posts(posts_file(tmp_path)))
    fp32 = Predictor.of(loaded, precision="fp32").rows(posts)
    bf16 = Predictor.of(loaded, precision="bf16").rows(posts)
    assert [r["probability"] for r in bf16] == \
        pytest.approx([r["probability"] for r in fp32], abs=0.02)
    assert [r["probability"] for r in bf16] != [r["probability"] for r in fp32]  # it ran bf16


@pytest.mark.parametrize("args, message", [
    (["--device", "cuda"], "--device = 'cuda' but no CUDA GPU is visible"),
    (["--batch-size", "0"], "Invalid value for '--batch-size'"),
    (["--precision", "fp16"], "Invalid value for '--precision'"),
])
def test_a_bad_option_is_exit_2(args, message, checkpoint, tmp_path):
    import torch

    if args[1] == "cuda" and torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible here")
    result = CliRunner().invoke(cli, ["predict", str(posts_file(tmp_path)), "--model",
                                      str(checkpoint), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_sentence_level_evidence_reuses_the_sentences_scores(tmp_path):
    """A sentence-level model scores every sentence against every criterion; a match's
    evidence is its best sentence, whose calibrated score is the post's probability (the
    post takes its highest sentence): nothing is scored twice."""
    from cm.config import load_experiment
    from cm.model.backbone import load_backbone
    from cm.model.checkpoint import save_checkpoint
    from cm.model.crossencoder import build_cross_encoder
    from cm.registry import get_registry
    from cm.testing import DEMO_EXPERIMENT, TINY_RUN

    experiment = load_experiment(DEMO_EXPERIMENT, [*TINY_RUN, "data.level=sentence"],
                                 registry=get_registry())
    backbone, tokenizer = load_backbone("tiny-deberta-v3", texts=TEXTS * 10,
                                        tiny=experiment.model.tiny, cache_root=tmp_path)
    criteria = [{"id": f"A.{i}", "text": f"criterion {i} text"} for i in range(1, 10)]
    saved = save_checkpoint(tmp_path / "checkpoint",
                            build_cross_encoder(experiment, get_registry(), backbone, 1),
                            tokenizer, experiment,
                            {"num_logits": 1, "epoch": 1, "final": True, "criteria": criteria,
                             "temperatures": {c["id"]: 1.0 for c in criteria},
                             "thresholds": {c["id"]: 0.0 for c in criteria}})
    posts = list(iter_posts(posts_file(tmp_path)))
    rows = Predictor.of(load_checkpoint(saved)).rows(posts)
    assert len(rows) == 9 * len(posts) and all(r["decision"] == 1 for r in rows)
    texts = dict(posts)
    for row in rows:
        assert row["evidence_score"] == row["probability"]
        sentence = texts[row["post_id"]][row["evidence_start"]:row["evidence_end"]]
        assert sentence.strip() == sentence and sentence


def test_no_evidence_leaves_out_the_sentence_columns_and_nothing_else(checkpoint, tmp_path):
    path = posts_file(tmp_path)
    loaded = load_checkpoint(checkpoint)
    posts = list(iter_posts(path))
    every_cell = Decision.identity({f"A.{c}": 0.0 for c in range(1, 10)})  # all match
    full = attrs.evolve(Predictor.of(loaded), decision=every_cell).rows(posts)
    lean = attrs.evolve(Predictor.of(loaded, evidence=False), decision=every_cell)
    assert lean.columns() == ["post_id", "criterion_id", "probability", "decision",
                              "evidence_window", "evidence_tokens"]
    assert all("evidence_start" in row for row in full)
    sentence_keys = {"evidence_start", "evidence_end", "evidence_score"}
    assert lean.rows(posts) == [{k: v for k, v in row.items() if k not in sentence_keys}
                                for row in full]
    result = CliRunner().invoke(cli, ["predict", str(path), "--model", str(checkpoint),
                                      "--no-evidence"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == ",".join(lean.columns())


@pytest.mark.integration
def test_sigterm_while_streaming_is_exit_143_and_leaves_no_file(checkpoint, tmp_path):
    """A preempted `cm predict --out` stops with the signal's code and leaves neither a
    partial output nor its temporary file."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    from pathlib import Path

    posts, out = tmp_path / "posts.jsonl", tmp_path / "out.csv"
    text = " ".join(TEXTS)  # ~1,500 characters: ~170 posts a group, many groups
    posts.write_text("".join(json.dumps({"post_id": f"p{i}", "text": text}) + "\n"
                             for i in range(1000)))
    cm = shutil.which("cm", path=str(Path(sys.executable).parent))
    process = subprocess.Popen([cm, "predict", str(posts), "--model", str(checkpoint),
                                "--out", str(out), "--no-evidence"], stderr=subprocess.PIPE,
                               text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    first = process.stderr.readline()  # the first progress line: rows are being written
    assert first.startswith("predict: posts "), first
    process.send_signal(signal.SIGTERM)
    err = first + process.stderr.read()
    assert process.wait(timeout=300) == 143, err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["posts.jsonl"]
