"""Turn a Corpus into cross-encoder pairs (text x criterion) with binary labels.

Post level asks "does this post show criterion X anywhere?"; every post is paired with every
criterion so unannotated pairs become explicit negatives. Sentence level asks it of every
sentence of every post (segmented by cm.data.sentences): the annotated status-1 sentences are
the positives, all other sentences the negatives.
"""

from __future__ import annotations

from cm.data.records import SYMPTOM_TO_CRITERION, Corpus, PairSample
from cm.errors import UserError

LEVELS = ("post", "sentence")


def label_matrix(corpus: Corpus) -> dict[str, frozenset[str]]:
    """Map every post_id to the criterion ids it is positive for (empty set if none).

    A criterion is positive when at least one annotation of the post with that criterion's
    symptom has status 1; status-0 and SPECIAL_CASE annotations never make a positive.
    """
    positives: dict[str, set[str]] = {p.post_id: set() for p in corpus.posts}
    for ann in corpus.annotations:
        criterion = SYMPTOM_TO_CRITERION.get(ann.symptom)
        if criterion is not None and ann.status == 1:
            positives[ann.post_id].add(criterion)
    return {post_id: frozenset(ids) for post_id, ids in positives.items()}


def build_pairs(corpus: Corpus, level: str = "post") -> tuple[list[PairSample], dict]:
    """Pairs at the given level ("post" or "sentence") and the counts of rows left out or
    merged (reason -> count)."""
    if level == "post":
        return _post_pairs(corpus), {}
    if level == "sentence":
        return _sentence_pairs(corpus)
    raise UserError(f"unknown pair level {level!r}; use one of {list(LEVELS)}")


def _post_pairs(corpus: Corpus) -> list[PairSample]:
    positives = label_matrix(corpus)
    return [
        PairSample(
            post_id=post.post_id,
            criterion_id=criterion.id,
            text=post.text,
            criterion_text=criterion.text,
            label=int(criterion.id in positives[post.post_id]),
        )
        for post in corpus.posts
        for criterion in corpus.criteria
    ]


def _sentence_pairs(corpus: Corpus) -> tuple[list[PairSample], dict[str, int]]:
    """One pair per (post, segmenter sentence, criterion): positive when the sentence overlaps
    a status-1 annotation of that criterion, negative otherwise (status-0 and unannotated
    sentences alike). ``sentence_id`` is ``<post_id>:<index of the sentence in its post>``;
    a status-1 sentence not found in its post follows its post's sentences as
    ``<post_id>:x<n>``, positive for the criteria annotated on it."""
    from cm.data.sentences import corpus_sentences  # pysbd loads only for sentence level

    view = corpus_sentences(corpus)
    pairs = [
        PairSample(
            post_id=post.post_id,
            criterion_id=criterion.id,
            text=post.text[span.start:span.end],
            criterion_text=criterion.text,
            label=int(i in view.positive.get((post.post_id, criterion.id), ())),
            sentence_id=f"{post.post_id}:{i}",
        )
        for post in corpus.posts
        for i, span in enumerate(view.spans[post.post_id])
        for criterion in corpus.criteria
    ]
    for n, ((post_id, text), positive) in enumerate(sorted(view.unplaced.items())):
        pairs.extend(PairSample(post_id, c.id, text, c.text, int(c.id in positive),
                                f"{post_id}:x{n}") for c in corpus.criteria)
    counts = {"annotated_sentences_split_differently": view.counts["split_differently"],
              "annotated_sentences_not_in_post": view.counts["not_in_post"]}
    return pairs, counts
