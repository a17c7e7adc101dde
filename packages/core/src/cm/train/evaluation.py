"""Scoring a split: window probabilities aggregated per pair, then the metrics."""

import numpy as np
import torch

from cm.evaluate.metrics import aggregate_windows, pair_metrics, per_criterion, post_level
from cm.train.batches import SplitData, eval_loader, to_device
from cm.train.distributed import ALONE, sum_across


@torch.no_grad()
def score(model, loss, split: SplitData, batch_size, pad_id, device, how="max",
          world=ALONE):
    """P(match) per pair of ``split`` (windows of one pair combined by ``how``) and, per pair,
    the window that drove a ``max`` decision (the evidence window). Under torchrun each rank
    scores every world-size-th batch and the probabilities are summed across ranks."""
    model.eval()
    probs = np.zeros(len(split.encoded))
    for i, batch in enumerate(eval_loader(split, batch_size, pad_id)):
        if i % world.size != world.rank:
            continue
        index = batch.pop("index").numpy()
        logits = model(to_device(batch, device))
        probs[index] = loss.probabilities(logits).float().cpu().numpy()
    probs = sum_across(probs, world, device)
    pair_index = np.array([e.pair_index for e in split.encoded])
    pairs, aggregated, evidence = aggregate_windows(pair_index, probs, how)
    if list(pairs) != list(range(len(split.pairs))):
        raise RuntimeError(f"{split.name}: not every pair was scored exactly once")
    return aggregated, evidence


def split_metrics(split: SplitData, probs, threshold, criteria) -> dict:
    labels = np.array([p.label for p in split.pairs])
    metrics = pair_metrics(labels, probs, threshold)
    if split.pairs[0].sentence_id is None:  # post level: the nine-criteria view per post
        posts = post_level([p.post_id for p in split.pairs],
                           [p.criterion_id for p in split.pairs], labels, probs, threshold,
                           criteria)
        metrics.update({f"post_{k}": v for k, v in posts.items()})
    return metrics


def criterion_metrics(split: SplitData, probs, threshold) -> dict:
    labels = np.array([p.label for p in split.pairs])
    return per_criterion([p.criterion_id for p in split.pairs], labels, probs, threshold)
