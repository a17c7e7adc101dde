"""The model card (``README.md``) of an exported model: what it is for, how it scored, where
it came from, and what it cannot do."""

import json

HEADLINE = ("test_tuned/post_macro_f1", "val_tuned/post_macro_f1")


def metrics_lines(checkpoint) -> list[str]:
    """The headline scores with their 95% intervals, from the run folder's metrics.json
    (beside the checkpoint), else the checkpoint's own record."""
    run = checkpoint.directory.parent / "metrics.json" if checkpoint.directory else None
    metrics = json.loads(run.read_text()) if run and run.is_file() else {}
    lines = []
    for key in HEADLINE:
        if key in metrics:
            low, high = metrics.get(f"{key}_low"), metrics.get(f"{key}_high")
            interval = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
            lines.append(f"- `{key}`: {metrics[key]:.3f}{interval}")
    if not lines and "test_post_macro_f1" in checkpoint.meta:
        lines.append(f"- `test_tuned/post_macro_f1`: {checkpoint.meta['test_post_macro_f1']:.3f}")
    return lines or ["- not recorded"]


def model_card(checkpoint, fmt: str) -> str:
    experiment, meta = checkpoint.experiment, checkpoint.meta
    lineage = meta.get("lineage", {})
    commit = lineage.get("commit") or "not recorded"
    if lineage.get("dirty"):
        commit += " (with uncommitted changes)"
    digests = lineage.get("data_digests") or {}
    n = len(meta["criteria"])
    load = ("AutoModelForSequenceClassification.from_pretrained(folder)" if fmt == "hf"
            else "onnxruntime.InferenceSession(folder + '/model.onnx')")
    return "\n".join([
        f"# {experiment.name}: a cm cross-encoder for the DSM-5 MDD criteria ({fmt})",
        "",
        "**For research only. It does not diagnose anyone and must not be used to.** It "
        "scores whether a text matches each criterion's description; a match is not a "
        "symptom, and no set of matches is a diagnosis.",
        "",
        "## What it does",
        f"Input: `[CLS] criterion [SEP] post [SEP]` (max {experiment.data.max_length} tokens, "
        f"post truncation `{experiment.data.truncation}`, level `{experiment.data.level}`). "
        f"Output: logits; `cm_decision.json` turns them into calibrated probabilities and a "
        f"decision per criterion ({n} criteria) at thresholds tuned on validation.",
        f"Load: `{load}`; the tokenizer is in the same folder.",
        "",
        f"## How it scored ({n}-criterion macro-F1, 95% bootstrap interval over posts)",
        *metrics_lines(checkpoint),
        "",
        "## Where it came from",
        f"- cm experiment `{experiment.name}`, seed {experiment.seed}, backbone "
        f"`{experiment.model.backbone}`, pooling `{experiment.model.pooling.name}`, head "
        f"`{experiment.model.head.name}`, loss `{experiment.train.loss.name}`, best epoch "
        f"{meta.get('epoch')}",
        f"- code: cm commit {commit}",
        f"- data: dataset `{experiment.data.dataset.name}`; file digests (SHA-256): "
        + (", ".join(f"`{name}` {digest[:16]}" for name, digest in sorted(digests.items()))
           or "not recorded"),
        "",
        "## Known limits",
        "- Trained on Reddit posts in English (ReDSM5) or cm's synthetic demo posts: other "
        "sources, languages and registers are out of its distribution.",
        "- Rare criteria have few positives per split: their F1 moves by 10-20 points with one "
        "post. Read the intervals, not the point estimates.",
        "- Probabilities are calibrated on the validation split of this run only.",
        "- Long posts are cut (or windowed) at the maximum length: evidence past it is unseen.",
        "",
    ])
