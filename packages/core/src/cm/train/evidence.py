"""Sentence evidence with the trained cross-encoder: each sentence of a post scored against a
criterion as a pair of its own (P(match) of the sentence alone), and the ranking measured
against the annotated status-1 sentences (docs/research.md: why this method)."""

from cm.data.records import PairSample
from cm.data.sentences import corpus_sentences
from cm.evaluate.evidence import evidence_metrics, overlap_scores, ranking
from cm.train.batches import encode_split


def sentence_probs(scorer, data, cache_dir, requests):
    """``requests``: (text, spans, criterion id, criterion text) per cell; returns one array
    of raw sentence probabilities per request. ``scorer`` has ``tokenizer`` and
    ``probabilities(split)``."""
    pairs = [PairSample(f"evidence-{n}", criterion_id, text[s.start:s.end], criterion_text, 0)
             for n, (text, spans, criterion_id, criterion_text) in enumerate(requests)
             for s in spans]
    if not pairs:
        return [[] for _ in requests]
    probs = scorer.probabilities(encode_split("evidence", pairs, scorer.tokenizer, data,
                                              cache_dir))
    out, start = [], 0
    for _, spans, _, _ in requests:
        out.append(probs[start:start + len(spans)])
        start += len(spans)
    return out


def evaluate_evidence(scorer, data, cache_dir, corpus, post_ids) -> dict:
    """hit@1 / hit@3 of the model's sentence ranking, and of both baselines, over the
    positive (post, criterion) cells of ``post_ids`` whose annotated sentences were found."""
    sentences = corpus_sentences(corpus, post_ids)
    texts = {p.post_id: p.text for p in corpus.posts}
    criteria = {c.id: c.text for c in corpus.criteria}
    cells = sorted(sentences.positive)
    requests = [(texts[post], sentences.spans[post], cid, criteria[cid]) for post, cid in cells]
    probs = sentence_probs(scorer, data, cache_dir, requests)
    gold = [set(sentences.positive[cell]) for cell in cells]
    overlap = [ranking(overlap_scores([text[s.start:s.end] for s in spans], criterion_text))
               for text, spans, _, criterion_text in requests]
    return evidence_metrics([ranking(p) for p in probs], overlap,
                            [len(spans) for _, spans, _, _ in requests], gold)
