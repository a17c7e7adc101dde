"""Evaluation: scoring a split (window probabilities aggregated per pair), validation at
each epoch, and the final evaluation of the best model on val and test at the decision
(temperatures, per-criterion thresholds) fitted on val.

The interface the engine uses: ``Scorer`` (a model and how to score with it),
``validate(scorer, split, criteria, eval_config) -> metrics`` and
``evaluate_best(run, scorer, splits, corpus, best_epoch, hooks, console) -> Evaluation``.
"""

import json

import attrs
import numpy as np
import torch

from cm.cachedir import cache_root
from cm.evaluate import decisions
from cm.evaluate.decisions import Decision, Pairs
from cm.evaluate.metrics import aggregate_windows, pair_metrics, post_level
from cm.evaluate.report import write_split_report
from cm.evaluate.summary import criterion_table, evidence_table, headline_table
from cm.model.checkpoint import save_checkpoint
from cm.train.batches import SplitData, eval_loader, to_device
from cm.train.distributed import ALONE, World, sum_across
from cm.train.evidence import evaluate_evidence


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
    """Pair-level scores and the post view's (``post_*``) at one threshold, raw probabilities
    (at sentence level a post's cell takes its highest sentence)."""
    pairs = cell_pairs(split, probs)
    metrics = pair_metrics(pairs.labels, pairs.probs, threshold)
    cells = pairs.cells()
    posts = post_level(cells.post_ids, cells.criterion_ids, cells.labels, cells.probs, threshold,
                       criteria)
    metrics.update({f"post_{k}": v for k, v in posts.items()})
    return metrics


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


def cell_pairs(split: SplitData, probs) -> Pairs:
    """A split's pairs as arrays for cm.evaluate.decisions (sentence pairs at sentence level)."""
    return Pairs.of([p.post_id for p in split.pairs], [p.criterion_id for p in split.pairs],
                    pair_labels(split), probs)


def validate(scorer: Scorer, split: SplitData, criteria, eval_config) -> dict:
    """One epoch's validation: ``val`` at 0.5 and ``val_tuned`` at thresholds tuned on this
    validation (``eval.thresholds``; calibration changes no decision, so it waits for the
    end). Keys ``val/<name>`` and ``val_tuned/<name>``."""
    probs = scorer.probabilities(split)
    pairs = cell_pairs(split, probs)
    tuned = decisions.fit(eval_config.thresholds, "none", pairs)
    columns = {"val": split_metrics(split, probs, 0.5, criteria),
               "val_tuned": decisions.scores(pairs, tuned, criteria)}
    return {f"{column}/{k}": v for column, metrics in columns.items()
            for k, v in metrics.items()}


@attrs.frozen
class Evaluation:
    """The final evaluation: the decision fitted on val (temperatures, thresholds), the
    metrics per column (``val``, ``val_tuned``, ``test``, ``test_tuned``)."""

    decision: Decision
    columns: dict


def evaluate_best(run, scorer: Scorer, splits, corpus, best_epoch, hooks, console,
                  decision: Decision | None = None) -> Evaluation:
    """Score the best model on val and test at the decision fitted on val (or ``decision``,
    e.g. a checkpoint's, as it is); fills ``run.metrics`` and ``run.artifacts``, calls
    ``evaluated`` per split; rank 0 saves the final checkpoint (with the decision) and prints
    the summary."""
    criteria = [c.id for c in corpus.criteria]
    evaluation = evaluate(run, scorer, splits, corpus, hooks, decision)
    run.metrics["best_epoch"] = best_epoch
    if run.world.main:
        save_checkpoint(run.directory / "checkpoint", scorer.model, scorer.tokenizer,
                        run.experiment,
                        {"num_logits": scorer.loss.num_logits, **evaluation.decision.meta(),
                         "epoch": best_epoch, "final": True,
                         "criteria": [{"id": c.id, "text": c.text} for c in corpus.criteria],
                         "test_post_macro_f1": run.metrics["test_tuned/post_macro_f1"]})
        (run.directory / "metrics.json").write_text(json.dumps(run.metrics, indent=2))
        console.print(headline_table(run.metrics, len(criteria)))
        console.print(criterion_table(run.metrics, criteria))
        if run.experiment.eval.evidence:
            console.print(evidence_table(run.metrics))
        console.print(f"best epoch {best_epoch}; reports: {run.directory}")
    return evaluation


def evaluate(run, scorer: Scorer, splits, corpus, hooks, decision=None) -> Evaluation:
    experiment = run.experiment
    settings, ids = experiment.eval, [c.id for c in corpus.criteria]
    pairs = {name: cell_pairs(splits[name], scorer.probabilities(splits[name]))
             for name in ("val", "test")}
    decision = decision or decisions.fit(settings.thresholds, settings.calibration,
                                         pairs["val"])
    run.metrics.update({f"temperature/{c}": t for c, t in decision.temperatures.items()})
    columns = {}
    for name in ("val", "test"):
        split = splits[name]
        plain = split_metrics(split, pairs[name].probs, 0.5, ids)
        tuned = {**decisions.scores(pairs[name], decision, ids),
                 **decisions.calibration_scores(pairs[name], decision),
                 **decisions.intervals(pairs[name], decision, experiment.seed,
                                       settings.bootstrap_resamples)}
        if settings.evidence:
            tuned.update(evaluate_evidence(scorer, experiment.data, cache_root() / "encoded",
                                           corpus, {p.post_id for p in split.pairs}))
        columns.update({name: plain, f"{name}_tuned": tuned})
        for column in (name, f"{name}_tuned"):
            run.metrics.update({f"{column}/{k}": v for k, v in columns[column].items()})
        artifacts = write_split_report(run.directory, name, pairs[name],
                                       [p.sentence_id for p in split.pairs], decision, ids,
                                       tuned) if run.world.main else {}
        run.artifacts.update({f"{name}/{k}": str(v) for k, v in artifacts.items()})
        hooks.evaluated(run=run, split=name, metrics=plain, artifacts=artifacts)
    return Evaluation(decision, columns)


def metric_names() -> list[str]:
    """The scores ``validate`` reports every epoch (``val/<name>``, ``val_tuned/<name>``;
    per criterion ``<column>/A.1/<name>``): read off validating a two-post example rather
    than listed by hand, so they follow the code."""
    from types import SimpleNamespace

    from cm.data.records import PairSample

    pairs = [PairSample(post, criterion, "", "", label) for post, criterion, label in
             (("p1", "A.1", 1), ("p1", "A.2", 0), ("p2", "A.1", 0), ("p2", "A.2", 1))]
    scorer = SimpleNamespace(probabilities=lambda split: np.array([0.9, 0.2, 0.6, 0.4]))
    eval_config = SimpleNamespace(thresholds="per_criterion")
    return sorted(validate(scorer, SimpleNamespace(pairs=pairs), ["A.1", "A.2"], eval_config))
