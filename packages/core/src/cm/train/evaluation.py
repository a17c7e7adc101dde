"""Evaluation: scoring a split (window probabilities aggregated per pair), validation at
each epoch, and the final evaluation of the best model on val and test.

The interface the engine uses: ``Scorer`` (a model and how to score with it),
``validate(scorer, split, criteria) -> metrics`` and
``evaluate_best(run, scorer, splits, criteria, best_epoch, hooks, console) -> Evaluation``.
"""

import json

import attrs
import numpy as np
import torch

from cm.evaluate.metrics import (
    aggregate_windows,
    pair_metrics,
    per_criterion,
    post_level,
    tune_threshold,
)
from cm.evaluate.report import metrics_table, write_split_report
from cm.model.checkpoint import save_checkpoint
from cm.train.batches import SplitData, eval_loader, to_device
from cm.train.distributed import ALONE, World, sum_across


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


def pair_labels(split: SplitData) -> np.ndarray:
    return np.array([p.label for p in split.pairs])


def split_metrics(split: SplitData, probs, threshold, criteria) -> dict:
    labels = pair_labels(split)
    metrics = pair_metrics(labels, probs, threshold)
    if split.pairs[0].sentence_id is None:  # post level: the nine-criteria view per post
        posts = post_level([p.post_id for p in split.pairs],
                           [p.criterion_id for p in split.pairs], labels, probs, threshold,
                           criteria)
        metrics.update({f"post_{k}": v for k, v in posts.items()})
    return metrics


def criterion_metrics(split: SplitData, probs, threshold) -> dict:
    return per_criterion([p.criterion_id for p in split.pairs], pair_labels(split), probs,
                         threshold)


@attrs.frozen
class Scorer:
    """A model, its loss (logits -> probabilities), its tokenizer, and how to score with
    them: evaluation batch size, device, how windows of one pair combine, the torchrun world.
    """

    model: object
    loss: object
    tokenizer: object
    batch_size: int
    device: str
    how: str = "max"
    world: World = ALONE

    @classmethod
    def of(cls, run, model, loss, tokenizer) -> "Scorer":
        experiment = run.experiment
        return cls(model, loss, tokenizer, experiment.train.eval_batch_size, run.device,
                   experiment.data.window_aggregation, run.world)

    def probabilities(self, split: SplitData):
        """P(match) per pair of ``split``."""
        return score(self.model, self.loss, split, self.batch_size,
                     self.tokenizer.pad_token_id, self.device, self.how, self.world)[0]


def validate(scorer: Scorer, split: SplitData, criteria) -> dict:
    """The metrics of one epoch's validation, at the 0.5 threshold."""
    return split_metrics(split, scorer.probabilities(split), 0.5, criteria)


@attrs.frozen
class Evaluation:
    """The final evaluation: the threshold tuned on val, the metrics per column (``val``,
    ``val_tuned``, ``test``, ``test_tuned``) and the probabilities per split."""

    threshold: float
    columns: dict
    probabilities: dict


def evaluate_best(run, scorer: Scorer, splits, criteria, best_epoch, hooks,
                  console) -> Evaluation:
    """Score the best model on val and test: threshold tuned on val only, then applied to
    test; both 0.5 and tuned reported. Fills ``run.metrics`` and ``run.artifacts``, calls
    ``evaluated`` per split; rank 0 saves the final checkpoint and prints the tables."""
    evaluation = evaluate(run, scorer, splits, [c.id for c in criteria], hooks)
    run.metrics["threshold"] = evaluation.threshold
    run.metrics["best_epoch"] = best_epoch
    if run.world.main:
        save_checkpoint(run.directory / "checkpoint", scorer.model, scorer.tokenizer,
                        run.experiment,
                        {"num_logits": scorer.loss.num_logits, "threshold": evaluation.threshold,
                         "epoch": best_epoch, "final": True,
                         "criteria": [{"id": c.id, "text": c.text} for c in criteria],
                         "test_macro_f1": run.metrics["test/macro_f1"]})
        (run.directory / "metrics.json").write_text(json.dumps(run.metrics, indent=2))
        print_evaluation(console, run, evaluation, splits["test"], best_epoch)
    return evaluation


def evaluate(run, scorer: Scorer, splits, ids, hooks) -> Evaluation:
    probabilities = {name: scorer.probabilities(splits[name]) for name in ("val", "test")}
    threshold = tune_threshold(pair_labels(splits["val"]), probabilities["val"])
    columns = {}
    for name in ("val", "test"):
        probs, split = probabilities[name], splits[name]
        for suffix, cut in (("", 0.5), ("_tuned", threshold)):
            metrics = split_metrics(split, probs, cut, ids)
            columns[f"{name}{suffix}"] = metrics
            run.metrics.update({f"{name}{suffix}/{k}": v for k, v in metrics.items()})
        artifacts = write_split_report(run.directory, name, pair_labels(split), probs, threshold,
                                       [p.criterion_id for p in split.pairs],
                                       [p.post_id for p in split.pairs], ids
                                       ) if run.world.main else {}
        run.artifacts.update({f"{name}/{k}": str(v) for k, v in artifacts.items()})
        hooks.evaluated(run=run, split=name, metrics=columns[name], artifacts=artifacts)
    return Evaluation(threshold, columns, probabilities)


HEADLINE = ("accuracy", "macro_f1", "weighted_f1", "precision", "recall", "f1", "roc_auc",
            "pr_auc", "post_micro_f1", "post_macro_f1")


def print_evaluation(console, run, evaluation: Evaluation, test: SplitData, best_epoch):
    console.print(metrics_table({column: {k: metrics[k] for k in HEADLINE if k in metrics}
                                 for column, metrics in evaluation.columns.items()}))
    console.print(f"threshold tuned on val: {evaluation.threshold:.3f}; best epoch "
                  f"{best_epoch}; per-criterion: {run.directory}/test_per_criterion.csv")
    table = criterion_metrics(test, evaluation.probabilities["test"], evaluation.threshold)
    console.print("test per criterion (tuned threshold): " + ", ".join(
        f"{cid} F1 {row['f1']:.2f}" for cid, row in table.items()))
