"""Turn encoded examples into model batches with as little padding as possible.

Three ways to batch, cheapest last:

* ``pad_batch``: dynamic padding to the longest example of a batch (the ordinary path);
* ``LengthBucketSampler``: batches of similar length, so dynamic padding wastes little;
* ``pack_examples`` + ``packed_batch``: several examples share one row, separated by a
  block-diagonal attention mask (``model/packed.py`` runs DeBERTa on it exactly).

``padding_waste`` compares the strategies on a list of lengths without building tensors, for
``cm data stats`` and benchmarks. Torch is imported only by the functions that build tensors, so
the statistics work (and fail fast on bad data) before torch is loaded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from cm.errors import UserError

if TYPE_CHECKING:
    import torch

STRATEGIES = ("pad_to_max", "dynamic", "bucketing", "packing")

# Batches per sorted chunk when shuffling: big enough that neighbours in a chunk have similar
# lengths, small enough that batch contents still change from epoch to epoch.
DEFAULT_MEGA_BATCH = 50


class EncodedLike(Protocol):
    """What the batchers read from an example (``cm.data.encode.Encoded`` fits)."""

    input_ids: Sequence[int]
    token_type_ids: Sequence[int]


def _checked_ids(example: EncodedLike, index: int) -> tuple[Sequence[int], Sequence[int]]:
    ids, types = example.input_ids, example.token_type_ids
    if len(ids) != len(types):
        raise ValueError(f"example {index}: {len(ids)} input_ids but {len(types)} token_type_ids")
    if len(ids) == 0:
        raise ValueError(f"example {index} has no tokens")
    return ids, types


def _labels_tensor(labels: Sequence[Any], order: Sequence[int]) -> torch.Tensor:
    """Labels as float32: what BCE-with-logits on P(match) takes (``.long()`` for CE)."""
    import torch

    return torch.tensor([float(labels[i]) for i in order], dtype=torch.float32)


def pad_batch(
    examples: Sequence[EncodedLike], labels: Sequence[Any] | None, pad_id: int
) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest example (not to max_length) and stack it.

    Returns ``input_ids``, ``token_type_ids`` (padded with 0) and ``attention_mask`` (1 on real
    tokens), all ``[B, T]`` int64, plus float32 ``labels [B]`` unless ``labels`` is None.
    """
    import torch

    if len(examples) == 0:
        raise ValueError("pad_batch needs at least one example")
    pairs = [_checked_ids(example, i) for i, example in enumerate(examples)]
    width = max(len(ids) for ids, _ in pairs)
    input_ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    token_type_ids = torch.zeros((len(pairs), width), dtype=torch.long)
    attention_mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, (ids, types) in enumerate(pairs):
        input_ids[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        token_type_ids[row, : len(ids)] = torch.as_tensor(types, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    batch = {
        "input_ids": input_ids,
        "token_type_ids": token_type_ids,
        "attention_mask": attention_mask,
    }
    if labels is not None:
        if len(labels) != len(examples):
            raise ValueError(f"{len(examples)} examples but {len(labels)} labels")
        batch["labels"] = _labels_tensor(labels, range(len(examples)))
    return batch


class LengthBucketSampler:
    """Batch sampler yielding lists of indices whose examples have similar lengths.

    Training (``shuffle=True``): each epoch the indices are permuted, cut into chunks of
    ``mega_batch * batch_size``, each chunk is sorted by length and cut into batches, and the
    order of all batches is shuffled. Sorting only within chunks keeps batch contents random
    between epochs; shuffling batch order keeps long and short batches interleaved.
    Evaluation (``shuffle=False``): one global sort by length, fixed order.

    Every index appears exactly once per epoch (with ``drop_last`` the one short batch is
    dropped). The randomness is ``numpy.random.default_rng(seed + epoch)``: call
    ``set_epoch(epoch)`` before each epoch, as with ``DistributedSampler``. Pass it to
    ``DataLoader(batch_sampler=...)``.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        drop_last: bool = False,
        mega_batch: int = DEFAULT_MEGA_BATCH,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if mega_batch < 1:
            raise ValueError(f"mega_batch must be >= 1, got {mega_batch}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.mega_batch = mega_batch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose batches the next iteration yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def batches(self) -> list[list[int]]:
        """All batches of the current epoch, in the order they are yielded."""
        n = len(self.lengths)
        if not self.shuffle:
            order = _sort_by_length(np.arange(n), self.lengths)
            return self._cut(order)
        rng = np.random.default_rng(self.seed + self.epoch)
        permuted = rng.permutation(n)
        chunk = self.mega_batch * self.batch_size
        batches: list[list[int]] = []
        for start in range(0, n, chunk):
            batches.extend(
                self._cut(_sort_by_length(permuted[start : start + chunk], self.lengths))
            )
        return [batches[i] for i in rng.permutation(len(batches))]

    def _cut(self, order: np.ndarray) -> list[list[int]]:
        # Chunks are whole multiples of batch_size, so only the very last cut can be short.
        batches = [
            order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)
        ]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())


def _sort_by_length(indices: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Indices longest first; ties keep their given order so the result is deterministic."""
    return indices[np.argsort(-lengths[indices], kind="stable")]


def pack_examples(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """First-fit-decreasing packing of example indices into rows of at most token_budget tokens.

    Examples are placed longest first (ties by index) into the first row with room, so the
    result depends only on the lengths. An example longer than the budget is an error rather
    than a row of its own: rows over budget would break the memory plan the budget exists for,
    and truncation belongs in encoding (use ``token_budget >= max_length``).

    Rows are returned in the order they were opened; within a row, in placement order.
    Runs in O(n log n) using a max-tree over the rows' free space.
    """
    sizes = np.asarray(lengths, dtype=np.int64)
    if token_budget < 1:
        raise UserError(f"token_budget must be >= 1, got {token_budget}")
    if len(sizes) == 0:
        return []
    if sizes.min() < 1:
        raise ValueError(f"example {int(sizes.argmin())} has length {int(sizes.min())}; need >= 1")
    if sizes.max() > token_budget:
        worst = int(sizes.argmax())
        raise UserError(
            f"example {worst} has {int(sizes[worst])} tokens, more than token_budget "
            f"{token_budget}; raise token_budget to at least max_length"
        )
    free = _FreeSpaceTree(len(sizes), token_budget)
    rows: list[list[int]] = []
    for index in _sort_by_length(np.arange(len(sizes)), sizes).tolist():
        row = free.first_fit(int(sizes[index]))
        if row == len(rows):
            rows.append([])
        rows[row].append(index)
    return rows


class _FreeSpaceTree:
    """Max segment tree over per-row free space; rows not yet opened hold the full budget.

    Rows open left to right, so the leftmost leaf with enough room is either an open row or
    the next new one: that is exactly first fit.
    """

    def __init__(self, capacity: int, budget: int) -> None:
        self.size = 1
        while self.size < capacity:
            self.size *= 2
        self.tree = [budget] * (2 * self.size)

    def first_fit(self, need: int) -> int:
        node = 1
        while node < self.size:
            node = 2 * node if self.tree[2 * node] >= need else 2 * node + 1
        row = node - self.size
        self.tree[node] -= need
        node //= 2
        while node:
            self.tree[node] = max(self.tree[2 * node], self.tree[2 * node + 1])
            node //= 2
        return row


class PackedBatches:
    """Packed training batches. Each epoch the examples are shuffled and cut into chunks;
    in a chunk, examples longer than ``token_budget`` get a row alone and the others are
    packed first-fit-decreasing into rows of at most ``token_budget`` tokens. The rows are
    sorted by length and cut into batches of about ``examples_per_batch`` examples (so a
    batch's rows have similar widths and pad little), and the batch order is shuffled.
    Yields lists of rows.

    A packed row's attention spans the whole row (T x T cells, most masked), so a budget
    near the typical example length keeps rows short; a budget of max_length makes every
    row ~max_length wide (see docs/research.md, "Packing")."""

    CHUNK_BATCHES = 50

    def __init__(self, lengths, token_budget, examples_per_batch, seed):
        self.lengths, self.budget = np.asarray(lengths, dtype=np.int64), token_budget
        self.per_batch, self.seed = examples_per_batch, seed
        self.set_epoch(0)

    def set_epoch(self, epoch):
        rng = np.random.default_rng(self.seed + epoch)
        order = rng.permutation(len(self.lengths))
        size = self.per_batch * self.CHUNK_BATCHES
        batches = []
        for start in range(0, len(order), size):
            batches += self._batches(self._rows(order[start:start + size]))
        self.epoch_batches = [batches[i] for i in rng.permutation(len(batches))]

    def _rows(self, chunk):
        alone = chunk[self.lengths[chunk] > self.budget]
        packed = chunk[self.lengths[chunk] <= self.budget]
        rows = [[int(i)] for i in alone]
        rows += [[int(packed[i]) for i in row]
                 for row in pack_examples(self.lengths[packed].tolist(), self.budget)]
        return sorted(rows, key=lambda row: -int(self.lengths[row].sum()))

    def _batches(self, rows):
        batches, batch, count = [], [], 0
        for row in rows:
            batch.append(row)
            count += len(row)
            if count >= self.per_batch:
                batches.append(batch)
                batch, count = [], 0
        return batches + ([batch] if batch else [])

    def __iter__(self):
        return iter(self.epoch_batches)

    def __len__(self):
        return len(self.epoch_batches)


def packed_batch(
    examples: Sequence[EncodedLike],
    labels: Sequence[Any] | None,
    rows: Sequence[Sequence[int]],
    pad_id: int,
) -> dict[str, torch.Tensor]:
    """Lay the examples named in ``rows`` side by side, one row per list of indices.

    ``rows`` holds indices into ``examples`` (and ``labels``), e.g. from ``pack_examples``.
    Segments are numbered 0..S-1 row by row, left to right. Returns:

    * ``input_ids``, ``token_type_ids`` ``[R, T]`` (T = longest row; padded with pad_id / 0);
    * ``attention_mask`` ``[R, T, T]`` bool, True only where query and key are real tokens
      of the same segment (block diagonal; padding rows and columns are all False);
    * ``token_mask`` ``[R, T]`` int64, 1 on real tokens (for the embeddings);
    * ``position_ids`` ``[R, T]``, each token's position within its own segment (0 on padding),
      needed only by models with absolute position embeddings;
    * ``segment_ids`` ``[R, T]``, the segment of each token, -1 on padding;
    * ``cls_positions`` ``[S, 2]`` (row, column) of each segment's first token;
    * ``segment_lengths`` ``[S]``, ``segment_index`` ``[S]`` (the example index per segment);
    * ``labels`` ``[S]`` float32 in segment order, unless ``labels`` is None.
    """
    import torch

    rows = [list(row) for row in rows]
    if not rows or any(not row for row in rows):
        raise ValueError("packed_batch needs at least one row and no empty rows")
    order = [index for row in rows for index in row]
    pairs = {index: _checked_ids(examples[index], index) for index in order}
    row_lengths = [sum(len(pairs[index][0]) for index in row) for row in rows]
    width = max(row_lengths)
    shape = (len(rows), width)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    token_type_ids = torch.zeros(shape, dtype=torch.long)
    position_ids = torch.zeros(shape, dtype=torch.long)
    segment_ids = torch.full(shape, -1, dtype=torch.long)
    cls_positions, segment_lengths = [], []
    segment = 0
    for r, row in enumerate(rows):
        column = 0
        for index in row:
            ids, types = pairs[index]
            end = column + len(ids)
            input_ids[r, column:end] = torch.as_tensor(ids, dtype=torch.long)
            token_type_ids[r, column:end] = torch.as_tensor(types, dtype=torch.long)
            position_ids[r, column:end] = torch.arange(len(ids))
            segment_ids[r, column:end] = segment
            cls_positions.append((r, column))
            segment_lengths.append(len(ids))
            segment += 1
            column = end
    real = segment_ids >= 0
    same = segment_ids[:, :, None] == segment_ids[:, None, :]
    batch = {
        "input_ids": input_ids,
        "token_type_ids": token_type_ids,
        "attention_mask": same & real[:, :, None],
        "token_mask": real.long(),
        "position_ids": position_ids,
        "segment_ids": segment_ids,
        "cls_positions": torch.tensor(cls_positions, dtype=torch.long),
        "segment_lengths": torch.tensor(segment_lengths, dtype=torch.long),
        "segment_index": torch.tensor(order, dtype=torch.long),
    }
    if labels is not None:
        batch["labels"] = _labels_tensor(labels, order)
    return batch


def padding_waste(
    lengths: Sequence[int],
    strategy: str,
    batch_size: int = 16,
    max_length: int = 512,
    token_budget: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """How many tokens a strategy computes per real token, without building any tensor.

    Lengths are first truncated to max_length, as encoding does. Strategies:

    * ``pad_to_max``: every example padded to max_length;
    * ``dynamic``: random batches of batch_size (seeded), each padded to its longest;
    * ``bucketing``: ``LengthBucketSampler`` batches (epoch 0), each padded to its longest;
    * ``packing``: ``PackedBatches`` (epoch 0) with token_budget (default max_length / 2, as
      the packing optimization), each row padded to the widest row of its batch.

    Returns ``rows`` (sequences the model runs), ``real_tokens``, ``padded_tokens`` (tensor
    cells, real included), ``pad_tokens`` (their difference), ``ratio`` (padded / real, 1.0
    is no waste) and ``attention_cells`` (sum of T*T per row: the attention work, where
    packing pays for long rows even though the mask zeroes the cross-segment part).
    """
    if strategy not in STRATEGIES:
        raise UserError(f"unknown batching strategy {strategy!r}; use one of {list(STRATEGIES)}")
    if batch_size < 1 or max_length < 1:
        raise UserError("batch_size and max_length must be >= 1")
    sizes = np.minimum(np.asarray(lengths, dtype=np.int64), max_length)
    if len(sizes) == 0:
        raise UserError("padding_waste needs at least one length")
    if strategy == "pad_to_max":
        widths = np.full(len(sizes), max_length)
    elif strategy == "dynamic":
        order = np.random.default_rng(seed).permutation(len(sizes))
        widths = _batch_widths(sizes, _chunks(order.tolist(), batch_size))
    elif strategy == "bucketing":
        sampler = LengthBucketSampler(sizes, batch_size, seed)
        widths = _batch_widths(sizes, sampler.batches())
    else:
        batches = PackedBatches(sizes, token_budget or max(16, max_length // 2), batch_size,
                                seed).epoch_batches
        widths = np.concatenate([np.full(len(b), max(int(sizes[r].sum()) for r in b))
                                 for b in batches])
    real = int(sizes.sum())
    padded = int(widths.sum())
    return {
        "strategy": strategy,
        "rows": len(widths),
        "real_tokens": real,
        "padded_tokens": padded,
        "pad_tokens": padded - real,
        "ratio": padded / real,
        "attention_cells": int((widths * widths).sum()),
    }


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _batch_widths(sizes: np.ndarray, batches: list[list[int]]) -> np.ndarray:
    """One width per row: each example is padded to the longest of its batch."""
    return np.concatenate([np.full(len(b), sizes[b].max()) for b in batches])
