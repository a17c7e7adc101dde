"""Scoring new posts with a checkpoint: per post and criterion, P(match) after the run's
calibration (the steps its validation kept, ``meta.json`` ``calibrator.kept``) and
the decision at the run's thresholds; for a match, the top sentence as evidence; for long
posts, the window (as a post-token span) that drove the score."""

import csv
import io
import json
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from cm.data.loaders import encode_split
from cm.data.records import PairSample
from cm.data.sentences import split_sentences
from cm.errors import UserError
from cm.evaluate.decisions import Decision, Pairs
from cm.evaluate.evidence import ranking
from cm.model.scoring import Scorer, score, sentence_probs
from cm.preflight import writable_directory
from cm.textfile import lift_csv_field_limit, read_text


def read_posts(path: Path) -> list[tuple[str, str]]:
    """(post_id, text) rows from a CSV or JSONL file with ``post_id`` and ``text``."""
    path = Path(path)
    if path.suffix not in (".csv", ".jsonl"):
        raise UserError(f"{path}: expected a .csv or .jsonl file of posts (post_id, text)")
    text = read_text(path, "posts file")
    if path.suffix == ".jsonl":
        rows = []
        for line_no, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                rows.append((str(item["post_id"]), str(item["text"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise UserError(f"{path}:{line_no}: expected a JSON object with post_id and "
                                f"text ({type(exc).__name__}: {exc})") from None
    else:
        rows = read_csv_posts(path, text)
    empty = [pid for pid, text in rows if not text or not text.strip()]
    if empty:
        raise UserError(f"{path}: empty text for post_id(s) {empty[:10]}; remove or fill them")
    if not rows:
        raise UserError(f"{path}: no posts")
    return rows


def read_csv_posts(path: Path, text: str) -> list[tuple[str, str]]:
    lift_csv_field_limit()
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = {"post_id", "text"} - set(reader.fieldnames or ())
        if missing:
            raise UserError(f"{path}: missing column(s) {sorted(missing)}; found "
                            f"{reader.fieldnames}; expected post_id,text")
        rows = []
        for row in reader:
            if None in row or None in row.values():
                raise UserError(f"{path} (line {reader.line_num}): {len(row)} fields where "
                                "the header has 2 or more; quote fields holding commas")
            rows.append((row["post_id"], row["text"]))
    except csv.Error as exc:
        raise UserError(f"{path} (line {reader.line_num}): unreadable CSV ({exc}); fix the "
                        "quoting of that row") from None
    return rows


def check_output(out: Path | None) -> None:
    """Before any scoring: ``--out`` must be a file path in a writable directory."""
    if out is None:
        return
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; name a file, e.g. {out}/predictions.csv")
    if not out.parent.absolute().is_dir():
        raise UserError(f"--out {out}: the directory {out.parent} does not exist; create it "
                        "or choose another path")
    writable_directory(out.parent, "--out directory")


def predict(checkpoint, posts, *, batch_size=64, device="cpu", with_text=False) -> list[dict]:
    """Per post and criterion: P(match) through the checkpoint's calibrator (whichever steps
    its validation kept: none, the loss's prior shift, Platt) and the decision at the criterion's
    threshold (both as the run fitted them on val); for a match, the top sentence as
    evidence (char span and calibrated score; its text only ``with_text``); for posts split
    into windows, the window that drove the score."""
    checkpoint.require("criteria")
    experiment, meta = checkpoint.experiment, checkpoint.meta
    if "thresholds" not in meta:
        raise UserError("this checkpoint has no decision (per-criterion thresholds and "
                        "calibrator): it was saved before its run's final evaluation, or by "
                        "an older cm; use the checkpoint of a finished run, or re-score it "
                        "with `cm replay --run-id ID --eval-only`")
    decision = Decision.from_meta(meta)
    data = experiment.data
    scorer = Scorer(checkpoint.model.to(device), _loss(experiment), checkpoint.tokenizer,
                    batch_size, device, data.window_aggregation)
    criteria = [(c["id"], c["text"]) for c in meta["criteria"]]
    sentences = {pid: split_sentences(text) for pid, text in posts} \
        if data.level == "sentence" else {}  # post level: only matched posts, for evidence
    if data.level == "sentence":
        pairs = [PairSample(pid, cid, text[s.start:s.end], ctext, 0)
                 for pid, text in posts for s in sentences[pid] for cid, ctext in criteria]
    else:
        pairs = [PairSample(pid, cid, text, ctext, 0) for pid, text in posts
                 for cid, ctext in criteria]
    split = encode_split("predict", pairs, checkpoint.tokenizer, data, _cache())
    probs, windows = score(scorer.model, scorer.loss, split, batch_size,
                           scorer.tokenizer.pad_token_id, device, data.window_aggregation)
    cells = Pairs.of([p.post_id for p in pairs], [p.criterion_id for p in pairs],
                     np.zeros(len(pairs)), probs).cells()
    calibrated = decision.calibrate(cells.criterion_ids, cells.probs)
    made = calibrated >= decision.cuts(cells.criterion_ids)
    rows = [{"post_id": post, "criterion_id": cid, "probability": round(float(p), 6),
             "decision": int(m)}
            for post, cid, p, m in zip(cells.post_ids, cells.criterion_ids, calibrated, made,
                                       strict=True)]
    if data.level == "post":
        _add_windows(rows, split, windows, data, checkpoint.tokenizer, with_text)
    _add_evidence(rows, dict(posts), sentences, dict(criteria), scorer, data, decision,
                  with_text)
    return rows


def _add_windows(rows, split, windows, data, tokenizer, with_text):
    by_pair = defaultdict(list)
    for e in split.encoded:
        by_pair[e.pair_index].append(e)
    for i, row in enumerate(rows):
        encoded = by_pair[i]
        if len(encoded) > 1:
            window = encoded[int(windows[i])]
            start, end = _span(window, int(windows[i]), data.max_length, data.stride)
            row.update(evidence_window=int(windows[i]), evidence_tokens=f"{start}-{end}")
            if with_text:
                row["window_text"] = tokenizer.decode(post_token_ids(window))


def _add_evidence(rows, texts, sentences, criteria, scorer, data, decision, with_text):
    """The top sentence of each match: ``evidence_start``/``evidence_end`` (chars in the
    post), ``evidence_score`` (its calibrated P(match) alone). ``sentences`` (post id ->
    spans) gets the matched posts not segmented yet."""
    matches = [row for row in rows if row["decision"]]
    for pid in {r["post_id"] for r in matches} - sentences.keys():
        sentences[pid] = split_sentences(texts[pid])
    requests = [(texts[r["post_id"]], sentences[r["post_id"]], r["criterion_id"],
                 criteria[r["criterion_id"]]) for r in matches]
    for row, request, probs in zip(matches, requests,
                                   sentence_probs(scorer, data, _cache(), requests), strict=True):
        if not len(probs):
            continue
        best = ranking(probs)[0]
        span = request[1][best]
        row.update(evidence_start=span.start, evidence_end=span.end,
                   evidence_score=round(float(decision.calibrate([row["criterion_id"]],
                                                                 [probs[best]])[0]), 6))
        if with_text:
            row["evidence_text"] = request[0][span.start:span.end]


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
    from cm.cachedir import cache_root

    return cache_root() / "encoded"


def _loss(experiment):
    from cm.registry import get_registry

    return get_registry().build(experiment.train.loss, pos_weight=None)


def write_rows(rows, out: Path | None, fmt: str):
    """To standard output, or to ``out`` through a temporary file renamed into place, so an
    interrupted write never leaves a truncated file behind."""
    if out is None:
        return _write(rows, sys.stdout, fmt)
    out = Path(out)
    with tempfile.NamedTemporaryFile("w", newline="", encoding="utf-8", dir=out.parent,
                                     prefix=f".{out.name}.", delete=False) as handle:
        try:
            _write(rows, handle, fmt)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
    mask = os.umask(0)  # the temporary file is private (0600); the result gets the
    os.umask(mask)      # permissions any new file of this user gets
    os.chmod(handle.name, 0o666 & ~mask)
    os.replace(handle.name, out)


def _write(rows, handle, fmt):
    if fmt == "json":
        handle.write(json.dumps(rows, indent=2) + "\n")
        return
    writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
    writer.writeheader()
    writer.writerows(rows)
