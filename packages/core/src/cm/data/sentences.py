"""Posts as sentences (char spans), and annotated sentences located among them.

Segmentation is pysbd's rule-based English segmenter (no model, no network; see
docs/research.md for why) with cm's own boundaries on top, for what pysbd misses in Reddit
posts: a first-person sentence end it takes for an abbreviation ("without me. I stopped"),
no space after the end ("it.I can't"), an emoji ending a sentence ("cares 😔 I sleep").
pysbd returns sentence strings; their spans are found here by searching the post left to
right, so a repeated sentence gets its own span each time.
An annotated sentence is located by its exact text in the post; the segmenter sentences it
overlaps are its match (one when both split alike; several, or one longer sentence, when the
segmenter splits differently). Annotated text that does not occur in the post is unmatched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache

import attrs

from cm.data.records import SYMPTOM_TO_CRITERION, Corpus


@attrs.frozen
class Span:
    """A sentence as ``text[start:end]`` (surrounding whitespace excluded)."""

    start: int
    end: int


@lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


EMOJI = "\U0001F000-\U0001FAFF\u2600-\u27BF"
# A sentence end pysbd does not see, followed by the next sentence: a lowercase word of two
# letters or more and a period (never "Dr." or "a.m."), a word and "!" or "?", each with any
# more end marks and closing quotes; a pronoun and a period before any letter; emoji.
BOUNDARY = re.compile(
    rf"(?:\b[a-z]{{2,}}\.|[\w)][!?])[.!?]*[\"'\u201d\u2019)\]]*(?=\s*[A-Z])"
    rf"|\b(?:me|him|her|it|us|them|you)\.(?=\s+[a-z])"
    rf"|[{EMOJI}][{EMOJI}\ufe0f\u200d]*(?=\s+[A-Z])")


def split_sentences(text: str) -> list[Span]:
    """The sentences of ``text`` in order, as spans that cover every non-space character."""
    return [piece for span in segmented(text) for piece in refined(text, span)]


def refined(text: str, span: Span) -> Iterator[Span]:
    """``span`` cut after each BOUNDARY inside it, whitespace left out of every piece."""
    start = span.start
    for match in BOUNDARY.finditer(text, span.start, span.end):
        if match.end() < span.end:
            yield Span(start, match.end())
            start = match.end()
            while text[start].isspace():
                start += 1
    yield Span(start, span.end)


def segmented(text: str) -> list[Span]:
    """pysbd's sentences of ``text`` as spans."""
    spans, cursor = [], 0
    for piece in _segmenter().segment(text):
        piece = piece.strip()
        if not piece:
            continue
        start = text.find(piece, cursor)
        if start < 0:  # pysbd never rewrites text with clean=False; guard the invariant anyway
            raise ValueError(f"segmenter returned text not found in the post at {cursor}")
        spans.append(Span(start, start + len(piece)))
        cursor = start + len(piece)
    return spans


def locate(post_text: str, sentence_text: str) -> Span | None:
    """Where an annotated sentence lies in its post (first exact occurrence), or None."""
    needle = sentence_text.strip()
    start = post_text.find(needle) if needle else -1
    return None if start < 0 else Span(start, start + len(needle))


def overlapping(spans: Sequence[Span], target: Span) -> list[int]:
    """Indices of ``spans`` that share at least one character with ``target``."""
    return [i for i, s in enumerate(spans) if s.start < target.end and target.start < s.end]


@attrs.frozen
class Sentences:
    """A corpus seen as sentences: each post's spans, and per (post, criterion) the indices
    of the sentences annotated status 1 for it. ``counts`` says how the status-1 annotations
    matched: ``exact`` (one segmenter sentence), ``split_differently`` (overlapping other
    sentence boundaries; all overlapped sentences count as positive), ``not_in_post``
    (annotated text absent from the post, e.g. paraphrased: kept in ``unplaced`` as
    (post_id, sentence text) -> its criteria, so the pair builder can add it as a sentence of
    its own and no positive is lost)."""

    spans: dict[str, list[Span]]
    positive: dict[tuple[str, str], frozenset[int]]
    counts: dict[str, int]
    unplaced: dict[tuple[str, str], frozenset[str]]


def corpus_sentences(corpus: Corpus, post_ids=None) -> Sentences:
    """The corpus's posts (or only ``post_ids``) as sentences, annotations located."""
    wanted = None if post_ids is None else set(post_ids)
    texts = {p.post_id: p.text for p in corpus.posts if wanted is None or p.post_id in wanted}
    spans = {pid: split_sentences(text) for pid, text in texts.items()}
    positive: dict[tuple[str, str], set[int]] = {}
    unplaced: dict[tuple[str, str], set[str]] = {}
    counts = {"exact": 0, "split_differently": 0, "not_in_post": 0}
    for ann in corpus.annotations:
        criterion = SYMPTOM_TO_CRITERION.get(ann.symptom)
        if criterion is None or ann.status != 1 or ann.post_id not in texts:
            continue
        target = locate(texts[ann.post_id], ann.sentence_text)
        hits = overlapping(spans[ann.post_id], target) if target else []
        if not hits:
            counts["not_in_post"] += 1
            unplaced.setdefault((ann.post_id, ann.sentence_text.strip()), set()).add(criterion)
            continue
        counts["exact" if target in spans[ann.post_id] else "split_differently"] += 1
        positive.setdefault((ann.post_id, criterion), set()).update(hits)
    return Sentences(spans, {k: frozenset(v) for k, v in positive.items()}, counts,
                     {k: frozenset(v) for k, v in unplaced.items()})
