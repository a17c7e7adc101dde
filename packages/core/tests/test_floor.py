"""The TF-IDF floor: what cm reports is scikit-learn's result on the same cells, and sentence
pairs are scored as their posts."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from cm.evaluate.decisions import Pairs
from cm.evaluate.floor import fit_probabilities, floor_metrics

TEXTS = {
    "t1": "I cannot sleep at night and feel sad", "t2": "sad and empty every day",
    "t3": "no appetite, I skip meals", "t4": "I sleep all day, tired",
    "t5": "great holiday with friends", "t6": "eating too much and sleeping badly",
    "v1": "sad, I cannot sleep", "v2": "meals feel pointless, no appetite",
    "v3": "holiday photos", "v4": "empty and sad",
    "s1": "so sad tonight", "s2": "I cannot sleep again", "s3": "skipped meals",
    "s4": "friends came over", "s5": "tired and sad all day",
}
LABELS = {  # post -> (A.1 sad, A.2 sleep)
    "t1": (1, 1), "t2": (1, 0), "t3": (0, 0), "t4": (0, 1), "t5": (0, 0), "t6": (0, 1),
    "v1": (1, 1), "v2": (0, 0), "v3": (0, 0), "v4": (1, 0),
    "s1": (1, 0), "s2": (0, 1), "s3": (0, 0), "s4": (0, 0), "s5": (1, 1),
}
CRITERIA = ["A.1", "A.2"]


def cells(prefix):
    posts = [p for p in LABELS if p.startswith(prefix)]
    return Pairs.of([p for p in posts for _ in CRITERIA], CRITERIA * len(posts),
                    [LABELS[p][j] for p in posts for j in range(2)], np.zeros(2 * len(posts)))


def direct(criterion: int, split: str) -> np.ndarray:
    """scikit-learn alone: TF-IDF on the train posts, one logistic regression per criterion."""
    train = [p for p in LABELS if p.startswith("t")]
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit([TEXTS[p] for p in train])
    model = LogisticRegression(max_iter=1000).fit(words.transform([TEXTS[p] for p in train]),
                                                  [LABELS[p][criterion] for p in train])
    posts = [p for p in LABELS if p.startswith(split)]
    return model.predict_proba(words.transform([TEXTS[p] for p in posts]))[:, 1]


def test_floor_probabilities_are_scikit_learns():
    val, test = fit_probabilities(TEXTS, cells("t"), [cells("v"), cells("s")])
    for j, cid in enumerate(CRITERIA):
        assert val[cells("v").criterion_ids == cid] == pytest.approx(direct(j, "v"), abs=1e-12)
        assert test[cells("s").criterion_ids == cid] == pytest.approx(direct(j, "s"), abs=1e-12)
    assert 0 < test.min() and test.max() < 1


def test_floor_scores_are_scikit_learns_f1_at_thresholds_fixed_on_val():
    splits = {"train": cells("t"), "val": cells("v"), "test": cells("s")}
    found = floor_metrics(TEXTS, splits, 0.3, CRITERIA, seed=0, resamples=200)
    f1s = []
    for j, cid in enumerate(CRITERIA):
        labels = [LABELS[p][j] for p in LABELS if p.startswith("s")]
        f1s.append(f1_score(labels, direct(j, "s") >= 0.3, zero_division=0))
        assert found[f"floor/test/{cid}/f1"] == pytest.approx(f1s[-1])
        assert found[f"floor/test/{cid}/threshold"] == 0.3
    assert found["floor/test/post_macro_f1"] == pytest.approx(np.mean(f1s))
    assert (found["floor/test/post_macro_f1_low"] <= found["floor/test/post_macro_f1"]
            <= found["floor/test/post_macro_f1_high"])
    assert "floor/val/post_macro_f1" in found


def test_sentence_pairs_are_scored_as_their_posts_and_one_class_criteria_predict_its_rate():
    posts = [p for p in LABELS if p.startswith("t")]
    # two "sentences" per post, the post's label on one of them: the cells are the posts'
    sentences = Pairs.of([p for p in posts for _ in range(2)], ["A.1"] * 2 * len(posts),
                         [v for p in posts for v in (LABELS[p][0], 0)], np.zeros(2 * len(posts)))
    by_post = Pairs.of(posts, ["A.1"] * len(posts), [LABELS[p][0] for p in posts],
                       np.zeros(len(posts)))
    splits = {"train": by_post, "val": cells("v"), "test": cells("s")}
    assert floor_metrics(TEXTS, {**splits, "train": sentences}, "global", ["A.1", "A.2"], 0,
                         200) == floor_metrics(TEXTS, splits, "global", ["A.1", "A.2"], 0, 200)
    never = Pairs.of(posts, ["A.9"] * len(posts), [0] * len(posts), np.zeros(len(posts)))
    (probs,) = fit_probabilities(TEXTS, never, [Pairs.of(["s1"], ["A.9"], [0], [0.0])])
    assert probs.tolist() == [0.0]


def test_the_verdict_says_plainly_when_the_model_does_not_beat_the_floor():
    from cm.evaluate.summary import floor_verdict

    below = floor_verdict({"test_tuned/post_macro_f1": 0.30, "floor/test/post_macro_f1": 0.35})
    assert "does not beat the TF-IDF floor" in below and "0.300 against the floor's 0.350" in below
    tied = floor_verdict({"test_tuned/post_macro_f1": 0.35, "floor/test/post_macro_f1": 0.35})
    assert "does not beat" in tied
    above = floor_verdict({"test_tuned/post_macro_f1": 0.50, "floor/test/post_macro_f1": 0.35})
    assert above.startswith("the model beats the TF-IDF floor on test by 0.150")
