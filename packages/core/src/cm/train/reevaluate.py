"""Scoring a saved checkpoint on val and test as a run of its own, for ``cm replay
--eval-only``: the same weights, the same seeded splits and the engine's own evaluation
(``_evaluate_best``: threshold tuned on val, reports, ``evaluated`` per split) give the
metrics the original run logged, exactly. Trackers follow it through the usual hooks."""

from cm.data.prepare import cache_root, prepare
from cm.data.splits import class_balance
from cm.model.checkpoint import load_checkpoint
from cm.train.batches import encode_split
from cm.train.engine import Run, _evaluate_best, build, tracked_run


def reevaluate(experiment, checkpoint_dir, *, registry=None, console=None) -> Run:
    """Re-score ``checkpoint_dir`` (a ``checkpoint/`` written by ``cm run``) under
    ``experiment``; returns the finished Run with its metrics and artifacts."""
    return tracked_run(experiment, lambda run, registry, console, hooks: _score(
        run, registry, checkpoint_dir, console, hooks), registry=registry, console=console)


def _score(run, registry, checkpoint_dir, console, hooks):
    experiment, device = run.experiment, run.device
    data = experiment.data
    checkpoint = load_checkpoint(checkpoint_dir, registry)
    prepared = prepare(experiment, registry)
    tokenizer = checkpoint.tokenizer
    splits = {s: encode_split(s, prepared.split(s), tokenizer, data, cache_root() / "encoded")
              for s in ("val", "test")}
    _, _, pos_weight = class_balance(prepared.split("train"))  # as in training
    loss = build(registry, experiment.train.loss, pos_weight=pos_weight).to(device)
    model = checkpoint.model.to(device)
    run.epoch = checkpoint.meta["epoch"]
    console.print(f"[bold]{experiment.name}[/bold]: re-evaluating {checkpoint_dir} (best epoch "
                  f"{run.epoch}) on {device} -> {run.directory}")
    eval_args = (experiment.train.eval_batch_size, tokenizer.pad_token_id, device,
                 data.window_aggregation, run.world)
    _evaluate_best(run, model, loss, tokenizer, splits, prepared.corpus.criteria, eval_args,
                   run.epoch, console, hooks)
