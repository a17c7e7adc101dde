"""Scoring new posts with a checkpoint: per post and criterion, P(match) and the decision;
for long posts, the window (as a post-token span) that drove the decision."""

import csv
import json
from pathlib import Path

import numpy as np

from cm.data.records import PairSample
from cm.errors import UserError
from cm.train.batches import encode_split
from cm.train.evaluation import score


def read_posts(path: Path) -> list[tuple[str, str]]:
    """(post_id, text) rows from a CSV or JSONL file with ``post_id`` and ``text``."""
    path = Path(path)
    if path.suffix == ".jsonl":
        rows = []
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                rows.append((str(item["post_id"]), str(item["text"])))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise UserError(f"{path}:{line_no}: expected a JSON object with post_id and "
                                f"text ({type(exc).__name__}: {exc})") from None
    elif path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"post_id", "text"} - set(reader.fieldnames or ())
            if missing:
                raise UserError(f"{path}: missing column(s) {sorted(missing)}; found "
                                f"{reader.fieldnames}; expected post_id,text")
            rows = [(r["post_id"], r["text"]) for r in reader]
    else:
        raise UserError(f"{path}: expected a .csv or .jsonl file of posts (post_id, text)")
    empty = [pid for pid, text in rows if not text or not text.strip()]
    if empty:
        raise UserError(f"{path}: empty text for post_id(s) {empty[:10]}; remove or fill them")
    if not rows:
        raise UserError(f"{path}: no posts")
    return rows


def predict(checkpoint, posts, *, batch_size=64, device="cpu", with_text=False) -> list[dict]:
    experiment, meta = checkpoint.experiment, checkpoint.meta
    data = experiment.data
    pairs = [PairSample(pid, c["id"], text, c["text"], 0)
             for pid, text in posts for c in meta["criteria"]]
    split = encode_split("predict", pairs, checkpoint.tokenizer, data, _cache())
    model = checkpoint.model.to(device)
    loss = _loss(experiment)
    probs, evidence = score(model, loss, split, batch_size, checkpoint.tokenizer.pad_token_id,
                            device, data.window_aggregation)
    rows = []
    for i, pair in enumerate(pairs):
        row = {"post_id": pair.post_id, "criterion_id": pair.criterion_id,
               "probability": round(float(probs[i]), 6),
               "decision": int(probs[i] >= meta["threshold"])}
        windows = [e for e in split.encoded if e.pair_index == i]
        if len(windows) > 1:
            window = windows[int(evidence[i])]
            start, end = _span(window, int(evidence[i]), data.max_length, data.stride)
            row.update(evidence_window=int(evidence[i]), evidence_tokens=f"{start}-{end}")
            if with_text:
                row["evidence_text"] = checkpoint.tokenizer.decode(post_token_ids(window))
        rows.append(row)
    return rows


def post_token_ids(encoded):
    """The post's token ids in one encoded pair (token type 1, the final [SEP] left out)."""
    types = np.array(encoded.token_type_ids)
    return [t for t, kind in zip(encoded.input_ids[:-1], types[:-1], strict=True) if kind == 1]


def _span(encoded, window, max_length, stride):
    """The window's post tokens as [start, end) in the post's own tokenization: consecutive
    windows share exactly ``stride`` tokens, each holds the post budget."""
    length = len(post_token_ids(encoded))
    budget = max_length - (len(encoded.input_ids) - length)
    start = window * (budget - stride)
    return start, start + length


def _cache():
    from cm.data.prepare import cache_root

    return cache_root() / "encoded"


def _loss(experiment):
    from cm.registry import get_registry

    spec = experiment.train.loss
    return get_registry().get("loss", spec.name).build(spec.options, pos_weight=None)


def write_rows(rows, out: Path | None, fmt: str):
    fields = list(dict.fromkeys(k for row in rows for k in row))
    if fmt == "json":
        text = json.dumps(rows, indent=2)
        return Path(out).write_text(text) if out else print(text)
    handle = open(out, "w", newline="") if out else None  # noqa: SIM115
    import sys

    writer = csv.DictWriter(handle or sys.stdout, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    if handle:
        handle.close()
