"""Progress without a terminal: a plain line at every tenth of a task and after every
30 s of silence, with step/total, loss, lr, samples/s and ETA (an injected clock)."""

import io
import re

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from cm.progress import Progress, clock_time


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def plain(clock):
    out = io.StringIO()
    return Progress(Console(file=out, width=40), clock=clock), out


def test_a_line_per_tenth_with_step_loss_lr_rate_and_eta():
    clock = Clock()
    progress, out = plain(clock)
    with progress:
        task = progress.add_task("epoch 2", total=200)
        for _ in range(200):
            clock.now += 0.5
            progress.advance(task, loss=0.25, lr=1e-3, samples_per_s=32.0)
    lines = out.getvalue().splitlines()
    assert [int(re.search(r"step (\d+)/200", x).group(1)) for x in lines] == list(
        range(20, 201, 20))
    assert lines[0] == ("epoch 2: step 20/200 (10%)  loss 0.2500  lr 1.00e-03  "
                        "32.0 samples/s  ETA 0:01:30")  # long lines are not wrapped
    assert lines[-1].endswith("(100%)  loss 0.2500  lr 1.00e-03  32.0 samples/s  ETA 0:00:00")


def test_a_line_after_30_seconds_without_one():
    clock = Clock()
    progress, out = plain(clock)
    task = progress.add_task("epoch 1", total=1000)
    for seconds in (10, 19.9, 0.1, 5, 25):  # 29.9 s: silent; 30 s: a line; then 30 s again
        clock.now += seconds
        progress.advance(task, loss=1.0)
    assert [x.split(" (")[0] for x in out.getvalue().splitlines()] == [
        "epoch 1: step 3/1000", "epoch 1: step 5/1000"]


def test_stats_are_optional_and_kept_until_replaced():
    clock = Clock()
    progress, out = plain(clock)
    task = progress.add_task("measure", total=2)
    clock.now += 1
    progress.advance(task)
    clock.now += 1
    progress.advance(task, loss=0.5)
    assert out.getvalue().splitlines() == ["measure: step 1/2 (50%)  ETA 0:00:01",
                                           "measure: step 2/2 (100%)  loss 0.5000  ETA 0:00:00"]


def test_a_terminal_gets_bars_not_lines():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with Progress(console) as progress:
        task = progress.add_task("epoch 1", total=3)
        for _ in range(3):
            progress.advance(task, loss=0.5)
    assert "step" not in out.getvalue() and "3/3" in out.getvalue()


@given(st.integers(1, 5000), st.floats(0.0, 100.0))
def test_a_line_for_every_tenth_whatever_the_total(total, seconds):
    clock = Clock()
    progress, out = plain(clock)
    task = progress.add_task("t", total=total)
    for _ in range(total):
        clock.now += seconds / total
        progress.advance(task)
    steps = [int(x.split()[2].split("/")[0]) for x in out.getvalue().splitlines()]
    for tenth in range(1, 11):
        first = -(-tenth * total // 10)  # the first step reaching this tenth
        assert first in steps
    assert steps[-1] == total and len(steps) <= 10 + int(seconds // 30)  # no more than that


def test_clock_time():
    assert clock_time(0) == "0:00:00" and clock_time(3725.4) == "1:02:05"
