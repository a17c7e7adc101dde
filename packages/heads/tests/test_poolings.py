"""Poolings built through the registry: shapes, exact values, padding invariance, training."""

import importlib.metadata as md

import attrs
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cm.errors import UserError
from cm.plugins import discover
from cm.registry import build_registry

ENTRY_POINT = md.EntryPoint(name="heads", value="cm_heads.plugin", group="cm")
H = 8
NUM_LAYERS = 3  # all_hidden holds NUM_LAYERS + 1 states (embeddings + layers)

CASES = [
    ("cls", {}),
    ("mean", {}),
    ("max", {}),
    ("cls_mean", {}),
    ("attention", {}),
    ("attention", {"hidden_dim": 4}),
    ("weighted_layers", {}),
    ("weighted_layers", {"layers": 2, "reduce": "mean"}),
    ("weighted_layers", {"layers": NUM_LAYERS + 1, "reduce": "cls"}),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in options.items()) or 'default'}"
       for name, options in CASES]
OUT_FEATURES = {"cls_mean": 2 * H}


@pytest.fixture(scope="module")
def registry():
    return build_registry(discover(entry_points=[ENTRY_POINT]))


def build(registry, name, hidden_size=H, num_layers=NUM_LAYERS, **options):
    """A pooling with non-trivial parameters, so padding bugs cannot hide behind zeros."""
    component = registry.get("pooling", name)
    torch.manual_seed(0)
    pooling = component.build(component.options(**options), hidden_size=hidden_size,
                              num_layers=num_layers)
    with torch.no_grad():
        for param in pooling.parameters():
            param.copy_(torch.randn_like(param))
    return pooling


def layers_of(hidden, generator=None):
    """all_hidden whose last entry is ``hidden`` and whose earlier entries differ from it."""
    others = [torch.randn(hidden.shape, generator=generator) for _ in range(NUM_LAYERS)]
    return (*others, hidden)


def test_all_poolings_registered(registry):
    assert registry.names("pooling") == sorted({name for name, _ in CASES})


@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_output_shape_and_out_features(registry, name, options):
    pooling = build(registry, name, **options)
    assert pooling.out_features == OUT_FEATURES.get(name, H)
    hidden = torch.randn(3, 6, H)
    mask = torch.ones(3, 6, dtype=torch.long)
    mask[1, 4:] = 0
    out = pooling(hidden, mask, layers_of(hidden))
    assert out.shape == (3, pooling.out_features)
    assert torch.isfinite(out).all()
    assert pooling.needs_all_hidden is (name == "weighted_layers")


def padded_pair(length, total, garbage, generator):
    """(alone, alone_layers, padded, padded_mask, padded_layers): one sequence of ``length``
    tokens, then the same tokens followed by ``total - length`` garbage positions, batched
    next to an unrelated full-length sequence."""
    layers = [torch.randn(1, length, H, generator=generator) for _ in range(NUM_LAYERS + 1)]
    padded_layers = []
    for states in layers:
        if garbage == "random":
            pad = 1e4 * torch.randn(1, total - length, H, generator=generator)
        else:
            pad = torch.full((1, total - length, H), garbage)
        row = torch.cat([states, pad], dim=1)
        other = torch.randn(1, total, H, generator=generator)
        padded_layers.append(torch.cat([row, other]))
    mask = torch.ones(2, total, dtype=torch.long)
    mask[0, length:] = 0
    return layers[-1], tuple(layers), padded_layers[-1], mask, tuple(padded_layers)


def assert_padding_invariant(pooling, length, total, garbage, generator):
    alone, alone_layers, padded, mask, padded_layers = padded_pair(length, total, garbage,
                                                                   generator)
    expected = pooling(alone, torch.ones(1, length, dtype=torch.long), alone_layers)
    got = pooling(padded, mask, padded_layers)
    torch.testing.assert_close(got[:1], expected)


@pytest.mark.parametrize("garbage", ["random", 1e30, -1e30, float("inf"), float("-inf"),
                                     float("nan")])
@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_padding_never_changes_the_pooled_vector(registry, name, options, garbage):
    pooling = build(registry, name, **options)
    generator = torch.Generator().manual_seed(1)
    assert_padding_invariant(pooling, length=5, total=9, garbage=garbage, generator=generator)


@settings(max_examples=20, deadline=None)
@given(lengths=st.lists(st.integers(1, 7), min_size=1, max_size=4),
       extra=st.integers(0, 3), seed=st.integers(0, 2**16))
@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_batched_padding_matches_each_sequence_alone(registry, name, options, lengths, extra,
                                                     seed):
    pooling = build(registry, name, **options)
    generator = torch.Generator().manual_seed(seed)
    total = max(lengths) + extra
    mask = torch.zeros(len(lengths), total, dtype=torch.long)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
    # Unit-scale real tokens, 1e4-scale garbage on padding.
    scale = torch.where(mask.bool(), 1.0, 1e4)[..., None]
    layers = [scale * torch.randn(len(lengths), total, H, generator=generator)
              for _ in range(NUM_LAYERS + 1)]
    batched = pooling(layers[-1], mask, tuple(layers))
    for row, length in enumerate(lengths):
        alone = tuple(states[row:row + 1, :length] for states in layers)
        expected = pooling(alone[-1], torch.ones(1, length, dtype=torch.long), alone)
        torch.testing.assert_close(batched[row:row + 1], expected)


@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_padding_gets_no_gradient(registry, name, options):
    pooling = build(registry, name, **options)
    hidden = torch.randn(2, 6, H)
    layers = [torch.randn(2, 6, H).requires_grad_() for _ in range(NUM_LAYERS)]
    hidden.requires_grad_()
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    pooling(hidden, mask, (*layers, hidden)).sum().backward()
    for states in (*layers, hidden):
        if states.grad is not None:
            assert torch.isfinite(states.grad).all()
            assert (states.grad[0, 3:] == 0).all()
    assert hidden.grad is not None


def test_cls_takes_position_zero(registry):
    hidden = torch.randn(2, 4, H)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    torch.testing.assert_close(build(registry, "cls")(hidden, mask, None), hidden[:, 0])


def test_mean_values(registry):
    hidden = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]],
                           [[5.0], [9.0], [9.0]], [[7.0], [7.0], [7.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0], [0, 0, 0]])
    out = build(registry, "mean", hidden_size=1)(hidden, mask, None)
    # An all-padding row cannot occur ([CLS] is always real) but must not give nan.
    torch.testing.assert_close(out, torch.tensor([[2.0], [4.0], [5.0], [0.0]]))


def test_max_ignores_large_padding(registry):
    hidden = torch.tensor([[[-5.0, -1e30], [-2.0, -3e30], [1e6, 1e38], [float("inf")] * 2]])
    mask = torch.tensor([[1, 1, 0, 0]])
    out = build(registry, "max", hidden_size=2)(hidden, mask, None)
    torch.testing.assert_close(out, torch.tensor([[-2.0, -1e30]]))


def test_max_ignores_padding_in_bfloat16(registry):
    hidden = torch.tensor([[[-3.0], [-7.0], [50.0]]], dtype=torch.bfloat16)
    out = build(registry, "max", hidden_size=1)(hidden, torch.tensor([[1, 1, 0]]), None)
    assert out.dtype == torch.bfloat16
    assert out.item() == -3.0


def test_cls_mean_concatenates_cls_and_mean(registry):
    hidden = torch.randn(2, 5, H)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    out = build(registry, "cls_mean")(hidden, mask, None)
    torch.testing.assert_close(out[:, :H], hidden[:, 0])
    torch.testing.assert_close(out[0, H:], hidden[0, :3].mean(0))
    torch.testing.assert_close(out[1, H:], hidden[1].mean(0))


@pytest.mark.parametrize("options", [{}, {"hidden_dim": 4}])
def test_attention_weights_sum_to_one_over_real_tokens(registry, options):
    pooling = build(registry, "attention", **options)
    hidden = 3 * torch.randn(3, 7, H)
    mask = torch.tensor([[1] * 7, [1, 1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0]])
    weights = pooling.weights(hidden, mask)
    assert weights.shape == (3, 7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert (weights[mask == 0] == 0).all()
    assert (weights[mask == 1] > 0).all()
    assert not torch.allclose(weights[0], torch.full((7,), 1 / 7))  # scores are learned
    torch.testing.assert_close(weights[2, 0], torch.tensor(1.0))
    expected = (weights.unsqueeze(-1) * torch.where(mask.bool()[..., None], hidden, 0)).sum(1)
    torch.testing.assert_close(pooling(hidden, mask, None), expected)


def test_attention_with_no_real_tokens_is_finite(registry):
    pooling = build(registry, "attention")
    out = pooling(torch.randn(1, 3, H), torch.zeros(1, 3, dtype=torch.long), None)
    assert torch.isfinite(out).all()


def test_weighted_layers_mixes_the_last_k_cls_states(registry):
    pooling = build(registry, "weighted_layers", layers=2)
    layers = tuple(torch.randn(2, 4, H) for _ in range(NUM_LAYERS + 1))
    mask = torch.ones(2, 4, dtype=torch.long)
    weights = pooling.layer_weights()
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0))
    expected = weights[0] * layers[-2][:, 0] + weights[1] * layers[-1][:, 0]
    torch.testing.assert_close(pooling(layers[-1], mask, layers), expected)


def test_weighted_layers_mean_reduction(registry):
    pooling = build(registry, "weighted_layers", layers=2, reduce="mean")
    layers = tuple(torch.randn(1, 4, H) for _ in range(NUM_LAYERS + 1))
    mask = torch.tensor([[1, 1, 0, 0]])
    weights = pooling.layer_weights()
    expected = weights[0] * layers[-2][:, :2].mean(1) + weights[1] * layers[-1][:, :2].mean(1)
    torch.testing.assert_close(pooling(layers[-1], mask, layers), expected)


def test_weighted_layers_starts_uniform_and_one_layer_is_cls(registry):
    component = registry.get("pooling", "weighted_layers")
    pooling = component.build(hidden_size=H, num_layers=NUM_LAYERS)
    torch.testing.assert_close(pooling.layer_weights(), torch.full((4,), 0.25))
    single = component.build(component.options(layers=1), hidden_size=H, num_layers=NUM_LAYERS)
    layers = tuple(torch.randn(2, 3, H) for _ in range(NUM_LAYERS + 1))
    torch.testing.assert_close(single(layers[-1], torch.ones(2, 3), layers), layers[-1][:, 0])


def test_weighted_layers_needs_all_hidden(registry):
    pooling = build(registry, "weighted_layers")
    hidden = torch.randn(1, 3, H)
    with pytest.raises(ValueError, match="output_hidden_states"):
        pooling(hidden, torch.ones(1, 3), None)
    with pytest.raises(ValueError, match="only 2"):
        pooling(hidden, torch.ones(1, 3), (hidden, hidden))


def test_weighted_layers_more_than_the_backbone_has(registry):
    component = registry.get("pooling", "weighted_layers")
    component.build(component.options(layers=13), hidden_size=H, num_layers=12)
    with pytest.raises(UserError, match="layers <= 13"):
        component.build(component.options(layers=14), hidden_size=H, num_layers=12)


@pytest.mark.parametrize("name,bad", [
    ("weighted_layers", {"layers": 0}),
    ("weighted_layers", {"layers": -2}),
    ("weighted_layers", {"reduce": "max"}),
    ("attention", {"hidden_dim": 0}),
])
def test_bad_options_are_rejected(registry, name, bad):
    with pytest.raises(ValueError):
        registry.get("pooling", name).options(**bad)


def test_validators_called_like_the_config_decoder(registry):
    options_cls = registry.get("pooling", "weighted_layers").options
    layers = attrs.fields(options_cls).layers
    layers.validator(None, layers, 1)
    with pytest.raises(ValueError, match="layers"):
        layers.validator(None, layers, 0)
    hidden_dim = attrs.fields(registry.get("pooling", "attention").options).hidden_dim
    hidden_dim.validator(None, hidden_dim, None)
    with pytest.raises(ValueError, match="hidden_dim"):
        hidden_dim.validator(None, hidden_dim, 0)


@pytest.mark.parametrize("name,options", CASES, ids=IDS)
@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_pooling_and_head_train(registry, name, options, head):
    """A stand-in backbone output (a learnable tensor) -> pooling -> head -> loss: every
    parameter gets a gradient and a few steps lower the loss on the fixed batch."""
    pooling = build(registry, name, **options)
    head_component = registry.get("head", head)
    head_module = head_component.build(head_component.options(dropout=0.0),
                                       in_features=pooling.out_features, num_logits=2)
    generator = torch.Generator().manual_seed(0)
    layers = nn.ParameterList(torch.randn(6, 5, H, generator=generator)
                              for _ in range(NUM_LAYERS + 1))
    mask = torch.ones(6, 5, dtype=torch.long)
    mask[::2, 3:] = 0
    labels = torch.tensor([0, 1, 0, 1, 1, 0])
    params = [*pooling.parameters(), *head_module.parameters(), *layers]
    optimizer = torch.optim.Adam(params, lr=1e-2)

    def loss_now():
        logits = head_module(pooling(layers[-1], mask, tuple(layers)))
        return nn.functional.cross_entropy(logits, labels)

    first = loss_now()
    first.backward()
    named = [*pooling.named_parameters(), *head_module.named_parameters()]
    for pname, param in named:
        assert param.grad is not None and param.grad.abs().sum() > 0, pname
    assert layers[-1].grad.abs().sum() > 0
    optimizer.step()
    for _ in range(15):
        optimizer.zero_grad()
        loss_now().backward()
        optimizer.step()
    with torch.no_grad():
        assert loss_now().item() < 0.8 * first.item()
