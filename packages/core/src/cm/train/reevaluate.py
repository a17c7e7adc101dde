"""Scoring a saved checkpoint on val and test as a run of its own, for ``cm replay
--eval-only``: the same weights, the same seeded splits and the engine's own final
evaluation (``cm.train.assess.evaluate_best`` at the checkpoint's own decision: its
calibrator and per-criterion thresholds, reports, ``evaluated`` per split) give the metrics
the original run logged, exactly. Listeners
follow it through the usual hooks."""

from cm.cachedir import cache_root
from cm.data.loaders import SplitData, encode_split
from cm.data.splits import class_balance
from cm.evaluate.decisions import Decision
from cm.model.checkpoint import load_checkpoint
from cm.model.scoring import Scorer
from cm.train.assess import evaluate_best
from cm.train.lifecycle import Run, tracked_run


def reevaluate(experiment, checkpoint_dir, *, registry=None, console=None,
               listeners=()) -> Run:
    """Re-score ``checkpoint_dir`` (a ``checkpoint/`` written by ``cm run``) under
    ``experiment``; returns the finished Run with its metrics and artifacts."""
    def body(run, registry, console, hooks):
        rescore(run, registry, checkpoint_dir, console, hooks)

    return tracked_run(experiment, body, registry=registry, console=console,
                       listeners=listeners)


def rescore(run, registry, checkpoint_dir, console, hooks):
    experiment = run.experiment
    checkpoint = load_checkpoint(checkpoint_dir, registry)
    prepared = run.prepared
    tokenizer = checkpoint.tokenizer
    splits = {s: encode_split(s, prepared.split(s), tokenizer, experiment.data,
                              cache_root() / "encoded") for s in ("val", "test")}
    splits["train"] = SplitData("train", prepared.split("train"), [])  # the floor's labels
    _, _, pos_weight = class_balance(prepared.split("train"))  # as in training
    loss = registry.build(experiment.train.loss, pos_weight=pos_weight).to(run.device)
    run.epoch = checkpoint.meta["epoch"]
    console.print(f"[bold]{experiment.name}[/bold]: re-evaluating {checkpoint_dir} (best epoch "
                  f"{run.epoch}) on {run.device} -> {run.directory}")
    scorer = Scorer.of(run, checkpoint.model.to(run.device), loss, tokenizer)
    meta = checkpoint.meta
    decision = Decision.from_meta(meta) if "thresholds" in meta else None  # else: fit on val
    evaluate_best(run, scorer, splits, prepared.corpus, run.epoch, hooks, console, decision)
