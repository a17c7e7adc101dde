"""Built-in optimizers through the registry, and the param_groups LR / weight-decay split."""

import importlib.metadata as md
import sys
import types

import pytest
import torch
from torch import nn

import cm.plugins
import cm.registry
from cm.builtin import adamw
from cm.config.decode import make_converter
from cm.errors import UserError
from cm.train.param_groups import param_groups


@pytest.fixture(scope="module")
def registry():
    entry_point = md.EntryPoint(name="core", value="cm.builtin.plugin", group="cm")
    return cm.registry.build_registry(cm.plugins.discover(entry_points=[entry_point]))


def build(registry, name, groups, lr=1e-2, **options):
    component = registry.get("optimizer", name)
    return component.build(component.options(**options), param_groups=groups, lr=lr)


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.dense = nn.Linear(width, width)
        self.LayerNorm = nn.LayerNorm(width)

    def forward(self, x):
        return self.LayerNorm(torch.relu(self.dense(x)))


class Tiny(nn.Module):
    """Names like a cross-encoder: backbone.{embeddings, encoder.layer.<i>}, pooling, head."""

    def __init__(self, width=4, layers=2):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.embeddings = Block(width)
        self.backbone.encoder = nn.Module()
        self.backbone.encoder.layer = nn.ModuleList(Block(width) for _ in range(layers))
        self.pooling = nn.Linear(width, width)
        self.head = nn.Linear(width, 1)

    def forward(self, x):
        x = self.backbone.embeddings(x)
        for block in self.backbone.encoder.layer:
            x = block(x)
        return self.head(torch.tanh(self.pooling(x)))


def settings(groups, model):
    """Parameter name -> (lr, weight_decay), asserting each parameter is in one group."""
    names = {id(p): n for n, p in model.named_parameters()}
    result = {}
    for group in groups:
        for param in group["params"]:
            name = names[id(param)]
            assert name not in result, f"{name} is in two groups"
            result[name] = (group["lr"], group["weight_decay"])
    return result


def test_registers_both_optimizers(registry):
    assert registry.names("optimizer") == ["adamw", "adamw_8bit"]
    assert registry.failures == []


def test_param_groups_without_decay_split_only_weight_decay():
    model = Tiny()
    result = settings(param_groups(model, lr=1e-3, weight_decay=0.01), model)
    assert set(result) == {n for n, _ in model.named_parameters()}
    assert {lr for lr, _ in result.values()} == {1e-3}
    for name, (_, decay) in result.items():
        no_decay = name.endswith(".bias") or ".LayerNorm." in name
        assert decay == (0.0 if no_decay else 0.01), name


def test_param_groups_head_lr_and_layerwise_decay():
    model = Tiny()
    groups = param_groups(model, lr=1e-3, weight_decay=0.01, head_lr=1e-2, layerwise_lr_decay=0.5)
    result = settings(groups, model)
    # L = 2 layers: layer i gets lr * d ** (L - i), embeddings lr * d ** (L + 1).
    expected = {
        "backbone.embeddings.": 1e-3 * 0.5**3,
        "backbone.encoder.layer.0.": 1e-3 * 0.5**2,
        "backbone.encoder.layer.1.": 1e-3 * 0.5**1,
        "pooling.": 1e-2,
        "head.": 1e-2,
    }
    for name, (lr, decay) in result.items():
        prefix = next(p for p in expected if name.startswith(p))
        assert lr == pytest.approx(expected[prefix]), name
        assert decay == (0.0 if name.endswith("bias") or "LayerNorm" in name else 0.01), name
    assert result["backbone.encoder.layer.0.LayerNorm.weight"][1] == 0.0
    assert result["backbone.encoder.layer.0.dense.weight"][1] == 0.01
    assert result["head.bias"] == (1e-2, 0.0)
    assert len(groups) == 8  # (embeddings, layer.0, layer.1, head) x (decay, no decay)
    assert all(isinstance(g["name"], str) for g in groups)


def test_param_groups_other_backbone_params_get_the_top_layer_rate():
    model = Tiny()
    model.backbone.encoder.rel_embeddings = nn.Embedding(3, 4)
    groups = param_groups(model, lr=1e-3, weight_decay=0.0, layerwise_lr_decay=0.5)
    lr, _ = settings(groups, model)["backbone.encoder.rel_embeddings.weight"]
    assert lr == pytest.approx(1e-3 * 0.5)


def test_param_groups_skip_frozen_and_list_tied_weights_once():
    model = Tiny()
    for param in model.backbone.embeddings.parameters():
        param.requires_grad = False
    model.pooling.weight = model.backbone.encoder.layer[1].dense.weight  # tied
    groups = param_groups(model, lr=1e-3, weight_decay=0.01)
    params = [p for g in groups for p in g["params"]]
    assert len(params) == len({id(p) for p in params})
    assert not any(p is model.backbone.embeddings.dense.weight for p in params)
    torch.optim.AdamW(groups)  # torch rejects a parameter listed twice


def train(optimizer, model, steps=25):
    torch.manual_seed(1)
    x = torch.randn(32, 4)
    y = (x[:, 0] > 0).float()
    loss_fn = nn.BCEWithLogitsLoss()
    first = loss_fn(model(x)[:, 0], y).item()
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn(model(x)[:, 0], y).backward()
        optimizer.step()
    return first, loss_fn(model(x)[:, 0], y).item()


def test_adamw_trains_and_keeps_the_group_settings(registry):
    torch.manual_seed(0)
    model = Tiny()
    groups = param_groups(model, lr=1e-2, weight_decay=0.01, head_lr=3e-2, layerwise_lr_decay=0.8)
    optimizer = build(registry, "adamw", groups, lr=1e-2, betas=[0.8, 0.99], eps=1e-6)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["betas"] == (0.8, 0.99) and optimizer.defaults["eps"] == 1e-6
    by_name = {g["name"]: g for g in optimizer.param_groups}
    assert by_name["head/decay"]["lr"] == 3e-2
    assert by_name["layer.1/decay"]["lr"] == pytest.approx(1e-2 * 0.8)
    assert by_name["embeddings/no_decay"]["weight_decay"] == 0.0
    before = model.head.weight.detach().clone()
    first, last = train(optimizer, model)
    assert last < first * 0.5
    assert not torch.equal(before, model.head.weight)


def test_adamw_lr_is_the_default_for_groups_without_one(registry):
    weight = nn.Parameter(torch.ones(2))
    optimizer = build(registry, "adamw", [{"params": [weight]}], lr=0.5)
    assert optimizer.param_groups[0]["lr"] == 0.5


def test_fused_adamw_runs_on_cpu_and_matches_the_unfused_step(registry):
    torch.manual_seed(0)
    models = [Tiny(), Tiny()]
    models[1].load_state_dict(models[0].state_dict())
    for model, fused in zip(models, (False, True), strict=True):
        groups = param_groups(model, lr=1e-2, weight_decay=0.01)
        optimizer = build(registry, "adamw", groups, fused=fused)
        assert optimizer.defaults["fused"] is (True if fused else None)
        train(optimizer, model, steps=1)  # more steps amplify rounding (Adam ~ sign of grad)
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_fused_adamw_on_other_devices_is_a_user_error(registry):
    groups = [{"params": [nn.Parameter(torch.ones(2, device="meta"))]}]
    with pytest.raises(UserError, match="fused AdamW runs on CPU and CUDA") as info:
        build(registry, "adamw", groups, fused=True)
    assert "fused = false" in str(info.value)


def test_adamw_8bit_without_bitsandbytes_is_a_user_error(registry, monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import raises ImportError
    groups = param_groups(Tiny(), lr=1e-3, weight_decay=0.01)
    with pytest.raises(UserError) as info:
        build(registry, "adamw_8bit", groups)
    message = str(info.value)
    assert "bitsandbytes is not installed" in message
    assert "pip install bitsandbytes" in message and "CUDA GPU" in message
    assert "'adamw'" in message


def fake_bitsandbytes(monkeypatch):
    calls = []

    class AdamW8bit:
        def __init__(self, params, **kwargs):
            calls.append((params, kwargs))

    module = types.SimpleNamespace(optim=types.SimpleNamespace(AdamW8bit=AdamW8bit))
    monkeypatch.setattr(adamw, "_bitsandbytes", lambda: module)
    return calls


def test_adamw_8bit_without_cuda_is_a_user_error(registry, monkeypatch):
    fake_bitsandbytes(monkeypatch)
    groups = param_groups(Tiny(), lr=1e-3, weight_decay=0.01)
    with pytest.raises(UserError, match="not on a CUDA GPU") as info:
        build(registry, "adamw_8bit", groups)
    assert "use optimizer 'adamw'" in str(info.value)


def test_adamw_8bit_passes_groups_and_options_to_bitsandbytes(registry, monkeypatch):
    calls = fake_bitsandbytes(monkeypatch)
    monkeypatch.setattr(adamw, "_on_cuda", lambda groups: True)
    groups = param_groups(Tiny(), lr=1e-3, weight_decay=0.01)
    build(registry, "adamw_8bit", groups, lr=2e-3, betas=[0.9, 0.95])
    assert calls == [(groups, {"lr": 2e-3, "betas": (0.9, 0.95), "eps": 1e-8})]


@pytest.mark.parametrize(
    "name,options",
    [
        ("adamw", {"betas": [0.9]}),
        ("adamw", {"betas": [0.9, 0.999, 0.9]}),
        ("adamw", {"betas": [1.0, 0.999]}),
        ("adamw", {"betas": [0.9, -0.1]}),
        ("adamw", {"eps": 0.0}),
        ("adamw_8bit", {"betas": [0.9, 1.5]}),
        ("adamw_8bit", {"eps": -1e-8}),
    ],
)
def test_validators_reject_bad_values(registry, name, options):
    with pytest.raises(ValueError):
        registry.get("optimizer", name).options(**options)


def test_options_decode_from_toml_values(registry):
    converter = make_converter(registry)
    options_class = registry.get("optimizer", "adamw").options
    options = converter.structure(
        {"betas": [0.9, 0.98], "eps": 1e-6, "fused": False}, options_class
    )
    assert options == options_class(betas=[0.9, 0.98], eps=1e-6)
    assert options_class().betas == [0.9, 0.999]
    assert options_class().betas is not options_class().betas  # no shared mutable default
