"""A split's scores from its probabilities: pair-level and post-level metrics at one
threshold, and one epoch's validation columns (``val`` at 0.5, ``val_tuned`` at thresholds
tuned on it). ``split`` is anything with ``pairs`` (``PairSample``s, in score order)."""

from types import SimpleNamespace

import numpy as np

from cm.data.records import PairSample
from cm.evaluate import decisions
from cm.evaluate.decisions import Pairs
from cm.evaluate.metrics import pair_metrics, post_level


def pair_labels(split) -> np.ndarray:
    return np.array([p.label for p in split.pairs])


def cell_pairs(split, probs) -> Pairs:
    """A split's pairs as arrays for cm.evaluate.decisions (sentence pairs at sentence level)."""
    return Pairs.of([p.post_id for p in split.pairs], [p.criterion_id for p in split.pairs],
                    pair_labels(split), probs)


def split_metrics(split, probs, threshold, criteria) -> dict:
    """Pair-level scores and the post view's (``post_*``) at one threshold, raw probabilities
    (at sentence level a post's cell takes its highest sentence)."""
    pairs = cell_pairs(split, probs)
    metrics = pair_metrics(pairs.labels, pairs.probs, threshold)
    cells = pairs.cells()
    posts = post_level(cells.post_ids, cells.criterion_ids, cells.labels, cells.probs, threshold,
                       criteria)
    metrics.update({f"post_{k}": v for k, v in posts.items()})
    return metrics


def validation_metrics(split, probs, criteria, threshold_mode) -> dict:
    """One epoch's validation: ``val`` at 0.5 and ``val_tuned`` at thresholds tuned on this
    validation (``eval.thresholds``; calibration changes no decision, so it waits for the
    end). Keys ``val/<name>`` and ``val_tuned/<name>``."""
    pairs = cell_pairs(split, probs)
    tuned = decisions.fit(threshold_mode, "none", pairs)
    columns = {"val": split_metrics(split, probs, 0.5, criteria),
               "val_tuned": decisions.scores(pairs, tuned, criteria)}
    return {f"{column}/{k}": v for column, metrics in columns.items()
            for k, v in metrics.items()}


def metric_names() -> list[str]:
    """The scores validation reports every epoch (``val/<name>``, ``val_tuned/<name>``;
    per criterion ``<column>/A.1/<name>``): read off validating a two-post example rather
    than listed by hand, so they follow the code."""
    pairs = [PairSample(post, criterion, "", "", label) for post, criterion, label in
             (("p1", "A.1", 1), ("p1", "A.2", 0), ("p2", "A.1", 0), ("p2", "A.2", 1))]
    probs = np.array([0.9, 0.2, 0.6, 0.4])
    return sorted(validation_metrics(SimpleNamespace(pairs=pairs), probs, ["A.1", "A.2"],
                                     "per_criterion"))
