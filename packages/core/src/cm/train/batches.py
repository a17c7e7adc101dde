"""Encoded splits and their loaders: random batches for training, length-sorted batches for
evaluation (order does not change results there, so sorting only saves padding)."""

from pathlib import Path

import attrs
import numpy as np
import torch
from torch.utils.data import DataLoader

from cm.data.batching import LengthBucketSampler, pad_batch
from cm.data.encode import Encoded, encode_cached
from cm.data.records import PairSample


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


def encode_split(name, pairs, tokenizer, data, cache_dir: Path) -> SplitData:
    texts = [(p.criterion_text, p.text) for p in pairs]
    encoded = encode_cached(texts, tokenizer, data.max_length, data.truncation, data.stride,
                            cache_dir=cache_dir)
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


def _collate(split: SplitData, pad_id):
    labels = split.labels

    def collate(indices):
        batch = pad_batch([split.encoded[i] for i in indices], [labels[i] for i in indices],
                          pad_id)
        batch["index"] = torch.tensor(indices)
        return batch

    return collate


def train_loader(split: SplitData, batch_size, seed, pad_id) -> DataLoader:
    sampler = RandomBatches(len(split.encoded), batch_size, seed)
    return DataLoader(range(len(split.encoded)), batch_sampler=sampler,
                      collate_fn=_collate(split, pad_id))


def eval_loader(split: SplitData, batch_size, pad_id) -> DataLoader:
    sampler = LengthBucketSampler(split.lengths, batch_size, seed=0, shuffle=False)
    return DataLoader(range(len(split.encoded)), batch_sampler=sampler,
                      collate_fn=_collate(split, pad_id))


def to_device(batch, device):
    return {k: v.to(device) for k, v in batch.items()}
