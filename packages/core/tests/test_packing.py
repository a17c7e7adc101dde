"""Packed DeBERTaV3 batches give the same hidden states as running every example alone.

A tiny randomly initialised v3-shaped model (relative attention with log buckets, no absolute
positions, shared attention keys) keeps this fast; equality is architectural, not a property of
trained weights.
"""

import attrs
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import DebertaV2Config, DebertaV2Model

from cm.data.batching import pack_examples, packed_batch, pad_batch
from cm.model.packed import encode, encode_packed, encode_padded, unpack

PAD, CLS, SEP = 0, 1, 2
ATOL = 1e-5


@attrs.frozen
class Example:
    input_ids: list[int]
    token_type_ids: list[int]


def v3_config(**changes) -> DebertaV2Config:
    options = dict(
        vocab_size=300,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        relative_attention=True,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,
        position_buckets=256,
        max_relative_positions=-1,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        type_vocab_size=2,
    )
    options.update(changes)
    return DebertaV2Config(**options)


def tiny_model(**changes) -> DebertaV2Model:
    torch.manual_seed(0)
    return DebertaV2Model(v3_config(**changes)).eval()


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def make_examples(lengths: list[int], seed: int) -> list[Example]:
    """[CLS] criterion [SEP] post [SEP]-shaped examples (length 1 is a lone [CLS])."""
    generator = torch.Generator().manual_seed(seed)
    examples = []
    for length in lengths:
        body = torch.randint(3, 300, (length,), generator=generator).tolist()
        body[0] = CLS
        split = max(1, length // 3)  # the criterion part: [CLS] ... [SEP], token type 0
        if split > 1:
            body[split - 1] = SEP
        if length > split + 1:
            body[-1] = SEP
        examples.append(Example(body, [0] * split + [1] * (length - split)))
    return examples


@torch.no_grad()
def run_alone(model, example: Example, output_hidden_states: bool = False):
    """The reference: one example, unpadded, through the ordinary forward."""
    output = model(
        input_ids=torch.tensor([example.input_ids]),
        token_type_ids=torch.tensor([example.token_type_ids]),
        output_hidden_states=output_hidden_states,
    )
    if output_hidden_states:
        return [layer[0] for layer in output.hidden_states]
    return output.last_hidden_state[0]


def assert_packed_equals_alone(model, lengths: list[int], budget: int, seed: int) -> None:
    examples = make_examples(lengths, seed)
    labels = [i % 2 for i in range(len(examples))]
    rows = pack_examples(lengths, budget)
    batch = packed_batch(examples, labels, rows, pad_id=PAD)
    with torch.no_grad():
        per_segment, mask = unpack(encode_packed(model, batch), batch)
        padded, padded_mask = encode_padded(model, pad_batch(examples, labels, PAD))
    assert per_segment.shape == (len(examples), max(lengths), model.config.hidden_size)
    assert mask.sum(1).tolist() == batch["segment_lengths"].tolist()
    for s, index in enumerate(batch["segment_index"].tolist()):
        alone = run_alone(model, examples[index])
        n = lengths[index]
        torch.testing.assert_close(per_segment[s, :n], alone, atol=ATOL, rtol=0)
        torch.testing.assert_close(padded[index, :n], alone, atol=ATOL, rtol=0)
        assert (per_segment[s, n:] == 0).all()
        assert batch["labels"][s] == labels[index]
    assert padded_mask.sum(1).tolist() == lengths


def test_packed_equals_alone_and_padded(model):
    lengths = [1, 2, 5, 9, 17, 33, 40, 3, 64, 12, 7, 25]
    rows = pack_examples(lengths, 80)
    assert len(rows) < len(lengths) and any(len(row) > 2 for row in rows)
    assert_packed_equals_alone(model, lengths, budget=80, seed=0)


def test_packed_equals_alone_beyond_log_buckets(model):
    # rows of 300 tokens put segments at offsets past position_buckets/2 = 128, where relative
    # positions are log-bucketed; within-segment distances must still match
    lengths = [140, 150, 10, 130, 20, 5]
    assert_packed_equals_alone(model, lengths, budget=300, seed=1)


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.integers(1, 24), min_size=1, max_size=6),
    st.integers(0, 40),
    st.integers(0, 2**16),
)
def test_packing_is_exact_for_any_lengths_and_budget(model, lengths, slack, seed):
    assert_packed_equals_alone(model, lengths, budget=max(lengths) + slack, seed=seed)


def test_every_layer_is_exact(model):
    lengths = [6, 11, 3, 19, 8]
    examples = make_examples(lengths, seed=5)
    batch = packed_batch(examples, None, pack_examples(lengths, 24), PAD)
    with torch.no_grad():
        layers = encode_packed(model, batch, output_hidden_states=True)
    assert isinstance(layers, tuple) and len(layers) == model.config.num_hidden_layers + 1
    for layer_number, layer in enumerate(layers):
        per_segment, _ = unpack(layer, batch)
        for s, index in enumerate(batch["segment_index"].tolist()):
            alone = run_alone(model, examples[index], output_hidden_states=True)[layer_number]
            torch.testing.assert_close(per_segment[s, : lengths[index]], alone, atol=ATOL, rtol=0)


def test_without_block_mask_segments_leak(model):
    """Control: the exactness tests can fail. A plain 2-D mask lets segments see each other."""
    lengths = [10, 12]
    examples = make_examples(lengths, seed=2)
    batch = packed_batch(examples, None, [[0, 1]], PAD)
    leaky = dict(batch, attention_mask=batch["token_mask"])
    with torch.no_grad():
        per_segment, _ = unpack(encode_packed(model, leaky), batch)
        alone = run_alone(model, examples[0])
    assert (per_segment[0, :10] - alone).abs().max() > 1e-2


def test_changing_one_segment_leaves_the_others_alone(model):
    lengths = [8, 8, 8]
    examples = make_examples(lengths, seed=3)
    changed = list(examples)
    changed[1] = make_examples([8], seed=99)[0]
    rows = [[0, 1, 2]]
    with torch.no_grad():
        states = {}
        for name, batch_examples in (("before", examples), ("after", changed)):
            batch = packed_batch(batch_examples, None, rows, PAD)
            states[name], _ = unpack(encode_packed(model, batch), batch)
    before, after = states["before"], states["after"]
    torch.testing.assert_close(before[0], after[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(before[2], after[2], atol=1e-6, rtol=0)
    assert (before[1] - after[1]).abs().max() > 1e-2


def test_gradients_match_padded_path():
    """Training on packed rows takes the same step as training on padded batches."""
    lengths = [5, 14, 3, 9, 20, 2]
    examples = make_examples(lengths, seed=4)
    labels = [1, 0, 1, 1, 0, 0]
    grads = {}
    for kind in ("padded", "packed"):
        model = tiny_model()
        if kind == "padded":
            batch = pad_batch(examples, labels, PAD)
        else:
            batch = packed_batch(examples, labels, pack_examples(lengths, 24), PAD)
        hidden, _ = encode(model, batch)
        logits = hidden[:, 0].sum(-1)  # a stand-in head on [CLS]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["labels"])
        loss.backward()
        grads[kind] = {
            name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None
        }
    assert grads["padded"].keys() == grads["packed"].keys()
    assert len(grads["packed"]) > 10
    for name, grad in grads["padded"].items():
        torch.testing.assert_close(grads["packed"][name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_encode_gives_one_interface(model):
    lengths = [4, 9, 6]
    examples = make_examples(lengths, seed=6)
    labels = [0, 1, 0]
    packed = packed_batch(examples, labels, [[1], [2, 0]], PAD)
    padded = pad_batch(examples, labels, PAD)
    with torch.no_grad():
        packed_hidden, packed_mask = encode(model, packed)
        padded_hidden, padded_mask = encode(model, padded)
        packed_layers, _ = encode(model, packed, output_hidden_states=True)
    assert packed_hidden.shape == padded_hidden.shape == (3, 9, 64)
    assert packed_mask.tolist() == [[1] * 9, [1] * 6 + [0] * 3, [1] * 4 + [0] * 5]
    order = packed["segment_index"].tolist()
    assert order == [1, 2, 0]

    # mean pooling written for padded batches gives the same numbers on packed ones
    def mean_pool(h, m):
        return (h * m[..., None]).sum(1) / m.sum(1, keepdim=True)

    torch.testing.assert_close(
        mean_pool(packed_hidden, packed_mask),
        mean_pool(padded_hidden, padded_mask)[order],
        atol=ATOL,
        rtol=0,
    )
    assert len(packed_layers) == 3
    torch.testing.assert_close(packed_layers[-1], packed_hidden, atol=0, rtol=0)


def test_absolute_positions_stay_exact_with_per_segment_position_ids():
    model = tiny_model(position_biased_input=True, max_position_embeddings=128)
    assert_packed_equals_alone(model, [7, 3, 12, 5], budget=16, seed=7)


def test_conv_models_are_refused():
    model = tiny_model(conv_kernel_size=3)
    examples = make_examples([3, 4], seed=0)
    batch = packed_batch(examples, None, [[0, 1]], PAD)
    with pytest.raises(ValueError, match="conv"):
        encode_packed(model, batch)


def test_task_model_wrapping_deberta_is_accepted():
    from transformers import DebertaV2ForSequenceClassification

    torch.manual_seed(0)
    wrapper = DebertaV2ForSequenceClassification(v3_config(num_labels=1)).eval()
    examples = make_examples([5, 6], seed=8)
    batch = packed_batch(examples, None, [[0, 1]], PAD)
    with torch.no_grad():
        per_segment, _ = unpack(encode_packed(wrapper, batch), batch)
        alone = run_alone(wrapper.deberta, examples[1])
    torch.testing.assert_close(per_segment[1, :6], alone, atol=ATOL, rtol=0)
