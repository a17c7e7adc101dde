"""``cm export``: a Hugging Face folder that plain transformers scores as cm does, an ONNX
graph that onnxruntime scores as ``cm predict`` does, each with its decision and card."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cm.cli.main import cli
from cm.export.decision import decision
from cm.model.checkpoint import load_checkpoint
from cm.predict import predict
from cm.testing import run_quietly

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

POSTS = [("p1", "I can't sleep and I feel empty and tired every single day."),
         ("p2", "We went hiking and it was a great weekend with friends."),
         ("p3", "Nothing is fun anymore. I stopped eating.")]


def export(checkpoint, fmt, out):
    return CliRunner().invoke(cli, ["export", str(checkpoint), "--format", fmt, "--out",
                                    str(out)])


def pairs(checkpoint):
    criteria = [c["text"] for c in checkpoint.meta["criteria"]]
    texts = [(criterion, text) for _, text in POSTS for criterion in criteria]
    return checkpoint.tokenizer([c for c, _ in texts], [p for _, p in texts], padding=True,
                                truncation="only_second",
                                max_length=checkpoint.experiment.data.max_length,
                                return_tensors="pt")


@pytest.fixture(scope="module")
def linear_cls(tmp_path_factory, cm_cache_dir):
    """A finished tiny run whose pooling and head transformers can express."""
    from cm.testing import make_tiny_experiment

    out = tmp_path_factory.mktemp("linear-cls")
    run = run_quietly(make_tiny_experiment(out, 'model.pooling={name="cls"}',
                                           'model.head={name="linear"}'))
    return run.directory / "checkpoint"


def test_hf_export_scores_as_cm_with_plain_transformers(linear_cls, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    result = export(linear_cls, "hf", tmp_path / "hf")
    assert result.exit_code == 0, result.output
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "hf")
    checkpoint = load_checkpoint(linear_cls)
    batch = pairs(checkpoint)
    assert tokenizer(*["a", "b"])["input_ids"] == checkpoint.tokenizer("a", "b")["input_ids"]
    with torch.no_grad():
        theirs = model(**batch).logits
        ours = checkpoint.model(dict(batch))
    assert theirs.shape == ours.shape
    assert torch.allclose(theirs, ours, atol=1e-5), (theirs - ours).abs().max()
    sidecar = json.loads((tmp_path / "hf" / "cm_decision.json").read_text())
    assert sidecar == json.loads(json.dumps(decision(checkpoint, "hf")))
    assert sidecar["thresholds"] == checkpoint.meta["thresholds"]
    assert [c["id"] for c in sidecar["criteria"]] == [f"A.{i}" for i in range(1, 10)]
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "For research only. It does not diagnose anyone" in card
    assert "test_tuned/post_macro_f1" in card and "cm commit " in card


def test_onnx_export_scores_as_cm_predict(tiny_run, tmp_path):
    import onnxruntime

    checkpoint_dir = tiny_run.directory / "checkpoint"
    result = export(checkpoint_dir, "onnx", tmp_path / "onnx")
    assert result.exit_code == 0, result.output
    checkpoint = load_checkpoint(checkpoint_dir)
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "model.onnx"))
    batch = pairs(checkpoint)
    logits = session.run(None, {k: batch[k].numpy() for k in
                                ("input_ids", "attention_mask", "token_type_ids")})[0]
    with torch.no_grad():
        ours = checkpoint.model(dict(batch)).numpy()
    assert np.allclose(logits, ours, atol=1e-5)
    # the sidecar's recipe on onnxruntime's logits gives cm predict's probabilities
    sidecar = json.loads((tmp_path / "onnx" / "cm_decision.json").read_text())
    assert sidecar["probability"] == "sigmoid(logits[:, 0])"
    ids = [c["id"] for c in sidecar["criteria"]] * len(POSTS)
    raw = 1 / (1 + np.exp(-logits[:, 0]))
    calibration = sidecar["calibration"]  # applied as its formula says, without cm
    assert calibration["formula"] == "sigmoid(slopes[c] * (z - shift) + biases[c])"
    slope = np.array([calibration["slopes"][c] for c in ids])
    bias = np.array([calibration["biases"][c] for c in ids])
    z = np.log(raw) - np.log1p(-raw)
    calibrated = 1 / (1 + np.exp(-(slope * (z - calibration["shift"]) + bias)))
    rows = predict(checkpoint, POSTS)
    assert np.allclose(calibrated, [row["probability"] for row in rows], atol=1e-4)


def test_an_unsupported_head_or_pooling_is_refused_naming_them(tiny_run, tmp_path):
    result = export(tiny_run.directory / "checkpoint", "hf", tmp_path / "hf")
    assert result.exit_code == 2
    assert "pooling 'mean' (only 'cls')" in result.output
    assert "head 'mlp' (only 'linear')" in result.output
    assert "--format onnx" in result.output
    assert not (tmp_path / "hf").exists()


def test_an_existing_folder_is_not_overwritten(tiny_run, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep")
    result = export(tiny_run.directory / "checkpoint", "onnx", tmp_path / "taken")
    assert result.exit_code == 2 and "exists and is not an empty folder" in result.output
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep"


def test_without_the_onnx_extras_the_error_gives_the_pip_command(tiny_run, tmp_path,
                                                                monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnxscript", None)  # as if not installed
    result = export(tiny_run.directory / "checkpoint", "onnx", tmp_path / "onnx")
    assert result.exit_code == 2
    assert "pip install 'cm-core[onnx]'" in result.output
    assert not (tmp_path / "onnx").exists()
