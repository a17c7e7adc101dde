"""Measure every configuration of a bench, and the plain Hugging Face reference at each
precision they use, on the same training examples.

Fairness: every row trains one pass over the same ``bench.table.examples`` examples of the train
split (a seeded draw, repeated when the split is smaller), tokenized once by cm's encoder;
only the grouping into batches differs (random, bucketed, packed). Rows see the same real
tokens, so samples/s and tokens/s compare directly. ``warmup`` untimed batches come first,
or with ``warmup_pass`` one untimed pass over the timed examples (every shape compiled).
With ``rounds`` > 1 the rows are measured in turn, round after round (each round starting
at a different row), and each row reports its median, so a machine whose load changes
during the bench slows every row alike.

The cm rows run cm's own training step (``cm.train.loop.train_epoch``) on a model,
optimizer and loader built as ``cm run`` builds them, with the configuration's
optimizations resolved and applied.
"""

import ctypes
import gc
import time
from functools import partial
from statistics import median

import attrs
import numpy as np
import torch

from cm import environment
from cm.bench import reference
from cm.bench.flops import peak_flops, train_flops
from cm.bench.lengths import profile, reshape
from cm.bench.memory import PeakMemory
from cm.cachedir import cache_root
from cm.data.loaders import SplitData, encode_split
from cm.data.prepare import prepare
from cm.data.splits import class_balance
from cm.distributed import resolve_device
from cm.model.backbone import experiment_tokenizer, load_backbone
from cm.model.scoring import Scorer
from cm.progress import Progress
from cm.train.lifecycle import seed_everything
from cm.train.loop import Loop, train_epoch
from cm.train.trainer import build_trainer

PRECISION = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
DTYPE = {name: dtype for dtype, name in PRECISION.items()}


@attrs.frozen
class Measured:
    """One row measured once: what was trained, how long the timed pass took."""

    name: str
    kind: str  # "cm" or "reference"
    precision: str
    examples: int
    real_tokens: int
    computed_tokens: int  # input_ids cells, padding included
    steps: int
    seconds: float
    cpu_seconds: float  # this process's CPU time over the timed pass, all threads
    warmup_seconds: float  # the untimed warm-up before it (compilation lands here)
    flops: int  # useful train FLOPs of the timed pass (cm.bench.flops)
    peak_memory_mib: float | None
    telemetry: tuple = ()
    eval_seconds: float | None = None  # scoring the timed examples as validation does


class Counted:
    """A loader that counts, per batch, the real tokens, the computed cells and each
    example's length (padded batches: attention mask; packed rows: the token mask)."""

    def __init__(self, loader):
        self.loader = loader
        self.real = self.cells = 0
        self.lengths = []  # one list of example lengths per batch

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            packed = "token_mask" in batch
            mask = batch["token_mask"] if packed else batch["attention_mask"]
            self.real += int(mask.sum())
            self.cells += batch["input_ids"].numel()
            lengths = batch["segment_lengths"] if packed else mask.sum(1)
            self.lengths.append(lengths.tolist())
            yield batch

    def flops(self, config) -> int:
        return sum(train_flops(config, lengths) for lengths in self.lengths)


def draw(n_available: int, count: int, seed: int) -> np.ndarray:
    """``count`` train indices: a seeded permutation, repeated when the split is smaller."""
    rng = np.random.default_rng(seed)
    rounds = -(-count // n_available)
    return np.concatenate([rng.permutation(n_available) for _ in range(rounds)])[:count]


def subset(split: SplitData, indices) -> SplitData:
    return SplitData(split.name, split.pairs, [split.encoded[int(i)] for i in indices])


class Runner:
    def __init__(self, bench, registry, device: str, console):
        self.bench, self.registry, self.device, self.console = bench, registry, device, console
        self._prepared = {}

    def prepared(self, experiment):
        key = (repr(experiment.data), experiment.seed)
        if key not in self._prepared:
            self._prepared[key] = prepare(experiment, self.registry)
        return self._prepared[key]

    def data(self, experiment):
        """The encoded train split and its (timed, warmup) subsets, the same for every row
        of the same data settings. Loaded before memory is measured: data is not training."""
        prepared = self.prepared(experiment)
        tokenizer = experiment_tokenizer(experiment, prepared)
        split = encode_split("train", prepared.split("train"), tokenizer, experiment.data,
                             cache_root() / "encoded")
        table = self.bench.table
        warm = table.warmup * experiment.train.batch_size
        order = draw(len(split.encoded), max(table.examples, warm), experiment.seed)
        if table.lengths:  # the same draw of lengths for every row
            lengths = profile(table.lengths, experiment.data.level).draw(len(order),
                                                                         experiment.seed)
            split = SplitData(split.name, split.pairs, reshape(
                [split.encoded[int(i)] for i in order], lengths, experiment.data.max_length))
            order = np.arange(len(order))
        timed = subset(split, order[:table.examples])
        return split, timed, timed if table.warmup_pass else subset(split, order[:warm])

    def pad_vocab(self, model):
        vocab_size = self.bench.table.vocab_size
        if vocab_size and vocab_size > model.config.vocab_size:
            model.resize_token_embeddings(vocab_size, mean_resizing=False)

    def measure_cm(self, config, progress) -> Measured:
        experiment, device = config.experiment, self.device
        seed_everything(experiment.seed)
        split, timed, warm = self.data(experiment)
        with PeakMemory(device) as peak:
            backbone, tokenizer = load_backbone(
                experiment.model.backbone, texts=self.prepared(experiment).tokenizer_texts(),
                tiny=experiment.model.tiny, cache_root=cache_root(), seed=experiment.seed)
            self.pad_vocab(backbone)
            trainer = build_trainer(experiment, self.registry, device, backbone,
                                    class_balance(split.pairs)[2])
            loaders = [trainer.loader(part, tokenizer.pad_token_id) for part in (warm, timed)]
            scheduler = trainer.scheduler(self.registry, sum(len(loader) for loader in loaders))
            loop = Loop(trainer, trainer.context.model, scheduler)
            counted = Counted(loaders[1])
            seconds, cpu, warmup = self._timed(
                lambda: len(warm.encoded) and train_epoch(loop, loaders[0], progress,
                                                          f"{config.name} warmup"),
                lambda: train_epoch(loop, counted, progress, config.name))
            scorer = Scorer(trainer.model, trainer.loss, tokenizer,
                            experiment.train.eval_batch_size, device,
                            pad_to_multiple=trainer.context.pad_to_multiple,
                            autocast_dtype=trainer.context.autocast_dtype
                            if device == "cuda" else None)
            pairs = own_pairs(timed)
            evaluated = self._timed(lambda: scorer.probabilities(pairs),
                                    lambda: scorer.probabilities(pairs))[0]
        return Measured(config.name, "cm", PRECISION[trainer.context.autocast_dtype],
                        len(timed.encoded), counted.real, counted.cells, len(counted),
                        seconds, cpu, warmup, counted.flops(backbone.config), peak.mib,
                        tuple(attrs.astuple(row) for row in trainer.telemetry), evaluated)

    def measure_reference(self, precision: str, progress) -> Measured:
        experiment, device = self.bench.experiment, self.device
        train = experiment.train
        name = "reference" if precision == "fp32" else f"reference-{precision}"
        seed_everything(experiment.seed)
        _, timed, warm = self.data(experiment)
        tokenizer = experiment_tokenizer(experiment, self.prepared(experiment))
        with PeakMemory(device) as peak:
            model = reference.reference_model(experiment, tokenizer, experiment.seed)
            self.pad_vocab(model)
            model.to(device)
            loaders = [reference.reference_loader(_features(part), tokenizer,
                                                  train.batch_size, experiment.seed)
                       if part.encoded else [] for part in (warm, timed)]
            optimizer, scheduler = reference.reference_optimizer(
                model, train.lr, train.weight_decay, sum(len(loader) for loader in loaders))
            counted = Counted(loaders[1])

            def epoch(loader, label):
                task = progress.add_task(label, total=len(loader))
                reference.train_reference(model, loader, optimizer, scheduler,
                                          DTYPE[precision], device,
                                          on_step=lambda: progress.advance(task))

            seconds, cpu, warmup = self._timed(lambda: epoch(loaders[0], f"{name} warmup"),
                                               lambda: epoch(counted, name))
        return Measured(name, "reference", precision, len(timed.encoded), counted.real,
                        counted.cells, len(counted), seconds, cpu, warmup,
                        counted.flops(model.config), peak.mib)

    def _timed(self, warmup, timed) -> tuple[float, float, float]:
        """(wall seconds, process CPU seconds) of ``timed``, and the wall seconds of
        ``warmup`` that ran before it."""
        started = time.perf_counter()
        warmup()
        self._sync()
        warmed, cpu = time.perf_counter(), time.process_time()
        timed()
        self._sync()
        return time.perf_counter() - warmed, time.process_time() - cpu, warmed - started

    def _sync(self):
        if self.device == "cuda":
            torch.cuda.synchronize()


def own_pairs(split: SplitData) -> SplitData:
    """Each example as a pair of its own (one window), as evaluation scores a split."""
    return SplitData(split.name, [split.pairs[e.pair_index] for e in split.encoded],
                     [attrs.evolve(e, pair_index=i, window=0)
                      for i, e in enumerate(split.encoded)])


def _features(split: SplitData) -> list[dict]:
    labels = split.labels
    return [{"input_ids": list(e.input_ids), "token_type_ids": list(e.token_type_ids),
             "labels": int(label)} for e, label in zip(split.encoded, labels, strict=True)]


def run_bench(bench, registry, console, on_row=None) -> dict:
    """Measure every row ``bench.table.rounds`` times; returns the device and one summary per
    row (references first), each with its ratio to the reference at its precision (measured
    right after the first row of that precision). ``on_row(result so far)`` after each
    measured row, so an interrupted bench keeps what it measured."""
    device = resolve_device(bench.experiment.train.device)
    if bench.table.threads:
        torch.set_num_threads(bench.table.threads)
    runner = Runner(bench, registry, device, console)
    device_name = environment.device_name(device)
    measured, precisions = {}, {}

    epoch = epoch_pairs(bench)

    def record(row, progress, round_):
        _record(measured, row, progress, round_, bench)
        if on_row:
            on_row(summary(measured, device, device_name, epoch))
        if row.precision not in precisions:  # round 1: its reference next, so ratios exist
            precisions[row.precision] = True
            record(runner.measure_reference(row.precision, progress), progress, round_)

    with Progress(console, label_width=28) as progress:
        for round_ in range(1, bench.table.rounds + 1):
            jobs = [partial(runner.measure_cm, config) for config in bench.configs]
            jobs += [partial(runner.measure_reference, p) for p in precisions]
            # each round starts further down the list, so no row always runs last
            shift = (round_ - 1) * len(jobs) // bench.table.rounds
            for job in jobs[shift:] + jobs[:shift]:
                record(job(progress), progress, round_)
    return summary(measured, device, device_name, epoch)


def epoch_pairs(bench):
    """The length profile of the bench's level (its real epoch's train and val + test
    pairs), or None without one."""
    table, data = bench.table, bench.experiment.data
    return profile(table.lengths, data.level) if table.lengths else None


def summary(measured: dict, device: str, device_name: str, epoch=None) -> dict:
    """The device and one summarized row per measured name, references first, each with
    its ratios to the reference at its precision (None while that one is unmeasured) and,
    given ``epoch`` (a length profile), the seconds a real epoch's training and its val +
    test scoring would take at the row's rates."""
    rows = [summarize(runs, device, device_name) for runs in measured.values()]
    for row in rows:
        row["epoch_seconds"] = epoch.pairs_per_epoch / row["samples_per_s"] if epoch else None
        row["eval_seconds"] = (epoch.eval_pairs / row["eval_pairs_per_s"]
                               if epoch and row["eval_pairs_per_s"] else None)
    rows.sort(key=lambda row: row["kind"] != "reference")
    references = {row["precision"]: row for row in rows if row["kind"] == "reference"}
    for row in rows:
        reference = references.get(row["precision"])
        row["ratio_vs_reference"] = (row["samples_per_s"] / reference["samples_per_s"]
                                     if reference else None)
        row["ratio_vs_reference_cpu_time"] = (
            row["samples_per_cpu_s"] / reference["samples_per_cpu_s"]
            if reference and row["samples_per_cpu_s"] else None)
    return {"device": {"type": device, "name": device_name,
                       "torch_threads": torch.get_num_threads()}, "rows": rows}


def _record(measured, row: Measured, progress, round_, bench):
    measured.setdefault(row.name, []).append(row)
    progress.console.print(f"round {round_}/{bench.table.rounds} {row.name}: "
                           f"{row.examples / row.seconds:.1f} samples/s")
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    release_freed_memory()


def release_freed_memory():
    """Hand freed heap pages back to the OS (glibc), so the next row's RSS growth is its own."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def summarize(runs: list[Measured], device: str, device_name: str) -> dict:
    """The median round of a row; MFU on a GPU whose peak is known, else None."""
    first = runs[0]
    seconds = median(run.seconds for run in runs)
    peak = peak_flops(device_name, first.precision) if device == "cuda" else None
    memory = [run.peak_memory_mib for run in runs if run.peak_memory_mib is not None]
    return {
        "name": first.name, "kind": first.kind, "precision": first.precision,
        "examples": first.examples, "steps": first.steps,
        "real_tokens": first.real_tokens, "computed_tokens": first.computed_tokens,
        "padding_waste": first.computed_tokens / first.real_tokens - 1,
        "seconds": seconds,
        "warmup_seconds": median(run.warmup_seconds for run in runs),
        "samples_per_s": first.examples / seconds,
        "tokens_per_s": first.real_tokens / seconds,
        # on a CPU shared with other work, CPU time counts only the time this process ran
        "samples_per_cpu_s": first.examples / median(run.cpu_seconds for run in runs)
        if device == "cpu" else None,
        "samples_per_s_rounds": [run.examples / run.seconds for run in runs],
        # (slowest - fastest) / median round: how far one round can be trusted
        "spread": (max(run.seconds for run in runs) - min(run.seconds for run in runs))
        / seconds,
        # CPU time / wall time of each round: below the thread count when the process had
        # to wait for cores (a busy machine), which is when wall-clock rates are noisy
        "cpu_utilization_rounds": [run.cpu_seconds / run.seconds for run in runs],
        "peak_memory_mib": max(memory) if memory else None,
        # validation's scoring of the same examples (one untimed pass first), cm rows only
        "eval_pairs_per_s": first.examples / median(run.eval_seconds for run in runs)
        if first.eval_seconds else None,
        "train_flops": first.flops,
        "mfu": first.flops / seconds / peak if peak else None,
        "telemetry": [list(row) for row in first.telemetry],
    }

