"""``cm run`` under ``torchrun --nproc-per-node N``: PyTorch DDP, nothing home-made.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; without them (a plain ``cm run``) everything
here is a no-op. Under torchrun the process group is joined at any world size, one process
included, so ``torchrun --nproc-per-node 1`` on one GPU runs the NCCL code path (DDP,
broadcast, all-reduce) that N GPUs run. ``train.batch_size`` stays the *global* batch:
every rank takes its slice of each batch the single-process run would draw (random,
bucketed or packed), and DDP averages the gradients, so N processes follow the
single-process run (up to dropout masks and float summation order). Evaluation splits the
batches across ranks and sums the probabilities back, so metrics are computed on every
pair, identically on every rank. Rank 0 alone writes files and talks to trackers."""

import os

import attrs
import torch
import torch.distributed as dist

from cm.errors import UserError


@attrs.frozen
class World:
    rank: int = 0
    size: int = 1
    joined: bool = False  # in a torchrun process group (at any size, 1 included)

    @property
    def main(self) -> bool:
        return self.rank == 0


ALONE = World()  # a plain single-process run


def start(device: str) -> tuple[World, str]:
    """Join the torchrun process group (gloo on CPU, NCCL on CUDA); returns the world and
    this rank's device ("cuda:<local rank>" on GPUs)."""
    if "RANK" not in os.environ:  # not launched by torchrun
        return World(), device
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.device(device).type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), joined=True), device


def stop(world: World) -> None:
    if world.joined and dist.is_initialized():
        dist.destroy_process_group()


class RankSlices:
    """This rank's slice of every batch of ``sampler``. Batches smaller than the world (at
    most the last one) are left out on every rank, so all ranks take the same number of
    steps (DDP needs that); ``dropped`` counts the examples (or packed rows) left out."""

    def __init__(self, sampler, world: World):
        self.sampler, self.world = sampler, world

    def set_epoch(self, epoch):
        self.sampler.set_epoch(epoch)

    def _batches(self):
        return [batch for batch in self.sampler if len(batch) >= self.world.size]

    @property
    def dropped(self) -> int:
        return sum(len(b) for b in self.sampler if len(b) < self.world.size)

    def __iter__(self):
        for batch in self._batches():
            yield batch[self.world.rank::self.world.size]

    def __len__(self):
        return len(self._batches())


def wrap(model, world: World, device: str):
    """The model DDP trains (the plain model when alone); checkpoints save the plain one."""
    if not world.joined:
        return model
    ids = [torch.device(device).index] if torch.device(device).type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def broadcast(value, world: World):
    """Rank 0's ``value`` on every rank (e.g. the run directory it created)."""
    if not world.joined:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_across(values, world: World, device: str):
    """Element-wise sum over ranks of a float64 numpy array (each rank fills its own
    positions with its results and leaves the rest zero)."""
    if not world.joined:
        return values
    tensor = torch.as_tensor(values, dtype=torch.float64)
    tensor = tensor.to(device) if torch.device(device).type == "cuda" else tensor
    dist.all_reduce(tensor)
    return tensor.cpu().numpy()


def resolve_device(name: str, setting="train.device") -> str:
    """``name`` (the value of ``setting``: auto, cpu, cuda or mps) as a device this process
    can use: ``auto`` is CUDA when visible."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{setting} = 'cuda' but no CUDA GPU is visible; use 'auto' or 'cpu'")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"{setting} = 'mps' but MPS is not available; use 'auto' or 'cpu'")
    return name
