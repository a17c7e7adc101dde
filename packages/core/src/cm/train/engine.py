"""``cm run``: prepare the data, build what trains, check one batch (the dry run), train
with early stopping on the validation ``train.selection_metric``, then evaluate the best
model on val and test.

The run itself (seed, directory, listeners, final status) is ``cm.train.lifecycle``; one
epoch is ``cm.train.loop``; assessment is ``cm.train.assess``. Everything lands in
``<output_dir>/<name>/<timestamp>/`` and reaches listeners through the lifecycle hooks."""

import copy
import json
import time

import attrs
import torch

from cm.cachedir import cache_root
from cm.data.loaders import encode_split, to_device
from cm.data.prepare import SPLITS
from cm.data.splits import class_balance
from cm.distributed import wrap
from cm.errors import UserError
from cm.model.backbone import load_backbone
from cm.model.checkpoint import save_checkpoint
from cm.model.scoring import Scorer
from cm.progress import Progress
from cm.train.assess import evaluate_best, validate
from cm.train.checks import dry_run
from cm.train.lifecycle import Run, tracked_run
from cm.train.loop import Loop, train_epoch
from cm.train.resume import discard, restore, save_state
from cm.train.trainer import Trainer, build_trainer


def run_experiment(experiment, *, registry=None, dry=False, console=None,
                   listeners=(), resume=None, parent=None, label=None) -> Run:
    """Train and evaluate ``experiment``; returns the finished Run (metrics, artifacts).
    ``listeners``: objects with lifecycle hooks (``cm.hookspecs``) that hear this run only.
    A dry run records nothing in the trackers: no tracking run is created for it.
    ``resume``: a ``cm.train.resume.Resume``, a stopped run continued in its folder;
    ``parent``, ``label``: the group run this one is a member of (``cm.train.group``)."""
    if experiment.data.all_folds:
        raise UserError(f"$.data.folds = {experiment.data.folds} trains one model per fold: "
                        "run it with `cm run` (a group), or train one fold with "
                        "--set data.fold=<1..K>")
    if dry:
        experiment = attrs.evolve(experiment, tracking={})

    def body(run, registry, console, hooks):
        train_and_evaluate(run, registry, console, hooks, dry, resume)

    return tracked_run(experiment, body, registry=registry, console=console,
                       listeners=listeners, directory=resume and resume.directory,
                       links=resume and resume.links, parent=parent, label=label)


@attrs.frozen
class Setup:
    """A run's data and what trains it, ready for the first epoch."""

    corpus: object  # cm.data.records.Corpus: posts and criteria
    tokenizer: object
    splits: dict  # split name -> cm.data.loaders.SplitData
    trainer: Trainer
    loader: object  # the train loader
    scheduler: object

    @property
    def criteria(self) -> list[str]:
        return [c.id for c in self.corpus.criteria]


def train_and_evaluate(run, registry, console, hooks, dry, resume=None):
    setup = set_up(run, registry)
    describe(run, setup, console)
    check(run, setup, console)
    if dry:
        return
    best = fit(run, setup, hooks, console, resume and resume.state)
    setup.trainer.model.load_state_dict(best.state)
    scorer = Scorer.of(run, setup.trainer.model, setup.trainer.loss, setup.tokenizer,
                       setup.trainer.context)
    evaluate_best(run, scorer, setup.splits, setup.corpus, best.epoch, hooks,
                  console)
    discard(run)


def set_up(run, registry) -> Setup:
    """The run's data encoded, the backbone and tokenizer loaded, the trainer built."""
    experiment, prepared = run.experiment, run.prepared
    backbone, tokenizer = load_backbone(experiment.model.backbone,
                                        texts=prepared.tokenizer_texts(),
                                        tiny=experiment.model.tiny, cache_root=cache_root(),
                                        seed=experiment.seed)
    splits = {s: encode_split(s, prepared.split(s), tokenizer, experiment.data,
                              cache_root() / "encoded") for s in SPLITS}
    trainer = build_trainer(experiment, registry, run.device, backbone,
                            class_balance(splits["train"].pairs)[2])
    run.telemetry = trainer.telemetry
    loader = trainer.loader(splits["train"], tokenizer.pad_token_id, run.world)
    train = experiment.train
    steps = -(-len(loader) // train.grad_accum_steps) * train.epochs
    return Setup(prepared.corpus, tokenizer, splits, trainer, loader,
                 trainer.scheduler(registry, steps))


def describe(run, setup, console):
    """One line on the data, the model and where outputs go; the optimizations' table."""
    n_pos, n_neg, pos_weight = class_balance(setup.splits["train"].pairs)
    trainer = setup.trainer
    total = sum(p.numel() for p in trainer.model.parameters())
    console.print(f"[bold]{run.experiment.name}[/bold]: {len(setup.corpus.posts)} posts, "
                  + ", ".join(f"{s} {len(setup.splits[s].pairs)} pairs" for s in SPLITS)
                  + f" ({n_pos} positive / {n_neg} negative in train, pos_weight "
                  f"{pos_weight:.2f}); {total:,} parameters ({trainer.trainable:,} trainable) "
                  f"on {run.device} -> {run.directory}")
    if run.telemetry:
        console.print(telemetry_table(run.telemetry))
    if run.world.joined:
        console.print(f"torchrun: {run.world.size} process(es), global batch "
                      f"{run.experiment.train.batch_size} split across them; "
                      f"{setup.loader.batch_sampler.dropped} examples per epoch left out "
                      "(final batches smaller than the world)")


def check(run, setup, console):
    """The dry run: one batch through the model and the loss (see cm.train.checks)."""
    first = {k: v for k, v in next(iter(setup.loader)).items() if k != "index"}
    trainer = setup.trainer
    checked = dry_run(trainer.model, trainer.loss, to_device(first, run.device),
                      setup.tokenizer, run.device)
    console.print(f"dry run ok: batch {checked['batch_shape']}, logits "
                  f"{checked['logits_shape']}, loss {checked['first_loss']:.4f}")


@attrs.define
class Best:
    """The best epoch so far on the validation selection metric, its weights, and the epochs
    since."""

    patience: int  # 0: never stop early
    score: float = float("-inf")
    epoch: int = 0
    state: dict | None = None
    waited: int = 0
    history: list = attrs.Factory(list)  # one dict of metrics per epoch

    def update(self, epoch, score, model) -> bool:
        """Record an epoch's score; True when it is the best so far."""
        if score > self.score:
            self.score, self.epoch, self.waited = score, epoch, 0
            self.state = copy.deepcopy(model.state_dict())
            return True
        self.waited += 1
        return False

    @property
    def exhausted(self) -> bool:
        return bool(self.patience) and self.waited >= self.patience


def fit(run, setup, hooks, console, state=None) -> Best:
    """Train epoch after epoch until ``train.epochs`` or early stopping; returns the best.
    ``context.model`` (compiled, LoRA ..., DDP under torchrun) trains; validation and
    checkpoints use the plain model, which shares its parameters (no ``_orig_mod.``).
    ``state``: a stopped run's saved state to continue from (``cm.train.resume``)."""
    trainer, train = setup.trainer, run.experiment.train
    loop = Loop(trainer, wrap(trainer.context.model, run.world, run.device), setup.scheduler)
    scorer = Scorer.of(run, trainer.model, trainer.loss, setup.tokenizer, trainer.context)
    best, seconds, trained = Best(train.early_stopping_patience), 0.0, 0
    first = restore(state, loop, best, len(setup.loader)) if state else 1
    if state:
        console.print(f"resumed at epoch {loop.epoch}: {loop.resumed.batches} of "
                      f"{len(setup.loader)} batches done, optimizer step {loop.step}")
    run.epoch = loop.epoch
    selection = f"val_tuned/{train.selection_metric}"  # at thresholds tuned on this val

    def on_step(step, metrics):
        hooks.step_ended(run=run, step=step, metrics=metrics)
        mid_epoch = loop.tally.batches < len(setup.loader)  # the epoch's end saves anyway
        if train.save_every_steps and step % train.save_every_steps == 0 and mid_epoch:
            save_state(run, loop, best)

    with Progress(console) as progress:
        for epoch in range(first, train.epochs + 1):
            run.epoch = loop.epoch = epoch
            setup.loader.batch_sampler.set_epoch(epoch)
            started = time.perf_counter()
            mean_loss = train_epoch(loop, setup.loader, progress, f"epoch {epoch}", on_step)
            seconds, trained = seconds + time.perf_counter() - started, trained + 1
            if loop.nonfinite_losses:
                run.record({"train/nonfinite_losses": loop.nonfinite_losses})
            val = validate(scorer, setup.splits["val"], setup.criteria, run.experiment.eval)
            end_epoch(run, epoch, mean_loss, val, best, hooks, progress.console)
            improved = best.update(epoch, val[selection], trainer.model)
            if improved:
                save_progress(run, setup, epoch)
            save_state(run, loop, best)
            if not improved and best.exhausted:
                progress.console.print(f"early stop: no {selection} gain for {best.waited} "
                                       f"epochs (best {best.score:.4f} at epoch {best.epoch})")
                break
    if trained:  # a resumed run may have had no epoch left
        run.record({"train/samples_per_s":
                    len(setup.splits["train"].encoded) * trained / seconds})
    run.record({"system/peak_memory_mb": peak_memory_mb(run.device),
                "model/trainable_parameters": trainer.trainable})  # LoRA: adapters + head
    return best


def end_epoch(run, epoch, mean_loss, val, best, hooks, console):
    metrics = {"train/epoch_loss": mean_loss, **val}
    best.history.append({"epoch": epoch, **metrics})
    if run.world.main:  # after every epoch: a run stopped later (SIGTERM, crash) keeps it
        (run.directory / "history.json").write_text(json.dumps(best.history, indent=2))
    hooks.epoch_ended(run=run, epoch=epoch, metrics=metrics)
    selection = f"val_tuned/{run.experiment.train.selection_metric}"
    console.print(f"epoch {epoch}: train loss {mean_loss:.4f}, {selection} "
                  f"{val[selection]:.4f}, val PR-AUC {val.get('val/pr_auc', 0):.4f}")


def save_progress(run, setup, epoch):
    """The best model so far, saved at once (a crash later still leaves a checkpoint)."""
    if run.world.main:
        trainer = setup.trainer
        save_checkpoint(run.directory / "checkpoint", trainer.model, setup.tokenizer,
                        run.experiment, {"num_logits": trainer.loss.num_logits,
                                         "epoch": epoch, "final": False})


def peak_memory_mb(device) -> float:
    """Peak GPU memory allocated on a CUDA device ("cuda", "cuda:1" under torchrun), else
    the process's peak resident memory."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def telemetry_table(rows):
    from rich.table import Table

    table = Table(title="optimizations", title_justify="left")
    for column in ("name", "status", "reason / details"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.name, row.status, row.reason or row.details or "-")
    return table
