"""`cm run` under torchrun (2 gloo processes on CPU) against the single-process run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cm.distributed import RankSlices, World
from cm.testing import TINY_RUN

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
# dropout off: with it, each rank draws its own masks and the runs differ by design
SMALL = [*TINY_RUN, "train.epochs=2", "model.tiny.dropout=0.0", "model.head.dropout=0.0"]


def cm_run(launcher, tmp_path, name):
    sets = [arg for key in [*SMALL, f"output_dir={tmp_path}", f"name={name}"]
            for arg in ("--set", key)]
    env = {**os.environ, "CM_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([*launcher, str(BIN / "cm"), "run",
                           str(ROOT / "experiments/demo-posts.toml"), *sets], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = list((tmp_path / name).iterdir())
    assert len(runs) == 1  # rank 1 made no run directory of its own
    return runs[0], done.stdout


def test_two_gloo_processes_match_the_single_process_run(tmp_path):
    single, _ = cm_run([], tmp_path, "single")
    ddp, log = cm_run([str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2"],
                      tmp_path, "ddp")
    assert "torchrun: 2 process(es)" in log
    one = json.loads((single / "metrics.json").read_text())
    two = json.loads((ddp / "metrics.json").read_text())
    for key in ("test/macro_f1", "test/roc_auc", "val/macro_f1", "test_tuned/f1",
                "test_tuned/post_macro_f1", "calibration/A.1/bias", "test_tuned/A.1/threshold"):
        assert abs(one[key] - two[key]) < 1e-4, (key, one[key], two[key])
    assert (ddp / "checkpoint").is_dir()
    # one process under torchrun joins the process group (the NCCL path on one GPU): the
    # same run as a plain one, through DDP, broadcast and all-reduce
    alone, log = cm_run([str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "1"],
                        tmp_path, "ddp1")
    assert "torchrun: 1 process(es)" in log
    joined = json.loads((alone / "metrics.json").read_text())
    for key in ("test/macro_f1", "test/roc_auc", "val/macro_f1", "val/pr_auc"):
        assert abs(one[key] - joined[key]) < 1e-4, (key, one[key], joined[key])


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


ACCUMULATING = '''
import json, os, sys
import torch
import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from rich.console import Console
from cm.bench.runner import subset
from cm.cachedir import cache_root
from cm.data.prepare import prepare
from cm.model.backbone import load_backbone
from cm.registry import get_registry
from cm.testing import make_tiny_experiment
from cm.data.loaders import encode_split
from cm.distributed import start, stop, wrap
from cm.progress import Progress
from cm.train.loop import Loop, train_epoch
from cm.train.trainer import build_trainer

out, accumulate = sys.argv[1], int(sys.argv[2])
world, device = start("cpu")
os.environ["CM_CACHE_DIR"] = f"{out}/cache-{world.rank}"  # no two ranks write one cache
experiment = make_tiny_experiment(out, f"train.grad_accum_steps={accumulate}",
                                  "train.batch_size=8", "model.tiny.dropout=0.0",
                                  "model.head.dropout=0.0")
registry = get_registry()
prepared = prepare(experiment, registry)
torch.manual_seed(0)
backbone, tokenizer = load_backbone(experiment.model.backbone, texts=prepared.tokenizer_texts(),
                                    tiny=experiment.model.tiny, cache_root=cache_root(), seed=0)
split = encode_split("train", prepared.split("train"), tokenizer, experiment.data,
                     cache_root() / "encoded")
trainer = build_trainer(experiment, registry, device, backbone, pos_weight=1.0)
model = wrap(trainer.context.model, world, device)
buckets = []

def counting(state, bucket):  # one call per gradient bucket of each all-reduce
    buckets.append(bucket.index())
    return default_hooks.allreduce_hook(state, bucket)

model.register_comm_hook(None, counting)
loader = trainer.loader(subset(split, range(64)), tokenizer.pad_token_id, world)
loop = Loop(trainer, model, trainer.scheduler(registry, 10))
train_epoch(loop, loader, Progress(Console(quiet=True)), "epoch 1")
weights = float(sum(p.double().sum() for p in trainer.model.parameters()))
with open(f"{out}/rank{world.rank}.json", "w") as handle:
    json.dump({"micro_steps": len(loader), "optimizer_steps": loop.step,
               "all_reduces": buckets.count(0), "weights": weights}, handle)
stop(world)
'''


def test_gradient_accumulation_all_reduces_once_per_optimizer_step(tmp_path):
    script = tmp_path / "accumulate.py"
    script.write_text(ACCUMULATING)
    done = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2",
                           str(script), str(tmp_path), "4"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for rank in ranks:
        # 64 examples, global batches of 8: 8 micro-steps per rank, an optimizer step every 4
        assert (rank["micro_steps"], rank["optimizer_steps"]) == (8, 2)
        assert rank["all_reduces"] == rank["optimizer_steps"]  # not one per micro-step
    # the accumulated gradients were still averaged across ranks: the weights agree
    assert abs(ranks[0]["weights"] - ranks[1]["weights"]) < 1e-9
