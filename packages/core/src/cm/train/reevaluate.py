"""Scoring a saved checkpoint on val and test as a run of its own, for ``cm replay
--eval-only``: the same weights, the same seeded splits and the engine's own evaluation
(``_evaluate_best``: threshold tuned on val, reports, ``evaluated`` per split) give the
metrics the original run logged, exactly. Trackers follow it through the usual hooks."""

from rich.console import Console

from cm.config.dump import dumps
from cm.data.prepare import cache_root, prepare
from cm.data.splits import class_balance
from cm.model.checkpoint import load_checkpoint
from cm.registry import get_registry
from cm.train.batches import encode_split
from cm.train.engine import (
    Run,
    _evaluate_best,
    build,
    resolve_device,
    run_directory,
    seed_everything,
)


def reevaluate(experiment, checkpoint_dir, *, registry=None, console=None) -> Run:
    """Re-score ``checkpoint_dir`` (a ``checkpoint/`` written by ``cm run``) under
    ``experiment``; returns the finished Run with its metrics and artifacts."""
    registry = registry or get_registry()
    console = console or Console()
    seed_everything(experiment.seed)
    run = Run(experiment, run_directory(experiment), resolve_device(experiment.train.device))
    (run.directory / "config.toml").write_text(dumps(experiment))
    trackers = [build(registry, spec, experiment=experiment)
                for spec in experiment.tracking.values()]
    manager = registry.plugins.manager
    for i, tracker in enumerate(trackers):
        manager.register(tracker, name=f"tracker-{i}-{id(tracker)}")
    hooks = manager.hook
    try:
        hooks.run_started(run=run)
        _score(run, registry, checkpoint_dir, console, hooks)
        run.status = "FINISHED"
        hooks.run_finished(run=run, status="FINISHED", error=None)
    except KeyboardInterrupt as exc:
        run.status = "KILLED"
        hooks.run_finished(run=run, status="KILLED", error=exc)
        raise
    except BaseException as exc:
        run.status = "FAILED"
        hooks.run_finished(run=run, status="FAILED", error=exc)
        raise
    finally:
        for tracker in trackers:
            manager.unregister(tracker)
    return run


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
