"""Immutable records for the ReDSM5 corpus and the (text, criterion) pairs built from it.

Frozen attrs classes keep loaded data from being mutated by later stages, so the digests
recorded at load time still describe what the model actually saw.
"""

from __future__ import annotations

import attrs

# ReDSM5 symptom labels -> DSM-5 MDD criterion ids. SPECIAL_CASE marks sentences the
# annotators flagged as relevant but not matching any single criterion, so it maps to None.
SYMPTOM_TO_CRITERION: dict[str, str | None] = {
    "DEPRESSED_MOOD": "A.1",
    "ANHEDONIA": "A.2",
    "APPETITE_CHANGE": "A.3",
    "SLEEP_ISSUES": "A.4",
    "PSYCHOMOTOR": "A.5",
    "FATIGUE": "A.6",
    "WORTHLESSNESS": "A.7",
    "COGNITIVE_ISSUES": "A.8",
    "SUICIDAL_THOUGHTS": "A.9",
    "SPECIAL_CASE": None,
}


@attrs.frozen
class Criterion:
    """One diagnostic criterion, e.g. id "A.1" and its wording."""

    id: str
    text: str


@attrs.frozen
class Post:
    """One Reddit post; text is sensitive, so it is left out of repr (and of error messages)."""

    post_id: str
    text: str = attrs.field(repr=False)


@attrs.frozen
class Annotation:
    """One annotated sentence of a post: which symptom it concerns and whether it is met."""

    post_id: str
    sentence_id: str
    sentence_text: str = attrs.field(repr=False)
    symptom: str
    status: int
    explanation: str = attrs.field(repr=False)


@attrs.frozen
class PairSample:
    """A cross-encoder input: text (post or sentence) against one criterion, with its label.

    sentence_id is set only for sentence-level pairs.
    """

    post_id: str
    criterion_id: str
    text: str = attrs.field(repr=False)
    criterion_text: str
    label: int
    sentence_id: str | None = None


@attrs.frozen
class Corpus:
    """A loaded dataset plus provenance: file digests and counts of rows skipped by policy."""

    posts: tuple[Post, ...]
    annotations: tuple[Annotation, ...]
    criteria: tuple[Criterion, ...]
    # Dicts are excluded from hashing so a Corpus stays hashable like the other records.
    digests: dict[str, str] = attrs.field(factory=dict, hash=False)
    skipped: dict[str, int] = attrs.field(factory=dict, hash=False)
