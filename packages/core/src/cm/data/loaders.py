"""Encoded splits and their loaders: random batches for training, length-sorted batches for
evaluation (order does not change results there, so sorting only saves padding)."""

from pathlib import Path

import attrs
import numpy as np
import torch
from torch.utils.data import DataLoader

from cm.data.batching import LengthBucketSampler, PackedBatches, packed_batch, pad_batch
from cm.data.encode import Encoded, encode_cached, encode_pairs
from cm.data.records import PairSample
from cm.distributed import RankSlices


@attrs.frozen
class SplitData:
    """One split's pairs and their encodings (several per pair with ``windows``)."""

    name: str
    pairs: list[PairSample]
    encoded: list[Encoded]

    @property
    def labels(self) -> list[int]:
        return [self.pairs[e.pair_index].label for e in self.encoded]

    @property
    def lengths(self) -> list[int]:
        return [len(e.input_ids) for e in self.encoded]


def encode_split(name, pairs, tokenizer, data, cache_dir: Path | None = None) -> SplitData:
    """``pairs`` encoded as ``data`` says, memoised in ``cache_dir`` when given (inputs
    scored once, as ``cm predict``'s, are not worth a cache file)."""
    texts = [(p.criterion_text, p.text) for p in pairs]
    if cache_dir is None:
        encoded = encode_pairs(texts, tokenizer, data.max_length, data.truncation, data.stride)
    else:
        encoded = encode_cached(texts, tokenizer, data.max_length, data.truncation,
                                data.stride, cache_dir=cache_dir)
    return SplitData(name, list(pairs), encoded)


class RandomBatches:
    """Seeded random batches, reshuffled per epoch (``set_epoch``), every index once."""

    def __init__(self, n, batch_size, seed):
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        order = np.random.default_rng(self.seed + self.epoch).permutation(self.n)
        for start in range(0, self.n, self.batch_size):
            yield order[start:start + self.batch_size].tolist()

    def __len__(self):
        return -(-self.n // self.batch_size)


class _Keys:
    """A dataset that hands each sampled key (an index, or a packed row) to the collate."""

    def __init__(self, n):
        self.n = n

    def __getitem__(self, key):
        return key

    def __len__(self):
        return self.n


def _collate(split: SplitData, pad_id, pad_to_multiple=None):
    labels = split.labels

    def collate(indices):
        batch = pad_batch([split.encoded[i] for i in indices], [labels[i] for i in indices],
                          pad_id)
        if pad_to_multiple:
            batch = pad_length(batch, pad_to_multiple, pad_id)
        batch["index"] = torch.tensor(indices)
        return batch

    return collate


def _collate_packed(split: SplitData, pad_id):
    labels = split.labels

    def collate(rows):
        batch = packed_batch(split.encoded, labels, rows, pad_id)
        batch["index"] = batch.pop("segment_index")
        return batch

    return collate


def pad_length(batch, multiple, pad_id):
    """Pad a ``pad_batch`` on the right up to the next multiple of ``multiple`` tokens, so a
    compiled model sees a few static lengths (one per bucket) instead of every length."""
    width = batch["input_ids"].size(1)
    extra = -width % multiple
    if not extra:
        return batch
    fill = {"input_ids": pad_id}
    return {k: torch.nn.functional.pad(v, (0, extra), value=fill.get(k, 0)) if v.dim() == 2
            else v for k, v in batch.items()}


def train_loader(split: SplitData, batch_size, seed, pad_id, batching="random",
                 token_budget=None, world=None, pad_to_multiple=None, **loader) -> DataLoader:
    """Random batches (default), length-bucketed batches, or packed rows; under torchrun
    (``world`` joined) this rank's slice of each of them. ``pad_to_multiple`` pads
    padded batches' length up to a multiple (static shapes for compile / CUDA graphs)."""
    n = len(split.encoded)
    collate = _collate(split, pad_id, pad_to_multiple)
    if batching == "random":
        sampler = RandomBatches(n, batch_size, seed)
    elif batching == "bucketing":
        sampler = LengthBucketSampler(split.lengths, batch_size, seed=seed, shuffle=True)
    else:
        sampler = PackedBatches(split.lengths, token_budget, batch_size, seed)
        collate = _collate_packed(split, pad_id)
    if world is not None and world.joined:
        sampler = RankSlices(sampler, world)
    # its own generator: worker seeds must not draw from the global RNG (dropout's)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(_Keys(n), batch_sampler=sampler, collate_fn=collate, generator=generator,
                      **loader)


def eval_loader(split: SplitData, batch_size, pad_id, pad_to_multiple=None) -> DataLoader:
    """Length-sorted batches in a fixed order; lengths padded up to ``pad_to_multiple``."""
    sampler = LengthBucketSampler(split.lengths, batch_size, seed=0, shuffle=False)
    return DataLoader(range(len(split.encoded)), batch_sampler=sampler,
                      collate_fn=_collate(split, pad_id, pad_to_multiple))


def to_device(batch, device):
    return {k: v.to(device) for k, v in batch.items()}
