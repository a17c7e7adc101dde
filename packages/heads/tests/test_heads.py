"""Heads built through the registry: shapes, layer layout, options validation, training."""

import importlib.metadata as md

import attrs
import pytest
import torch
from torch import nn

from cm.plugins import discover
from cm.registry import build_registry

ENTRY_POINT = md.EntryPoint(name="heads", value="cm_heads.plugin", group="cm")


@pytest.fixture(scope="module")
def registry():
    return build_registry(discover(entry_points=[ENTRY_POINT]))


def build(registry, name, in_features, num_logits, **options):
    component = registry.get("head", name)
    return component.build(component.options(**options), in_features=in_features,
                           num_logits=num_logits)


HEAD_CASES = [
    ("linear", {}),
    ("linear", {"dropout": 0.0}),
    ("mlp", {}),
    ("mlp", {"hidden_dims": [32, 16], "activation": "gelu", "layer_norm": True}),
    ("mlp", {"hidden_dims": [8], "activation": "silu", "dropout": 0.5}),
    ("mlp", {"hidden_dims": [8, 8, 8], "activation": "tanh"}),
]


@pytest.mark.parametrize("name,options", HEAD_CASES)
@pytest.mark.parametrize("num_logits", [1, 2])
def test_head_output_shape(registry, name, options, num_logits):
    head = build(registry, name, 24, num_logits, **options)
    assert head(torch.randn(5, 24)).shape == (5, num_logits)


def linears(module):
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]


def test_linear_head_is_dropout_then_linear(registry):
    head = build(registry, "linear", 768, 2, dropout=0.2)
    assert [type(m) for m in head] == [nn.Dropout, nn.Linear]
    assert head[0].p == 0.2
    assert linears(head) == [(768, 2)]


def test_mlp_default_is_the_baseline(registry):
    head = registry.get("head", "mlp").build(in_features=768, num_logits=2)
    assert linears(head) == [(768, 256), (256, 2)]
    assert [type(m) for m in head] == [nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert all(m.p == 0.1 for m in head.modules() if isinstance(m, nn.Dropout))


@pytest.mark.parametrize("activation,cls", [("relu", nn.ReLU), ("gelu", nn.GELU),
                                            ("silu", nn.SiLU), ("tanh", nn.Tanh)])
def test_mlp_layers_activation_and_layer_norm(registry, activation, cls):
    head = build(registry, "mlp", 10, 3, hidden_dims=[7, 5, 4], activation=activation,
                 layer_norm=True)
    assert linears(head) == [(10, 7), (7, 5), (5, 4), (4, 3)]
    assert sum(isinstance(m, cls) for m in head.modules()) == 3
    assert [m.normalized_shape for m in head.modules() if isinstance(m, nn.LayerNorm)] == [
        (7,), (5,), (4,)]
    plain = build(registry, "mlp", 10, 3, hidden_dims=[7, 5, 4])
    assert not any(isinstance(m, nn.LayerNorm) for m in plain.modules())


def test_dropout_only_in_training(registry):
    torch.manual_seed(0)
    head = build(registry, "mlp", 16, 2, dropout=0.5)
    x = torch.randn(4, 16)
    head.eval()
    torch.testing.assert_close(head(x), head(x))
    head.train()
    assert not torch.equal(head(x), head(x))


def options_cls(registry, name):
    return registry.get("head", name).options


@pytest.mark.parametrize("name", ["linear", "mlp"])
@pytest.mark.parametrize("dropout", [1.5, 1.0, -0.1])
def test_dropout_out_of_range_is_rejected(registry, name, dropout):
    with pytest.raises(ValueError, match="dropout"):
        options_cls(registry, name)(dropout=dropout)


@pytest.mark.parametrize("name", ["linear", "mlp"])
def test_dropout_validator_called_like_the_config_decoder(registry, name):
    cls = options_cls(registry, name)
    attribute = attrs.fields(cls).dropout
    attribute.validator(None, attribute, 0.0)
    attribute.validator(None, attribute, 0.99)
    with pytest.raises(ValueError):
        attribute.validator(None, attribute, 1.5)


@pytest.mark.parametrize("bad", [{"hidden_dims": []}, {"hidden_dims": [0]},
                                 {"hidden_dims": [256, -4]}, {"activation": "swish"}])
def test_bad_mlp_options_are_rejected(registry, bad):
    with pytest.raises(ValueError):
        options_cls(registry, "mlp")(**bad)


def test_mlp_hidden_dims_list_becomes_a_hashable_tuple(registry):
    options = options_cls(registry, "mlp")(hidden_dims=[512, 128])
    assert options.hidden_dims == (512, 128)
    assert options == options_cls(registry, "mlp")(hidden_dims=(512, 128))
    hash(options)


def fixed_batch():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 12, generator=generator)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return x, y


@pytest.mark.parametrize("name,options", HEAD_CASES)
def test_head_trains(registry, name, options):
    torch.manual_seed(0)
    head = build(registry, name, 12, 2, **options)
    x, y = fixed_batch()
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)

    def loss_now():
        head.eval()
        with torch.no_grad():
            return nn.functional.cross_entropy(head(x), y).item()

    before = loss_now()
    head.train()
    loss = nn.functional.cross_entropy(head(x), y)
    loss.backward()
    for pname, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, pname
    optimizer.step()
    for _ in range(30):
        head.train()
        optimizer.zero_grad()
        nn.functional.cross_entropy(head(x), y).backward()
        optimizer.step()
    assert loss_now() < 0.8 * before
