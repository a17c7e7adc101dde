"""`cm run` under torchrun (2 gloo processes on CPU) against the single-process run."""

import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from cm.testing import TINY_RUN
from cm.train.distributed import RankSlices, World

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
# dropout off: with it, each rank draws its own masks and the runs differ by design
SMALL = [*TINY_RUN, "train.epochs=2", "model.tiny.dropout=0.0", "model.head.dropout=0.0"]


def cm_run(launcher, tmp_path, name):
    sets = [arg for key in [*SMALL, f"output_dir={tmp_path}", f"name={name}"]
            for arg in ("--set", key)]
    env = {**os.environ, "CM_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([*launcher, str(BIN / "cm"), "run", str(ROOT / "experiments/demo.toml"),
                           *sets], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = list((tmp_path / name).iterdir())
    assert len(runs) == 1  # rank 1 made no run directory of its own
    return runs[0], done.stdout


def test_two_gloo_processes_match_the_single_process_run(tmp_path):
    single, _ = cm_run([], tmp_path, "single")
    ddp, log = cm_run([str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2"],
                      tmp_path, "ddp")
    assert "torchrun: 2 processes" in log
    one = json.loads((single / "metrics.json").read_text())
    two = json.loads((ddp / "metrics.json").read_text())
    for key in ("test/macro_f1", "test/roc_auc", "val/macro_f1", "test_tuned/f1", "threshold"):
        assert abs(one[key] - two[key]) < 1e-4, (key, one[key], two[key])
    assert (ddp / "checkpoint").is_dir()


class Batches:
    def __init__(self, batches):
        self.batches = batches

    def set_epoch(self, epoch):
        pass

    def __iter__(self):
        return iter(self.batches)


@given(st.lists(st.lists(st.integers(), min_size=1, max_size=9), max_size=12),
       st.integers(1, 4))
def test_rank_slices_split_each_batch_without_overlap(batches, size):
    slices = [list(RankSlices(Batches(batches), World(rank, size))) for rank in range(size)]
    kept = [b for b in batches if len(b) >= size]
    assert all(len(s) == len(kept) for s in slices)  # every rank steps the same number of times
    for i, batch in enumerate(kept):
        assert sorted(x for s in slices for x in s[i]) == sorted(batch)
        assert all(s[i] for s in slices)
    assert RankSlices(Batches(batches), World(0, size)).dropped == sum(
        len(b) for b in batches if len(b) < size)
