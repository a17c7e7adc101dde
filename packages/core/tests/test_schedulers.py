"""Built-in LR schedules through the registry: the LR at chosen steps of a real run."""

import importlib.metadata as md
import math

import pytest
import torch
from torch import nn

import cm.plugins
import cm.registry
from cm.config.decode import make_converter

LR = 0.1
STEPS = 100  # warmup_ratio 0.1 -> 10 warmup steps


@pytest.fixture(scope="module")
def registry():
    entry_point = md.EntryPoint(name="core", value="cm.builtin.plugin", group="cm")
    return cm.registry.build_registry(cm.plugins.discover(entry_points=[entry_point]))


def build(registry, name, optimizer, steps=STEPS, **options):
    component = registry.get("scheduler", name)
    return component.build(
        component.options(**options), optimizer=optimizer, num_training_steps=steps
    )


def run(registry, name, steps=STEPS, extra=0, **options):
    """Train a tiny model for ``steps + extra`` steps; returns (LR used at each step, losses)."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    scheduler = build(registry, name, optimizer, steps, **options)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR)
    x = torch.randn(16, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    lrs, losses = [], []
    for _ in range(steps + extra):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.zero_grad()
        loss = ((model(x)[:, 0] - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    lrs.append(optimizer.param_groups[0]["lr"])  # after the last step
    return lrs, losses


def test_registers_the_three_schedules(registry):
    assert registry.names("scheduler") == ["constant", "cosine", "linear"]
    assert registry.failures == []


@pytest.mark.parametrize("name", ["linear", "cosine", "constant"])
def test_warmup_rises_linearly_to_the_peak(registry, name):
    lrs, losses = run(registry, name)
    assert lrs[0] == 0.0
    assert lrs[5] == pytest.approx(LR * 0.5)
    assert lrs[10] == pytest.approx(LR)  # the peak
    assert max(lrs) == pytest.approx(LR)
    assert losses[-1] < losses[0] / 10  # the tiny regression actually trained


def test_linear_decays_to_zero(registry):
    lrs, _ = run(registry, "linear", extra=5)
    assert lrs[55] == pytest.approx(LR * 0.5)
    assert lrs[90] == pytest.approx(LR * 10 / 90)
    assert lrs[100] == 0.0
    assert lrs[105] == 0.0  # stepping past the end stays at 0
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))


def test_cosine_midpoint_and_end(registry):
    lrs, _ = run(registry, "cosine", extra=5)
    assert lrs[55] == pytest.approx(LR * 0.5)  # halfway through the decay
    assert lrs[33] == pytest.approx(LR * 0.5 * (1 + math.cos(math.pi * 23 / 90)))
    assert lrs[100] == pytest.approx(0.0, abs=1e-12)
    assert lrs[105] == pytest.approx(0.0, abs=1e-12)


def test_cosine_ends_at_min_lr_ratio(registry):
    lrs, _ = run(registry, "cosine", extra=5, min_lr_ratio=0.2)
    assert lrs[10] == pytest.approx(LR)
    assert lrs[55] == pytest.approx(LR * (0.2 + 0.8 * 0.5))
    assert lrs[100] == pytest.approx(LR * 0.2)
    assert lrs[105] == pytest.approx(LR * 0.2)


def test_constant_holds_the_peak(registry):
    lrs, _ = run(registry, "constant")
    assert lrs[10:] == pytest.approx([LR] * 91)


def test_no_warmup_starts_at_the_peak(registry):
    lrs, _ = run(registry, "linear", steps=10, warmup_ratio=0.0)
    assert lrs[:3] == pytest.approx([LR, LR * 0.9, LR * 0.8])


def test_any_warmup_lasts_at_least_one_step(registry):
    lrs, _ = run(registry, "constant", steps=5, warmup_ratio=0.1)
    assert lrs[:2] == [0.0, LR]


def test_group_lrs_keep_their_proportions(registry):
    head, body = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [head], "lr": 1e-2}, {"params": [body], "lr": 1e-3}])
    scheduler = build(registry, "cosine", optimizer)
    for _ in range(40):
        optimizer.step()
        scheduler.step()
    head_lr, body_lr = (g["lr"] for g in optimizer.param_groups)
    assert head_lr == pytest.approx(10 * body_lr)
    assert 0 < body_lr < 1e-3


def test_zero_training_steps_is_rejected(registry):
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=LR)
    with pytest.raises(ValueError, match="num_training_steps"):
        build(registry, "linear", optimizer, steps=0)


@pytest.mark.parametrize(
    "name,options",
    [
        ("linear", {"warmup_ratio": 1.0}),
        ("linear", {"warmup_ratio": -0.1}),
        ("constant", {"warmup_ratio": 1.5}),
        ("cosine", {"warmup_ratio": 1.0}),
        ("cosine", {"min_lr_ratio": 1.5}),
        ("cosine", {"min_lr_ratio": -0.1}),
    ],
)
def test_validators_reject_bad_values(registry, name, options):
    with pytest.raises(ValueError):
        registry.get("scheduler", name).options(**options)


def test_options_decode_from_toml_values(registry):
    converter = make_converter(registry)
    cosine = registry.get("scheduler", "cosine").options
    assert converter.structure({"warmup_ratio": 0, "min_lr_ratio": 0.1}, cosine) == cosine(
        warmup_ratio=0.0, min_lr_ratio=0.1
    )
    assert registry.get("scheduler", "linear").options().warmup_ratio == 0.1


@pytest.mark.parametrize("name", ["linear", "cosine", "constant"])
def test_the_logged_lr_is_train_lr_as_scheduled_whatever_the_groups(registry, name):
    """train/lr follows train.lr's schedule; with layer-wise decay the first parameter group
    (the embeddings) runs at a fraction of it and would log another curve."""
    from cm.train.loop import scheduled_lr
    from cm.train.param_groups import param_groups

    model = nn.ModuleDict({"embeddings": nn.Linear(2, 2),
                           "encoder": nn.ModuleDict({"layer": nn.ModuleList(
                               [nn.Linear(2, 2), nn.Linear(2, 2)])}),
                           "head": nn.Linear(2, 1)})
    groups = param_groups(model, LR, 0.01, head_lr=0.5, layerwise_lr_decay=0.5)
    assert groups[0]["name"].startswith("embeddings") and groups[0]["lr"] < LR / 4
    optimizer = torch.optim.SGD(groups, lr=LR)
    scheduler = build(registry, name, optimizer)
    plain_lrs, _ = run(registry, name)  # one group at LR: its rate is the schedule's value
    for step in range(STEPS):
        assert scheduled_lr(optimizer, LR) == pytest.approx(plain_lrs[step], abs=1e-12)
        optimizer.step()
        scheduler.step()
