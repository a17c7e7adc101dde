"""Built-in losses, built through the registry, against hand-computed and torch values."""

import importlib.metadata as md
import math
import tomllib

import attrs
import pytest
import tomli_w
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

import cm.plugins
import cm.registry
from cm.config.decode import make_converter
from cm.config.dump import to_dict

LN2 = math.log(2.0)


@pytest.fixture(scope="module")
def registry():
    entry_point = md.EntryPoint(name="core", value="cm.builtin.plugin", group="cm")
    return cm.registry.build_registry(cm.plugins.discover(entry_points=[entry_point]))


def build(registry, name, weight=None, **options):
    """The loss ``name`` with ``options``; ``weight`` is the caller's train-split n_neg/n_pos."""
    component = registry.get("loss", name)
    return component.build(component.options(**options), pos_weight=weight)


# Fixed inputs: two positives, two negatives, logits of mixed sign and confidence.
LOGITS = torch.tensor([[0.5], [-1.0], [2.0], [0.0]])
LABELS = torch.tensor([1, 0, 0, 1])


def hand_bce(logits, labels, pos_weight=1.0):
    total = 0.0
    for x, y in zip(logits, labels, strict=True):
        p = 1.0 / (1.0 + math.exp(-x))
        total += -(pos_weight * y * math.log(p) + (1 - y) * math.log(1 - p))
    return total / len(logits)


def test_registers_the_three_losses(registry):
    assert registry.names("loss") == ["bce", "focal", "weighted_ce"]
    assert registry.failures == []
    assert {build(registry, n).num_logits for n in ("bce", "focal")} == {1}
    assert build(registry, "weighted_ce").num_logits == 2


def test_bce_matches_hand_computed_value_without_pos_weight(registry):
    loss = build(registry, "bce")
    expected = hand_bce([0.5, -1.0, 2.0, 0.0], [1, 0, 0, 1])
    assert loss(LOGITS, LABELS).item() == pytest.approx(expected, rel=1e-6)


def test_bce_pos_weight_scales_the_positive_terms(registry):
    # Zero logits: every term is ln 2, positives count pos_weight times.
    zeros, labels = torch.zeros(2, 1), torch.tensor([1.0, 0.0])
    assert build(registry, "bce")(zeros, labels).item() == pytest.approx(LN2)
    assert build(registry, "bce", weight=3.0)(zeros, labels).item() == pytest.approx(2 * LN2)
    weighted = build(registry, "bce", weight=3.0)(LOGITS, LABELS).item()
    expected = hand_bce([0.5, -1.0, 2.0, 0.0], [1, 0, 0, 1], pos_weight=3.0)
    assert weighted == pytest.approx(expected, rel=1e-6)
    reference = F.binary_cross_entropy_with_logits(
        LOGITS[:, 0], LABELS.float(), pos_weight=torch.tensor(3.0)
    )
    assert weighted == pytest.approx(reference.item(), rel=1e-6)


def test_bce_explicit_pos_weight_wins_and_auto_can_be_turned_off(registry):
    zeros, labels = torch.zeros(2, 1), torch.tensor([1, 0])
    explicit = build(registry, "bce", weight=3.0, pos_weight=5.0)
    assert explicit(zeros, labels).item() == pytest.approx(3 * LN2)  # (5 + 1) / 2 * ln 2
    off = build(registry, "bce", weight=3.0, auto_pos_weight=False)
    assert off(zeros, labels).item() == pytest.approx(LN2)


def test_bce_probabilities_and_shapes(registry):
    loss = build(registry, "bce")
    probs = loss.probabilities(torch.tensor([[0.0], [math.log(3.0)]]))
    assert probs.shape == (2,)
    assert probs.tolist() == pytest.approx([0.5, 0.75])
    with pytest.raises(ValueError, match=r"\[N, 1\]"):
        loss(torch.zeros(2, 2), torch.tensor([0, 1]))


def test_bce_pos_weight_follows_the_module_to_another_dtype(registry):
    loss = build(registry, "bce", weight=3.0).to(torch.float64)
    value = loss(LOGITS.double(), LABELS)
    assert value.dtype == torch.float64


def test_weighted_ce_class_weights_from_pos_weight(registry):
    # Sample 1: label 1, P(match) = 3/4. Sample 2: label 0, logits equal -> ln 2.
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])
    labels = torch.tensor([1, 0])
    l1, l2 = -math.log(0.75), LN2
    plain = build(registry, "weighted_ce")(logits, labels).item()
    assert plain == pytest.approx((l1 + l2) / 2)
    weighted = build(registry, "weighted_ce", weight=3.0)(logits, labels).item()
    assert weighted == pytest.approx((3 * l1 + 1 * l2) / (3 + 1))
    reference = F.cross_entropy(logits, labels, weight=torch.tensor([1.0, 3.0]))
    assert weighted == pytest.approx(reference.item(), rel=1e-6)
    off = build(registry, "weighted_ce", weight=3.0, auto_class_weights=False)
    assert off(logits, labels).item() == pytest.approx(plain)


def test_weighted_ce_weights_are_normalised_and_explicit_ones_win(registry):
    loss = build(registry, "weighted_ce", weight=3.0)
    assert loss.class_weights.tolist() == pytest.approx([0.5, 1.5])
    explicit = build(registry, "weighted_ce", weight=3.0, class_weights=[2.0, 8.0])
    assert explicit.class_weights.tolist() == pytest.approx([0.4, 1.6])


def test_weighted_ce_label_smoothing_and_float_labels(registry):
    logits = torch.tensor([[1.0, -0.5], [0.2, 0.7], [-1.0, 2.0]])
    labels = torch.tensor([0.0, 1.0, 1.0])
    loss = build(registry, "weighted_ce", weight=2.0, label_smoothing=0.1)
    reference = F.cross_entropy(
        logits, labels.long(), weight=torch.tensor([1.0, 2.0]) * 2 / 3, label_smoothing=0.1
    )
    assert loss(logits, labels).item() == pytest.approx(reference.item(), rel=1e-6)
    probs = loss.probabilities(logits)
    assert probs.tolist() == pytest.approx(torch.softmax(logits, -1)[:, 1].tolist())


def test_focal_with_gamma_zero_and_no_alpha_equals_bce(registry):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(32, 1, generator=generator) * 3
    labels = torch.randint(0, 2, (32,), generator=generator)
    focal = build(registry, "focal", gamma=0.0, alpha=None)(logits, labels)
    bce = build(registry, "bce")(logits, labels)
    assert focal.item() == pytest.approx(bce.item(), rel=1e-6)


def test_focal_matches_hand_computed_value(registry):
    # Zero logits: ce = ln 2, p_t = 1/2, modulating factor (1/2)^2 = 1/4,
    # alpha_t = 0.25 for the positive and 0.75 for the negative.
    value = build(registry, "focal")(torch.zeros(2, 1), torch.tensor([1, 0])).item()
    assert value == pytest.approx((0.25 + 0.75) * 0.25 * LN2 / 2)


def test_focal_down_weights_easy_examples(registry):
    easy = torch.tensor([[4.0]])  # confidently right for a positive
    label = torch.tensor([1])
    focal = build(registry, "focal", gamma=2.0, alpha=None)(easy, label).item()
    bce = build(registry, "bce")(easy, label).item()
    p = 1 / (1 + math.exp(-4.0))
    assert focal == pytest.approx(bce * (1 - p) ** 2, rel=1e-5)
    assert focal < bce / 1000


def test_focal_ignores_pos_weight(registry):
    with_weight = build(registry, "focal", weight=10.0)(LOGITS, LABELS)
    without = build(registry, "focal")(LOGITS, LABELS)
    assert with_weight.item() == without.item()


@pytest.mark.parametrize("name", ["bce", "weighted_ce", "focal"])
def test_losses_train_a_tiny_classifier(registry, name):
    torch.manual_seed(0)
    loss = build(registry, name, weight=2.0)
    features = torch.randn(64, 4)
    labels = (features[:, 0] > 0).long()
    model = torch.nn.Linear(4, loss.num_logits)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    first = loss(model(features), labels).item()
    for _ in range(30):
        optimizer.zero_grad()
        loss(model(features), labels).backward()
        optimizer.step()
    assert loss(model(features), labels).item() < first / 2
    # Ranking, not accuracy at 0.5: focal's alpha = 0.25 moves the decision threshold.
    probabilities = loss.probabilities(model(features)).detach()
    assert probabilities.shape == (64,)
    assert roc_auc_score(labels.numpy(), probabilities.numpy()) > 0.95


@pytest.mark.parametrize(
    "name,options",
    [
        ("bce", {"pos_weight": 0.0}),
        ("bce", {"pos_weight": -1.0}),
        ("weighted_ce", {"label_smoothing": 1.0}),
        ("weighted_ce", {"label_smoothing": -0.1}),
        ("weighted_ce", {"class_weights": [1.0]}),
        ("weighted_ce", {"class_weights": [1.0, 2.0, 3.0]}),
        ("weighted_ce", {"class_weights": [1.0, 0.0]}),
        ("focal", {"gamma": -0.5}),
        ("focal", {"alpha": 1.5}),
        ("focal", {"alpha": -0.1}),
    ],
)
def test_validators_reject_bad_values(registry, name, options):
    with pytest.raises(ValueError):
        registry.get("loss", name).options(**options)


@pytest.mark.parametrize("name", ["bce", "weighted_ce", "focal"])
def test_options_round_trip_through_toml(registry, name):
    options_class = registry.get("loss", name).options
    converter = make_converter(registry)
    defaults = options_class()
    assert (
        converter.structure(tomllib.loads(tomli_w.dumps(to_dict(defaults))), options_class)
        == defaults
    )
    changed = {
        "bce": {"pos_weight": 4.0},
        "weighted_ce": {"class_weights": [1, 3]},
        "focal": {"gamma": 1, "alpha": 0.5},
    }[name]
    structured = converter.structure(changed, options_class)
    assert attrs.asdict(structured) == {**attrs.asdict(defaults), **changed}
