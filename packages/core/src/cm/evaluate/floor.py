"""The floor every run is scored beside: TF-IDF + logistic regression, one per criterion.

Fitted on the train split's (post, criterion) cells from the posts' own text (at sentence
level too: the floor reads whole posts, its cell is the post's), thresholds tuned on the val
cells exactly as the model's are (``eval.thresholds``), val and test scored at them with the
same post-level headline and bootstrap intervals. Its probabilities are used as they come
(no calibration). A criterion whose train cells hold one class only predicts that class's
rate. Seconds on ReDSM5, so every ``cm run`` fits it unless ``eval.floor = false``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cm.evaluate import decisions
from cm.evaluate.decisions import Decision, Pairs
from cm.evaluate.metrics import natural_sorted
from cm.evaluate.thresholds import tune_thresholds

PREFIX = "floor"
C = 1.0  # inverse L2 strength of each criterion's logistic regression (scikit-learn's default)


def vectorizer():
    """Word uni- and bigrams, sublinear term frequency."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # slow import

    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)


def fit_probabilities(texts: Mapping[str, str], train: Pairs,
                      others: Sequence[Pairs]) -> list[np.ndarray]:
    """P(match) of each cell of ``others``, from one logistic regression per criterion fitted
    on the TF-IDF of ``train``'s cells (the vocabulary from the train posts only)."""
    from sklearn.linear_model import LogisticRegression

    train_posts = sorted(set(train.post_ids))
    words = vectorizer().fit([texts[p] for p in train_posts])
    features = features_of(words, texts, [train, *others])
    out = [np.zeros(len(split.labels)) for split in others]
    for cid in natural_sorted(set(train.criterion_ids)):
        mine = train.criterion_ids == cid
        y = train.labels[mine]
        model = None
        if y.min() != y.max():
            model = LogisticRegression(C=C, max_iter=1000).fit(features[0][mine], y)
        for probs, split, x in zip(out, others, features[1:], strict=True):
            theirs = split.criterion_ids == cid
            if model is None:
                probs[theirs] = float(y[0])
            elif theirs.any():
                probs[theirs] = model.predict_proba(x[theirs])[:, 1]
    return out


def features_of(words, texts: Mapping[str, str], splits: Sequence[Pairs]) -> list:
    """Each split's TF-IDF rows, one per cell (each post transformed once)."""
    posts = sorted({p for split in splits for p in split.post_ids})
    row = {p: i for i, p in enumerate(posts)}
    matrix = words.transform([texts[p] for p in posts])
    return [matrix[[row[p] for p in split.post_ids]] for split in splits]


def floor_metrics(texts: Mapping[str, str], splits: Mapping[str, Pairs], thresholds,
                  criteria: Sequence[str], seed: int, resamples: int) -> dict[str, float]:
    """``floor/<val|test>/<name>``: the floor's scores at thresholds tuned on val (``splits``:
    train, val, test pairs; sentence pairs become their post cells)."""
    cells = {name: pairs.cells() for name, pairs in splits.items()}
    val_probs, test_probs = fit_probabilities(texts, cells["train"],
                                              [cells["val"], cells["test"]])
    val = cells["val"].with_probs(val_probs)
    cuts = tune_thresholds(thresholds, val.criterion_ids, val.labels, val.probs)
    decision = Decision.identity(cuts)
    out = {}
    for name, scored in (("val", val), ("test", cells["test"].with_probs(test_probs))):
        found = {**decisions.scores(scored, decision, criteria),
                 **decisions.intervals(scored, decision, seed, resamples)}
        out.update({f"{PREFIX}/{name}/{k}": v for k, v in found.items()})
    return out
