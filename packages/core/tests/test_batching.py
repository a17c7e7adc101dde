"""Batching without a model: padding, length buckets, first-fit-decreasing packing, waste."""

import attrs
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cm.data.batching import (
    LengthBucketSampler,
    PackedBatches,
    pack_examples,
    packed_batch,
    pad_batch,
    padding_waste,
)
from cm.errors import UserError

PAD = 0


@attrs.frozen
class Example:
    input_ids: list[int]
    token_type_ids: list[int]


def make_example(length: int, start: int = 1) -> Example:
    ids = [start + i for i in range(length)]
    return Example(ids, [0] * (length // 2) + [1] * (length - length // 2))


def lognormal_lengths(n: int = 2000, seed: int = 7) -> np.ndarray:
    """Long-tailed like real post lengths: most short, a few near max_length."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(mean=4.8, sigma=0.7, size=n), 8, 512).astype(int)


def test_pad_batch_pads_to_longest_in_batch():
    examples = [make_example(3), make_example(5, start=10), make_example(1, start=20)]
    batch = pad_batch(examples, [1, 0, 1], pad_id=PAD)
    assert batch["input_ids"].tolist() == [
        [1, 2, 3, PAD, PAD],
        [10, 11, 12, 13, 14],
        [20, PAD, PAD, PAD, PAD],
    ]
    assert batch["token_type_ids"].tolist() == [
        [0, 1, 1, 0, 0],
        [0, 0, 1, 1, 1],
        [1, 0, 0, 0, 0],
    ]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1] * 5, [1, 0, 0, 0, 0]]
    assert batch["labels"].tolist() == [1.0, 0.0, 1.0]
    assert batch["labels"].dtype == torch.float32


def test_pad_batch_rejects_mismatched_ids_and_labels():
    with pytest.raises(ValueError, match="token_type_ids"):
        pad_batch([Example([1, 2], [0])], [1], PAD)
    with pytest.raises(ValueError, match="labels"):
        pad_batch([make_example(2)], [1, 0], PAD)
    assert "labels" not in pad_batch([make_example(2)], None, PAD)


# --- LengthBucketSampler -------------------------------------------------------------------


def spread(lengths: np.ndarray, batches: list[list[int]]) -> float:
    """Mean over batches of (longest - shortest): 0 for perfectly homogeneous batches."""
    return float(np.mean([lengths[b].max() - lengths[b].min() for b in batches]))


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("n", [1, 15, 16, 17, 1001])
def test_sampler_yields_every_index_once(n, drop_last):
    lengths = np.random.default_rng(n).integers(1, 300, size=n)
    sampler = LengthBucketSampler(lengths, batch_size=16, seed=3, drop_last=drop_last)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        flat = sorted(i for b in batches for i in b)
        if drop_last:
            assert all(len(b) == 16 for b in batches)
            assert len(flat) == n - n % 16 and len(set(flat)) == len(flat)
        else:
            assert flat == list(range(n))
            assert sum(len(b) < 16 for b in batches) == (1 if n % 16 else 0)


def test_sampler_batches_are_length_homogeneous():
    lengths = lognormal_lengths()
    sampler = LengthBucketSampler(lengths, batch_size=16, seed=0)
    bucketed = spread(lengths, list(sampler))
    order = np.random.default_rng(0).permutation(len(lengths)).tolist()
    random_batches = [order[i : i + 16] for i in range(0, len(order), 16)]
    random_spread = spread(lengths, random_batches)
    assert bucketed < random_spread / 10, (bucketed, random_spread)


def test_sampler_interleaves_long_and_short_batches():
    # sorted chunks alone would give runs of ever shorter batches; the batch order is shuffled
    lengths = lognormal_lengths()
    longest = [int(lengths[b].max()) for b in LengthBucketSampler(lengths, 16, seed=0)]
    rises = sum(later > earlier for earlier, later in zip(longest, longest[1:], strict=False))
    assert len(longest) / 3 < rises < 2 * len(longest) / 3


def test_sampler_is_seeded_by_seed_and_epoch():
    lengths = lognormal_lengths(500)
    first = LengthBucketSampler(lengths, 8, seed=11)
    again = LengthBucketSampler(lengths, 8, seed=11)
    assert list(first) == list(again)
    first.set_epoch(1)
    epoch1 = list(first)
    assert epoch1 != list(again)
    again.set_epoch(1)
    assert epoch1 == list(again)
    assert list(LengthBucketSampler(lengths, 8, seed=12)) != list(
        LengthBucketSampler(lengths, 8, 11)
    )
    # batch contents change too, not only the order of the same batches
    first.set_epoch(0)
    assert {tuple(sorted(b)) for b in first} != {tuple(sorted(b)) for b in epoch1}


def test_eval_sampler_sorts_globally_and_ignores_epoch():
    lengths = np.array([5, 1, 9, 3, 9, 2, 7])
    sampler = LengthBucketSampler(lengths, batch_size=3, seed=0, shuffle=False)
    assert list(sampler) == [[2, 4, 6], [0, 3, 5], [1]]
    sampler.set_epoch(5)
    assert list(sampler) == [[2, 4, 6], [0, 3, 5], [1]]


def test_sampler_works_as_dataloader_batch_sampler():
    lengths = [3, 1, 4, 1, 5, 9, 2, 6]
    loader = torch.utils.data.DataLoader(
        list(range(8)), batch_sampler=LengthBucketSampler(lengths, 3, seed=0)
    )
    assert sorted(int(i) for b in loader for i in b) == list(range(8))


# --- pack_examples -------------------------------------------------------------------------


def check_packing(lengths, budget, rows):
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= budget for row in rows)
    assert all(row for row in rows)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 64), min_size=0, max_size=80),
    st.integers(64, 200),
)
def test_pack_rows_fit_budget_and_hold_every_example_once(lengths, budget):
    rows = pack_examples(lengths, budget)
    check_packing(lengths, budget, rows)
    assert rows == pack_examples(lengths, budget)  # deterministic
    # first fit leaves at most one row half full or less: a later such row's items would all
    # have fitted into the earlier one
    fills = [sum(lengths[i] for i in row) for row in rows]
    assert sum(fill <= budget / 2 for fill in fills) <= 1


def test_pack_known_case_is_first_fit_decreasing():
    # sorted: 6(0) 5(3) 4(1) 3(4) 2(2) 2(5); budget 8
    assert pack_examples([6, 4, 2, 5, 3, 2], 8) == [[0, 2], [3, 4], [1, 5]]


def test_pack_is_near_optimal_on_long_tail():
    lengths = lognormal_lengths()
    rows = pack_examples(lengths, 512)
    check_packing(lengths.tolist(), 512, rows)
    lower_bound = int(np.ceil(lengths.sum() / 512))
    assert len(rows) <= lower_bound + 2


def test_pack_refuses_examples_over_budget():
    with pytest.raises(UserError, match="token_budget"):
        pack_examples([10, 600, 20], 512)
    assert pack_examples([], 512) == []


# --- packed_batch --------------------------------------------------------------------------


def test_packed_batch_layout():
    examples = [make_example(3, 1), make_example(2, 10), make_example(4, 20), make_example(1, 30)]
    rows = [[2, 3], [0, 1]]  # row 0 holds 4 + 1 tokens, row 1 holds 3 + 2
    batch = packed_batch(examples, [0, 1, 1, 0], rows, pad_id=PAD)
    assert batch["input_ids"].tolist() == [[20, 21, 22, 23, 30], [1, 2, 3, 10, 11]]
    assert batch["segment_ids"].tolist() == [[0, 0, 0, 0, 1], [2, 2, 2, 3, 3]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 0], [0, 1, 2, 0, 1]]
    assert batch["cls_positions"].tolist() == [[0, 0], [0, 4], [1, 0], [1, 3]]
    assert batch["segment_lengths"].tolist() == [4, 1, 3, 2]
    assert batch["segment_index"].tolist() == [2, 3, 0, 1]
    assert batch["labels"].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert batch["token_mask"].tolist() == [[1] * 5, [1] * 5]
    # token types survive packing unchanged
    assert batch["token_type_ids"][1].tolist() == [0, 1, 1, 0, 1]


def test_packed_batch_pads_short_rows_and_mask_is_block_diagonal():
    lengths = [5, 3, 2, 6, 1, 4]
    examples = [make_example(n, 1 + 10 * i) for i, n in enumerate(lengths)]
    rows = pack_examples(lengths, 8)
    batch = packed_batch(examples, None, rows, pad_id=PAD)
    assert "labels" not in batch
    seg, mask = batch["segment_ids"], batch["attention_mask"]
    width = max(sum(lengths[i] for i in row) for row in rows)
    assert mask.shape == (len(rows), width, width) and mask.dtype == torch.bool
    for r in range(len(rows)):
        for q in range(width):
            for k in range(width):
                expected = bool(seg[r, q] >= 0 and seg[r, q] == seg[r, k])
                assert bool(mask[r, q, k]) == expected
    # no cross-segment ones, and each segment sees exactly its own length squared
    assert int(mask.sum()) == sum(n * n for n in lengths)
    assert (batch["input_ids"][seg < 0] == PAD).all()
    assert (batch["token_mask"] == (seg >= 0).long()).all()


def test_packed_batch_rejects_empty_rows():
    with pytest.raises(ValueError, match="empty"):
        packed_batch([make_example(2)], None, [[0], []], PAD)


# --- padding_waste -------------------------------------------------------------------------


def test_padding_waste_orders_strategies_on_long_tail():
    lengths = lognormal_lengths()
    stats = {
        s: padding_waste(lengths, s, batch_size=16, max_length=512, token_budget=512, seed=0)
        for s in ("pad_to_max", "dynamic", "bucketing", "packing")
    }
    ratios = {s: v["ratio"] for s, v in stats.items()}
    assert ratios["pad_to_max"] > ratios["dynamic"] > ratios["bucketing"] > ratios["packing"]
    assert ratios["pad_to_max"] > 2.0
    assert ratios["bucketing"] < 1.2
    assert 1.0 <= ratios["packing"] < 1.1
    for s, v in stats.items():
        assert v["real_tokens"] == int(lengths.sum())
        assert v["padded_tokens"] == v["real_tokens"] + v["pad_tokens"]
        assert v["ratio"] == pytest.approx(v["padded_tokens"] / v["real_tokens"])
        packed = PackedBatches(lengths, 512, 16, seed=0).epoch_batches  # what training runs
        expected_rows = len(lengths) if s != "packing" else sum(len(b) for b in packed)
        assert v["rows"] == expected_rows
    assert stats["pad_to_max"]["padded_tokens"] == len(lengths) * 512
    assert stats["packing"]["rows"] < len(lengths) / 3


def test_padding_waste_exact_small_case():
    lengths = [2, 4, 6, 8]
    assert padding_waste(lengths, "pad_to_max", max_length=10)["padded_tokens"] == 40
    bucket = padding_waste(lengths, "bucketing", batch_size=2, max_length=10)
    assert bucket["padded_tokens"] == 8 * 2 + 4 * 2 and bucket["pad_tokens"] == 4
    assert bucket["attention_cells"] == 2 * 64 + 2 * 16
    pack = padding_waste(lengths, "packing", max_length=10, token_budget=10)
    assert pack["rows"] == 2 and pack["padded_tokens"] == 20  # [8, 2] and [6, 4]
    # the default budget is max_length / 2 (as the packing optimization's): [20] [16] [12, 8]
    pack = padding_waste([20, 16, 12, 8], "packing", max_length=40)
    assert pack["rows"] == 3 and pack["padded_tokens"] == 3 * 20
    # lengths are truncated to max_length first
    assert padding_waste([30], "dynamic", max_length=10)["real_tokens"] == 10


def test_padding_waste_rejects_unknown_strategy():
    with pytest.raises(UserError, match="bucketing"):
        padding_waste([1, 2], "sorted")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 120), min_size=1, max_size=150), st.integers(16, 100),
       st.integers(1, 20), st.integers(0, 5))
def test_packed_batches_keep_every_example_once_and_long_ones_alone(lengths, budget, per_batch,
                                                                     epoch):
    sampler = PackedBatches(lengths, budget, per_batch, seed=3)
    sampler.set_epoch(epoch)
    batches = list(sampler)
    placed = sorted(i for batch in batches for row in batch for i in row)
    assert placed == list(range(len(lengths)))  # every example exactly once
    for batch in batches:
        widths = [sum(lengths[i] for i in row) for row in batch]
        assert widths == sorted(widths, reverse=True)  # rows of similar width share a batch
        for row in batch:
            assert len(row) == 1 or sum(lengths[i] for i in row) <= budget
            assert all(lengths[i] <= budget for i in row) or len(row) == 1  # long: alone
        # a batch closes once it holds per_batch examples; only a chunk's last one holds fewer
        assert sum(len(row) for row in batch[:-1]) < per_batch
    short = [b for b in batches if sum(len(row) for row in b) < per_batch]
    chunks = -(-len(lengths) // (per_batch * PackedBatches.CHUNK_BATCHES))
    assert len(short) <= chunks
