"""Scoring new posts with a checkpoint: per post and criterion, P(match) after the run's
calibration (the steps its validation kept, ``meta.json`` ``calibrator.kept``) and
the decision at the run's thresholds; for a match, the top sentence as evidence; for long
posts, the window (as a post-token span) that drove the score."""

from collections import defaultdict

import attrs
import numpy as np
import torch

from cm.data.loaders import encode_split
from cm.data.records import PairSample
from cm.data.sentences import split_sentences
from cm.distributed import resolve_device
from cm.errors import UserError
from cm.evaluate.decisions import Decision, Pairs
from cm.evaluate.evidence import ranking
from cm.model.scoring import Scorer, sentence_probs

PRECISIONS = ("auto", "fp32", "bf16")


@attrs.frozen
class Predictor:
    """What scoring with a checkpoint needs, built once (the model on its device, the
    decision, the criteria), then ``rows(posts)`` for each group of posts: per post and
    criterion, P(match) through the checkpoint's calibrator (whichever steps its validation
    kept: none, the loss's prior shift, Platt) and the decision at the criterion's threshold
    (both as the run fitted them on val); for a match, the top sentence as evidence (char
    span and calibrated score; its text only ``with_text``; none without ``evidence``: a
    post-level model scores each sentence of a matched post against each criterion it
    matches, which can cost more than the post's own pairs); for posts split into windows,
    the window that drove the score."""

    scorer: Scorer
    decision: Decision
    criteria: tuple[tuple[str, str], ...]  # (id, text)
    data: object  # the run's data config (level, max_length, truncation, stride)
    with_text: bool = False
    evidence: bool = True

    @classmethod
    def of(cls, checkpoint, *, batch_size=None, device="cpu", precision="auto",
           with_text=False, evidence=True) -> "Predictor":
        """``batch_size``: pairs per forward pass (default: the run's
        ``train.eval_batch_size``); ``device``: auto, cpu, cuda or mps; ``precision``: auto
        (bf16 on a CUDA GPU that has it, else fp32), fp32 or bf16."""
        checkpoint.require("criteria")
        experiment, meta = checkpoint.experiment, checkpoint.meta
        if "thresholds" not in meta:
            raise UserError("this checkpoint has no decision (per-criterion thresholds and "
                            "calibrator): it was saved before its run's final evaluation, or "
                            "by an older cm; use the checkpoint of a finished run, or re-score "
                            "it with `cm replay --run-id ID --eval-only`")
        device = resolve_device(device, "--device")
        scorer = Scorer(checkpoint.model.to(device), _loss(experiment), checkpoint.tokenizer,
                        batch_size or experiment.train.eval_batch_size, device,
                        experiment.data.window_aggregation,
                        autocast_dtype=autocast_dtype(precision, device))
        return cls(scorer, Decision.from_meta(meta),
                   tuple((c["id"], c["text"]) for c in meta["criteria"]), experiment.data,
                   with_text, evidence)

    def columns(self) -> list[str]:
        """Every column a row can have, in order (a row leaves out what does not apply)."""
        text = self.with_text
        window = ["evidence_window", "evidence_tokens", *(["window_text"] if text else [])] \
            if self.data.level == "post" else []
        sentence = ["evidence_start", "evidence_end", "evidence_score",
                    *(["evidence_text"] if text else [])] if self.evidence else []
        return ["post_id", "criterion_id", "probability", "decision", *window, *sentence]

    def rows(self, posts: list[tuple[str, str]]) -> list[dict]:
        """The rows of ``posts`` ((post_id, text) pairs), post by post, criteria in order."""
        pairs, sentences = self.pairs(posts)
        split = encode_split("predict", pairs, self.scorer.tokenizer, self.data)
        probs, windows = self.scorer.scores(split)
        rows = self.decided(pairs, probs)
        if self.data.level == "post":
            _add_windows(rows, split, windows, self.data, self.scorer.tokenizer,
                         self.with_text)
        matches = [row for row in rows if row["decision"]] if self.evidence else []
        texts = dict(posts)
        if self.data.level == "sentence":  # every sentence was scored against every criterion
            found = _per_cell(pairs, probs)
            sentence_scores = [found[(r["post_id"], r["criterion_id"])] for r in matches]
        else:
            sentence_scores = self.sentence_scores(matches, texts, sentences)
        _add_evidence(matches, sentence_scores, texts, sentences, self.decision,
                      self.with_text)
        return rows

    def pairs(self, posts) -> tuple[list[PairSample], dict]:
        """Each post paired with every criterion (a sentence-level model: each sentence of
        it), and the sentences split so far (post id -> spans; none at post level, where
        only matched posts are split, for their evidence)."""
        if self.data.level == "post":
            return [PairSample(pid, cid, text, ctext, 0) for pid, text in posts
                    for cid, ctext in self.criteria], {}
        sentences = {pid: split_sentences(text) for pid, text in posts}
        return [PairSample(pid, cid, text[s.start:s.end], ctext, 0) for pid, text in posts
                for s in sentences[pid] for cid, ctext in self.criteria], sentences

    def decided(self, pairs, probs) -> list[dict]:
        """Per (post, criterion) cell: its calibrated probability and decision."""
        cells = Pairs.of([p.post_id for p in pairs], [p.criterion_id for p in pairs],
                         np.zeros(len(pairs)), probs).cells()
        calibrated = self.decision.calibrate(cells.criterion_ids, cells.probs)
        made = calibrated >= self.decision.cuts(cells.criterion_ids)
        return [{"post_id": post, "criterion_id": cid, "probability": round(float(p), 6),
                 "decision": int(m)}
                for post, cid, p, m in zip(cells.post_ids, cells.criterion_ids, calibrated,
                                           made, strict=True)]

    def sentence_scores(self, matches, texts, sentences) -> list[np.ndarray]:
        """Per match of a post-level model, each sentence of the post scored alone against
        the criterion; ``sentences`` (post id -> spans) gets the posts it splits."""
        for pid in {r["post_id"] for r in matches} - sentences.keys():
            sentences[pid] = split_sentences(texts[pid])
        criteria = dict(self.criteria)
        return sentence_probs(self.scorer, self.data, [
            (texts[r["post_id"]], sentences[r["post_id"]], r["criterion_id"],
             criteria[r["criterion_id"]]) for r in matches])


def predict(checkpoint, posts, **options) -> list[dict]:
    """The rows of ``posts`` scored with ``checkpoint`` (``options`` as ``Predictor.of``)."""
    return Predictor.of(checkpoint, **options).rows(posts)


def autocast_dtype(precision: str, device: str):
    """The dtype to score under autocast, or None for fp32: ``auto`` is bf16 on a CUDA GPU
    that supports it."""
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision!r}: choose one of {list(PRECISIONS)}")
    cuda = torch.device(device).type == "cuda"
    if precision == "bf16" or (precision == "auto" and cuda and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return None


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


def _per_cell(pairs, probs) -> dict[tuple[str, str], np.ndarray]:
    """(post id, criterion id) -> its sentences' probabilities, in sentence order."""
    found = defaultdict(list)
    for pair, prob in zip(pairs, probs, strict=True):
        found[(pair.post_id, pair.criterion_id)].append(prob)
    return {cell: np.asarray(values) for cell, values in found.items()}


def _add_evidence(matches, sentence_scores, texts, sentences, decision, with_text):
    """The top sentence of each match: ``evidence_start``/``evidence_end`` (chars in the
    post), ``evidence_score`` (its calibrated P(match) alone)."""
    for row, probs in zip(matches, sentence_scores, strict=True):
        if not len(probs):
            continue
        best = ranking(probs)[0]
        span = sentences[row["post_id"]][best]
        row.update(evidence_start=span.start, evidence_end=span.end,
                   evidence_score=round(float(decision.calibrate([row["criterion_id"]],
                                                                 [probs[best]])[0]), 6))
        if with_text:
            row["evidence_text"] = texts[row["post_id"]][span.start:span.end]


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


def _loss(experiment):
    from cm.registry import get_registry

    return get_registry().build(experiment.train.loss, pos_weight=None)
