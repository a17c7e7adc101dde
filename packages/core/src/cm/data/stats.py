"""What ``cm data stats`` reports: counts per criterion and split, token lengths, the model
inputs the pairs become (``truncation = "windows"`` cuts a long pair into several) and the
padding waste of each batching strategy on those inputs."""

import numpy as np

from cm.data.batching import STRATEGIES, padding_waste
from cm.data.encode import encode_pairs
from cm.data.prepare import SPLITS, Prepared

PERCENTILES = (50, 90, 95, 99)


def label_counts(prepared: Prepared) -> list[dict]:
    """One row per criterion (and a total): pairs and positives in each split."""
    rows = []
    for criterion in [c.id for c in prepared.corpus.criteria] + ["total"]:
        row = {"criterion": criterion}
        for split in SPLITS:
            pairs = [p for p in prepared.split(split)
                     if criterion == "total" or p.criterion_id == criterion]
            row[f"{split}_pairs"] = len(pairs)
            row[f"{split}_positives"] = sum(p.label for p in pairs)
        rows.append(row)
    return rows


def pair_lengths(prepared: Prepared, tokenizer) -> np.ndarray:
    """Full (untruncated) token length of every pair: criterion + post (or sentence) + 3
    special tokens."""
    texts = sorted({p.text for p in prepared.pairs} | {p.criterion_text for p in prepared.pairs})
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    length = {text: len(tokens) for text, tokens in zip(texts, ids, strict=True)}
    return np.array([length[p.criterion_text] + length[p.text] + 3 for p in prepared.pairs])


def model_inputs(experiment, prepared: Prepared, tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """What the model runs, encoded as a run encodes it: each input's length, and the pair
    each belongs to (one input per pair, several for a pair cut into windows)."""
    data = experiment.data
    encoded = encode_pairs([(p.criterion_text, p.text) for p in prepared.pairs], tokenizer,
                           data.max_length, data.truncation, data.stride)
    return (np.array([len(e.input_ids) for e in encoded]),
            np.array([e.pair_index for e in encoded]))


def inputs_summary(pair_of: np.ndarray, truncation: str) -> dict:
    per_pair = np.bincount(pair_of)
    return {"truncation": truncation, "inputs": int(per_pair.sum()),
            "pairs_in_windows": int((per_pair > 1).sum())}


def length_summary(lengths: np.ndarray, max_length: int) -> dict:
    summary = {f"p{q}": int(np.percentile(lengths, q)) for q in PERCENTILES}
    summary.update(mean=float(lengths.mean()), max=int(lengths.max()),
                   over_max_length=float((lengths > max_length).mean()))
    return summary


def waste_table(lengths: np.ndarray, batch_size: int, max_length: int, seed: int) -> list[dict]:
    return [{"strategy": strategy, **padding_waste(lengths.tolist(), strategy, batch_size,
                                                   max_length, seed=seed)}
            for strategy in STRATEGIES]


def data_stats(experiment, prepared: Prepared, tokenizer) -> dict:
    lengths = pair_lengths(prepared, tokenizer)
    input_lengths, pair_of = model_inputs(experiment, prepared, tokenizer)
    train = np.array([prepared.split_of[prepared.pairs[i].post_id] == "train" for i in pair_of])
    corpus = prepared.corpus
    return {
        "dataset": experiment.data.dataset.name,
        "level": experiment.data.level,
        "posts": {split: len(prepared.posts_in(split)) for split in SPLITS},
        "annotations": len(corpus.annotations),
        "criteria": len(corpus.criteria),
        "digests": corpus.digests,
        "skipped": prepared.skipped,
        "labels": label_counts(prepared),
        "lengths": length_summary(lengths, experiment.data.max_length),
        "model_inputs": inputs_summary(pair_of, experiment.data.truncation),
        "padding": waste_table(input_lengths[train], experiment.train.batch_size,
                               experiment.data.max_length, experiment.seed),
    }
