"""``cm run``: seed, prepare data, build the model, dry run, train with early stopping on
validation macro-F1, then evaluate the best checkpoint on val and test.

Everything lands in ``<output_dir>/<name>/<timestamp>/`` and reaches trackers through the
lifecycle hooks (run_started, step_ended, epoch_ended, evaluated, run_finished)."""

import copy
import json
import random
import time
from pathlib import Path

import attrs
import numpy as np
import torch
from rich.console import Console

from cm.builtin.optimizers import param_groups
from cm.config.dump import dumps
from cm.data.prepare import SPLITS, cache_root, prepare
from cm.data.splits import class_balance
from cm.errors import UserError
from cm.evaluate.metrics import tune_threshold
from cm.evaluate.report import metrics_table, write_split_report
from cm.model.backbone import load_backbone
from cm.model.checkpoint import save_checkpoint
from cm.model.crossencoder import build_cross_encoder
from cm.optimization import TrainContext, resolve
from cm.registry import get_registry
from cm.train.batches import encode_split, to_device, train_loader
from cm.train.checks import dry_run
from cm.train.distributed import World, broadcast, start, stop, wrap
from cm.train.evaluation import criterion_metrics, score, split_metrics
from cm.train.loop import progress_bar, train_epoch


@attrs.define
class Run:
    """What hooks receive: the resolved experiment, where outputs go, and progress."""

    experiment: object
    directory: Path
    device: str
    epoch: int = 0
    status: str = "RUNNING"
    metrics: dict = attrs.Factory(dict)
    artifacts: dict = attrs.Factory(dict)
    telemetry: list = attrs.Factory(list)  # cm.optimization.Telemetry per requested one
    world: World = attrs.Factory(World)  # this process's rank under torchrun


MEASURED = ("train/samples_per_s", "system/peak_memory_mb")  # vary run to run; not scores


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device = 'cuda' but no CUDA GPU is visible; use 'auto' or 'cpu'")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("train.device = 'mps' but MPS is not available; use 'auto' or 'cpu'")
    return name


def run_directory(experiment) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(experiment.output_dir) / experiment.name
    directory, n = base / stamp, 1
    while directory.exists():
        directory, n = base / f"{stamp}-{n}", n + 1
    directory.mkdir(parents=True)
    return directory


def build(registry, spec, **kwargs):
    return registry.get(spec.kind, spec.name).build(spec.options, **kwargs)


def run_experiment(experiment, *, registry=None, dry=False, console=None) -> Run:
    """Train and evaluate ``experiment``; returns the finished Run (metrics, artifacts)."""
    return tracked_run(experiment, lambda run, registry, console, hooks: _train_and_evaluate(
        run, registry, console, hooks, dry), registry=registry, console=console)


def tracked_run(experiment, body, *, registry=None, console=None) -> Run:
    """Seed, join torchrun if launched by it, make the run directory, build the trackers,
    then ``body(run, registry, console, hooks)`` between run_started and run_finished
    (FINISHED, FAILED, or KILLED on Ctrl-C)."""
    registry = registry or get_registry()
    seed_everything(experiment.seed)
    world, device = start(resolve_device(experiment.train.device))
    console = (console or Console()) if world.main else Console(quiet=True)
    directory = broadcast(run_directory(experiment) if world.main else None, world)
    run = Run(experiment, directory, device, world=world)
    if world.main:  # rank 0 alone writes files and talks to trackers
        (run.directory / "config.toml").write_text(dumps(experiment))
    trackers = [build(registry, spec, experiment=experiment)
                for spec in experiment.tracking.values()] if world.main else []
    manager = registry.plugins.manager
    for i, tracker in enumerate(trackers):
        manager.register(tracker, name=f"tracker-{i}-{id(tracker)}")
    hooks = manager.hook
    try:
        hooks.run_started(run=run)
        body(run, registry, console, hooks)
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
        stop(world)
    return run


@attrs.frozen
class Trainer:
    """What trains: the loss, the plain model (evaluated and saved), the optimizations'
    context (``context.model`` is what trains: compiled, LoRA-wrapped ...), the optimizer
    and the grad scaler; built one way for ``cm run`` and ``cm bench``."""

    loss: object
    model: object
    context: TrainContext
    optimizer: object
    scaler: object
    telemetry: list
    trainable: int  # parameters the optimizer updates (LoRA freezes the rest)

    def loader(self, split, pad_id, world=None):
        context = self.context
        return train_loader(split, context.experiment.train.batch_size,
                            context.experiment.seed, pad_id, context.batching,
                            context.token_budget, world, pad_to_multiple=context.pad_to_multiple,
                            **context.loader)


def build_trainer(experiment, registry, device, backbone, pos_weight) -> Trainer:
    """Loss, model, then the requested optimizations resolved and applied, then the optimizer
    over the parameter groups (frozen parameters, e.g. LoRA's base weights, left out)."""
    train = experiment.train
    loss = build(registry, train.loss, pos_weight=pos_weight).to(device)
    model = build_cross_encoder(experiment, registry, backbone, loss.num_logits).to(device)
    active, telemetry = resolve(experiment.optimizations, registry, device)
    context = TrainContext(experiment, device, model, token_budget=experiment.data.max_length)
    for optimization in active:
        optimization.apply(context)
    groups = param_groups(model, train.lr, train.weight_decay, train.head_lr,
                          train.layerwise_lr_decay)
    optimizer = build(registry, context.optimizer, param_groups=groups, lr=train.lr)
    scaler = torch.amp.GradScaler(torch.device(device).type, enabled=context.grad_scaler)
    trainable = sum(p.numel() for group in groups for p in group["params"])
    return Trainer(loss, model, context, optimizer, scaler, telemetry, trainable)


def _train_and_evaluate(run, registry, console, hooks, dry):
    experiment, device = run.experiment, run.device
    data, train = experiment.data, experiment.train
    prepared = prepare(experiment, registry)
    backbone, tokenizer = load_backbone(experiment.model.backbone,
                                        texts=prepared.tokenizer_texts(),
                                        tiny=experiment.model.tiny, cache_root=cache_root(),
                                        seed=experiment.seed)
    splits = {s: encode_split(s, prepared.split(s), tokenizer, data, cache_root() / "encoded")
              for s in SPLITS}
    n_pos, n_neg, pos_weight = class_balance(splits["train"].pairs)
    trainer = build_trainer(experiment, registry, device, backbone, pos_weight)
    loss, model, context = trainer.loss, trainer.model, trainer.context
    optimizer, scaler, trainable = trainer.optimizer, trainer.scaler, trainer.trainable
    run.telemetry = trainer.telemetry
    loader = trainer.loader(splits["train"], tokenizer.pad_token_id, run.world)
    steps = -(-len(loader) // train.grad_accum_steps) * train.epochs
    scheduler = build(registry, train.scheduler, optimizer=optimizer, num_training_steps=steps)
    console.print(f"[bold]{experiment.name}[/bold]: {len(prepared.corpus.posts)} posts, "
                  + ", ".join(f"{s} {len(splits[s].pairs)} pairs" for s in SPLITS)
                  + f" ({n_pos} positive / {n_neg} negative in train, pos_weight "
                  f"{pos_weight:.2f}); {sum(p.numel() for p in model.parameters()):,} "
                  f"parameters ({trainable:,} trainable) on {device} -> {run.directory}")
    if run.telemetry:
        console.print(telemetry_table(run.telemetry))
    first = next(iter(loader))
    first.pop("index")
    checked = dry_run(model, loss, to_device(first, device), tokenizer, device)
    console.print(f"dry run ok: batch {checked['batch_shape']}, logits "
                  f"{checked['logits_shape']}, loss {checked['first_loss']:.4f}")
    if dry:
        return
    criteria = [c.id for c in prepared.corpus.criteria]
    eval_args = (train.eval_batch_size, tokenizer.pad_token_id, device, data.window_aggregation,
                 run.world)
    # context.model may be compiled; DDP under torchrun. Evaluation and checkpoints use the
    # plain `model`, which shares its parameters (no `_orig_mod.` prefixes in checkpoints).
    trained = wrap(context.model, run.world, device)
    if run.world.size > 1:
        console.print(f"torchrun: {run.world.size} processes, global batch {train.batch_size} "
                      f"split across them; {loader.batch_sampler.dropped} examples per epoch "
                      "left out (final batches smaller than the world)")
    best_f1, best_state, best_epoch, waited, step, history = -1.0, None, 0, 0, 0, []
    train_seconds = 0.0
    with progress_bar(console) as progress:
        for epoch in range(1, train.epochs + 1):
            run.epoch = epoch
            loader.batch_sampler.set_epoch(epoch)
            started = time.perf_counter()
            mean_loss, step = train_epoch(trained, loss, loader, optimizer, scheduler, train,
                                          context, scaler, progress, hooks, run, step)
            train_seconds += time.perf_counter() - started
            probs, _ = score(model, loss, splits["val"], *eval_args)
            val = split_metrics(splits["val"], probs, 0.5, criteria)
            metrics = {"train/epoch_loss": mean_loss,
                       **{f"val/{k}": v for k, v in val.items()}}
            history.append({"epoch": epoch, **metrics})
            hooks.epoch_ended(run=run, epoch=epoch, metrics=metrics)
            progress.console.print(f"epoch {epoch}: train loss {mean_loss:.4f}, val macro-F1 "
                                   f"{val['macro_f1']:.4f}, val PR-AUC {val.get('pr_auc', 0):.4f}")
            if val["macro_f1"] > best_f1:
                best_f1, best_epoch, waited = val["macro_f1"], epoch, 0
                best_state = copy.deepcopy(model.state_dict())
                if run.world.main:
                    save_checkpoint(run.directory / "checkpoint", model, tokenizer, experiment,
                                    {"num_logits": loss.num_logits, "threshold": 0.5,
                                     "epoch": epoch, "final": False})
            else:
                waited += 1
                if train.early_stopping_patience and waited >= train.early_stopping_patience:
                    progress.console.print(f"early stop: no val macro-F1 gain for {waited} "
                                           f"epochs (best {best_f1:.4f} at epoch {best_epoch})")
                    break
    run.metrics["train/samples_per_s"] = len(splits["train"].encoded) * run.epoch / train_seconds
    run.metrics["system/peak_memory_mb"] = peak_memory_mb(device)
    run.metrics["model/trainable_parameters"] = trainable  # LoRA: adapters + head + pooling
    model.load_state_dict(best_state)
    if run.world.main:
        (run.directory / "history.json").write_text(json.dumps(history, indent=2))
    _evaluate_best(run, model, loss, tokenizer, splits, prepared.corpus.criteria, eval_args,
                   best_epoch, console, hooks)


def _evaluate_best(run, model, loss, tokenizer, splits, criteria, eval_args, best_epoch,
                   console, hooks):
    """Threshold tuned on val only, then applied to test; both 0.5 and tuned reported."""
    probs_of = {name: score(model, loss, splits[name], *eval_args)[0] for name in ("val", "test")}
    val_labels = np.array([p.label for p in splits["val"].pairs])
    threshold = tune_threshold(val_labels, probs_of["val"])
    ids = [c.id for c in criteria]
    columns = {}
    for name in ("val", "test"):
        probs, split = probs_of[name], splits[name]
        for suffix, cut in (("", 0.5), ("_tuned", threshold)):
            metrics = split_metrics(split, probs, cut, ids)
            columns[f"{name}{suffix}"] = metrics
            run.metrics.update({f"{name}{suffix}/{k}": v for k, v in metrics.items()})
        labels = np.array([p.label for p in split.pairs])
        artifacts = write_split_report(run.directory, name, labels, probs, threshold,
                                       [p.criterion_id for p in split.pairs],
                                       [p.post_id for p in split.pairs], ids
                                       ) if run.world.main else {}
        run.artifacts.update({f"{name}/{k}": str(v) for k, v in artifacts.items()})
        hooks.evaluated(run=run, split=name, metrics=columns[name], artifacts=artifacts)
    run.metrics["threshold"] = threshold
    run.metrics["best_epoch"] = best_epoch
    if not run.world.main:
        return
    save_checkpoint(run.directory / "checkpoint", model, tokenizer, run.experiment,
                    {"num_logits": loss.num_logits, "threshold": threshold,
                     "epoch": best_epoch, "final": True,
                     "criteria": [{"id": c.id, "text": c.text} for c in criteria],
                     "test_macro_f1": run.metrics["test/macro_f1"]})
    (run.directory / "metrics.json").write_text(json.dumps(run.metrics, indent=2))
    console.print(metrics_table({k: _headline(v) for k, v in columns.items()}))
    console.print(f"threshold tuned on val: {threshold:.3f}; best epoch {best_epoch}; "
                  f"per-criterion: {run.directory}/test_per_criterion.csv")
    console.print(criterion_summary(splits["test"], probs_of["test"], threshold))


HEADLINE = ("accuracy", "macro_f1", "weighted_f1", "precision", "recall", "f1", "roc_auc",
            "pr_auc", "post_micro_f1", "post_macro_f1")


def _headline(metrics):
    return {k: metrics[k] for k in HEADLINE if k in metrics}


def peak_memory_mb(device) -> float:
    """Peak GPU memory allocated on CUDA, else the process's peak resident memory."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def telemetry_table(rows):
    from rich.table import Table

    table = Table(title="optimizations", title_justify="left")
    for column in ("name", "status", "reason"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.name, row.status, row.reason or "-")
    return table


def criterion_summary(split, probs, threshold) -> str:
    table = criterion_metrics(split, probs, threshold)
    return "test per criterion (tuned threshold): " + ", ".join(
        f"{cid} F1 {row['f1']:.2f}" for cid, row in table.items())
