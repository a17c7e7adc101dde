"""Progress of loops over batches (training epochs, bench rows): rich bars on a terminal;
elsewhere (a file, a pipe, CI, torchrun's rank 0) plain lines, one at every tenth of a task
and at least every ``every_s`` seconds, with step/total, loss, lr, samples/s and ETA.

One implementation for ``cm run`` and ``cm bench``::

    with Progress(console) as progress:
        task = progress.add_task("epoch 1", total=len(loader))
        for batch in loader:
            ...
            progress.advance(task, loss=..., lr=..., samples_per_s=...)
        progress.console.print("epoch 1: ...")  # prints above the bars
"""

import time

import attrs
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bars

EVERY_S = 30.0  # plain mode: the longest silence between two lines of a running task
STEPS = 10  # plain mode: a line at every 1/STEPS of a task


@attrs.define
class Task:
    label: str
    total: int
    started: float
    unit: str = "step"  # what total counts (steps, posts)
    done: int = 0
    tenth: int = 0  # the last tenth of the task a line was printed for
    printed_at: float = 0.0
    stats: dict = attrs.Factory(dict)
    bar: object = None  # the rich task id on a terminal


class Progress:
    """Bars when ``console`` is a terminal, else plain lines; ``clock`` is injectable."""

    def __init__(self, console, every_s=EVERY_S, clock=time.monotonic, label_width=0):
        self.console = console
        self.plain = not console.is_terminal
        self.every_s, self.clock = every_s, clock
        self.bars = None if self.plain else Bars(
            TextColumn(f"{{task.description:<{label_width}}}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
            console=console)

    def __enter__(self):
        if self.bars is not None:
            self.bars.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bars is not None:
            self.bars.__exit__(*exc)

    def add_task(self, label, total, unit="step") -> Task:
        now = self.clock()
        task = Task(label, max(int(total), 1), started=now, unit=unit, printed_at=now)
        if self.bars is not None:
            task.bar = self.bars.add_task(label, total=task.total, info="")
        return task

    def advance(self, task: Task, by=1, **stats):
        """``by`` more units of ``task`` done; ``stats`` (loss, lr, samples_per_s,
        posts_per_s) are the latest values, kept until replaced."""
        task.done += by
        task.stats.update({k: v for k, v in stats.items() if v is not None})
        if self.bars is not None:
            self.bars.update(task.bar, advance=by, info=describe(task.stats))
            return
        now = self.clock()
        tenth = task.done * STEPS // task.total
        if tenth > task.tenth or now - task.printed_at >= self.every_s:
            task.tenth, task.printed_at = tenth, now
            self.console.print(line(task, now), soft_wrap=True, markup=False,
                               highlight=False)


def describe(stats: dict) -> str:
    parts = []
    if "loss" in stats:
        parts.append(f"loss {stats['loss']:.4f}")
    if "lr" in stats:
        parts.append(f"lr {stats['lr']:.2e}")
    if "samples_per_s" in stats:
        parts.append(f"{stats['samples_per_s']:.1f} samples/s")
    if "posts_per_s" in stats:
        parts.append(f"{stats['posts_per_s']:.1f} posts/s")
    return "  ".join(parts)


def line(task: Task, now: float) -> str:
    """``epoch 2: step 45/180 (25%)  loss 0.4123  lr 8.33e-04  13.1 samples/s  ETA 0:01:23``
    (``predict: posts 2048/100000 (2%)  21.3 posts/s  ETA 1:16:40`` for a task of posts)"""
    elapsed = now - task.started
    left = elapsed / task.done * (task.total - task.done)
    stats = describe(task.stats)
    return (f"{task.label}: {task.unit} {task.done}/{task.total} ({100 * task.done // task.total}%)"
            + (f"  {stats}" if stats else "") + f"  ETA {clock_time(left)}")


def clock_time(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
