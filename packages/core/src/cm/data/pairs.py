"""Turn a Corpus into cross-encoder pairs (text x criterion) with binary labels.

Post level asks "does this post show criterion X anywhere?"; every post is paired with every
criterion so unannotated pairs become explicit negatives. Sentence level asks the same of the
annotated sentence only, which is what the annotators actually judged.
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


def build_pairs(corpus: Corpus, level: str = "post") -> list[PairSample]:
    """Pairs for training/evaluation at the given level ("post" or "sentence")."""
    return build_pairs_counted(corpus, level)[0]


def build_pairs_counted(corpus: Corpus, level: str = "post") -> tuple[list[PairSample], dict]:
    """Like build_pairs, also returning counts of rows left out or merged (reason -> count)."""
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
    """One pair per (post, sentence, criterion); repeated judgements keep the positive one."""
    criteria = {c.id: c.text for c in corpus.criteria}
    merged: dict[tuple[str, str, str], PairSample] = {}
    counts = {"special_case_sentences": 0, "merged_sentence_rows": 0, "conflicting_labels": 0}
    for ann in corpus.annotations:
        criterion = SYMPTOM_TO_CRITERION.get(ann.symptom)
        if criterion is None:
            counts["special_case_sentences"] += 1
            continue
        key = (ann.post_id, ann.sentence_id, criterion)
        pair = PairSample(
            post_id=ann.post_id,
            criterion_id=criterion,
            text=ann.sentence_text,
            criterion_text=criteria[criterion],
            label=ann.status,
            sentence_id=ann.sentence_id,
        )
        previous = merged.get(key)
        if previous is None:
            merged[key] = pair
            continue
        counts["merged_sentence_rows"] += 1
        if previous.label != pair.label:
            counts["conflicting_labels"] += 1
            merged[key] = pair if pair.label else previous
    return list(merged.values()), counts
