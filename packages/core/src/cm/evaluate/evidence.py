"""Sentence evidence: ranking a post's sentences for a criterion, and how often the top of a
ranking holds an annotated (status-1) sentence.

hit@k over positive (post, criterion) cells: the share whose top k sentences include at least
one annotated sentence. Two baselines are measured the same way: a random order (its expected
hit@k, computed exactly: 1 - C(n-g, k) / C(n, k) for n sentences of which g annotated) and
the sentence sharing the most content words with the criterion text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from math import comb
from typing import Any

import numpy as np

KS = (1, 3)
STOP_WORDS = frozenset("""a an and are as at be been but by can do does for from has have i in
is it its me my no nor not of on or so than that the their them they this to was were what
when which who will with you your""".split())


def ranking(scores: Any) -> list[int]:
    """Sentence indices by descending score; ties keep the earlier sentence first."""
    s = np.asarray(scores, dtype=float)
    return np.lexsort((np.arange(len(s)), -s)).tolist()


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z']+", text.lower()) if w not in STOP_WORDS}


def overlap_scores(sentences: Sequence[str], criterion_text: str) -> list[int]:
    """Per sentence: how many distinct content words it shares with the criterion text."""
    target = _words(criterion_text)
    return [len(_words(s) & target) for s in sentences]


def hit_at(rankings: Sequence[Sequence[int]], gold: Sequence[set[int]], k: int) -> float:
    """Share of cells whose first ``k`` ranked sentences include an annotated one."""
    if not rankings:
        return 0.0
    hits = [bool(set(r[:k]) & g) for r, g in zip(rankings, gold, strict=True)]
    return float(np.mean(hits))


def random_hit_at(n_sentences: Sequence[int], gold: Sequence[set[int]], k: int) -> float:
    """Expected hit@k of a uniformly random sentence order."""
    if not n_sentences:
        return 0.0
    misses = [comb(n - len(g), k) / comb(n, k) if k <= n else 0.0
              for n, g in zip(n_sentences, gold, strict=True)]
    return float(1 - np.mean(misses))


def evidence_metrics(model_rankings: Sequence[Sequence[int]],
                     overlap_rankings: Sequence[Sequence[int]],
                     n_sentences: Sequence[int], gold: Sequence[set[int]]) -> dict[str, float]:
    """``evidence_hit_at_k`` (the model), ``evidence_random_hit_at_k`` and
    ``evidence_overlap_hit_at_k`` for k in 1 and 3, and ``evidence_pairs`` (cells scored)."""
    out: dict[str, float] = {}
    for k in KS:
        out[f"evidence_hit_at_{k}"] = hit_at(model_rankings, gold, k)
        out[f"evidence_random_hit_at_{k}"] = random_hit_at(n_sentences, gold, k)
        out[f"evidence_overlap_hit_at_{k}"] = hit_at(overlap_rankings, gold, k)
    out["evidence_pairs"] = len(gold)
    return out
