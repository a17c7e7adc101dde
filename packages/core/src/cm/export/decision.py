"""``cm_decision.json``: what turns an exported model's logits into cm's decisions."""

import json

from cm.evaluate.calibrator import Calibrator

PROBABILITY = {1: "sigmoid(logits[:, 0])", 2: "softmax(logits)[:, 1]"}


def decision(checkpoint, fmt: str) -> dict:
    """The decision a run fitted on val, and the input format it expects."""
    meta, data = checkpoint.meta, checkpoint.experiment.data
    calibrator = Calibrator.from_meta(meta)
    return {
        "format": fmt,
        "input": "[CLS] criterion text [SEP] post text [SEP] (criterion first, never cut)",
        "level": data.level,  # sentence: score each sentence; a post matches at its max
        "max_length": data.max_length,
        "truncation": data.truncation,  # of the post part; windows: max over windows
        "stride": data.stride,
        "window_aggregation": data.window_aggregation,
        "probability": PROBABILITY.get(meta["num_logits"], "see the loss plugin"),
        "loss": checkpoint.experiment.train.loss.name,
        "criteria": meta["criteria"],
        # p = probability above; z = log(p / (1 - p)); calibrated, per criterion c:
        "calibration": {"formula": "sigmoid(slopes[c] * (z - shift) + biases[c])",
                        **calibrator.meta()},
        "thresholds": meta["thresholds"],  # on the calibrated probability, per criterion
    }


def decision_file(checkpoint, path, fmt: str) -> None:
    path.write_text(json.dumps(decision(checkpoint, fmt), indent=2) + "\n")
