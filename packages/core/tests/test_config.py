"""Strict config decoding: every error class with its path, overrides, inheritance, round trip."""

import re
import sys
import tomllib
import types

import attrs
import pluggy
import pytest
from attrs.validators import ge, lt
from hypothesis import given, settings
from hypothesis import strategies as st

from cm import hookspecs
from cm.config.decode import ConfigError, decode
from cm.config.dump import dumps, flatten
from cm.config.keys import parse_key
from cm.config.load import apply_overrides, load_experiment, read_with_bases
from cm.config.schema import Experiment
from cm.errors import UserError
from cm.hookspecs import hookimpl
from cm.plugins import PluginInfo, Plugins
from cm.registry import build_registry, get_registry
from cm.testing import DEMO_EXPERIMENT


@attrs.frozen
class MlpOptions:
    hidden_dims: list[int] = [256]
    activation: str = "relu"
    dropout: float = attrs.field(default=0.1, validator=[ge(0.0), lt(1.0)])


@attrs.frozen
class FocalOptions:
    gamma: float = attrs.field(default=2.0, validator=ge(0.0))
    alpha: float | None = None


def _plugin():
    module = types.ModuleType("cm_test_config_plugin")

    def make(kind_hook, *entries):
        @hookimpl(specname=kind_hook)
        def hook(register):
            for name, options in entries:
                if options is None:
                    register(name, object)
                else:
                    register(name, object, options=options)
        setattr(module, kind_hook, hook)

    make("register_heads", ("linear", None), ("mlp", MlpOptions))
    make("register_poolings", ("cls", None), ("mean", None))
    make("register_losses", ("bce", None), ("focal", FocalOptions))
    make("register_optimizers", ("adamw", None))
    make("register_schedulers", ("linear", None), ("cosine", None))
    make("register_datasets", ("demo", None))
    make("register_optimizations", ("tf32", None))
    make("register_trackers", ("mlflow", None))
    return module


@pytest.fixture(scope="module")
def registry():
    manager = pluggy.PluginManager("cm")
    manager.add_hookspecs(hookspecs)
    manager.register(_plugin(), name="test")
    return build_registry(Plugins(manager, {"test": PluginInfo("test", "cm-test", "0")}))


def problems(raw, registry):
    with pytest.raises(ConfigError) as info:
        decode(raw, "exp.toml", registry=registry)
    return info.value.problems


def test_empty_file_is_the_default_experiment(registry):
    experiment = decode({}, registry=registry)
    assert experiment.train.lr == 2e-5 and experiment.model.head.name == "linear"
    assert experiment.train.loss.options is not None  # defaults filled in


def test_unknown_key_with_close_match(registry):
    assert problems({"train": {"lrr": 1e-5}}, registry) == [
        "$.train.lrr: unknown key; did you mean 'lr'?"]


def test_unknown_key_without_close_match_lists_known_keys(registry):
    [problem] = problems({"model": {"colour": "red"}}, registry)
    assert problem.startswith("$.model.colour: unknown key (known: backbone, pooling, head")


def test_unknown_component_name(registry):
    assert problems({"model": {"head": {"name": "mlpp"}}}, registry) == [
        "$.model.head.name: 'mlpp' is not a registered head (known: linear, mlp); "
        "did you mean 'mlp'?"]


def test_component_options_are_strict(registry):
    assert problems({"model": {"head": {"name": "mlp", "dropuot": 0.2}}}, registry) == [
        "$.model.head.dropuot: unknown key; did you mean 'dropout'?"]
    assert problems({"model": {"head": {"name": "linear", "dropout": 0.2}}}, registry) == [
        "$.model.head.dropout: unknown key (this takes no options)"]


def test_wrong_types_are_not_coerced(registry):
    assert problems({"train": {"epochs": 2.5, "lr": "fast"}, "seed": True}, registry) == [
        "$.seed: expected integer, got boolean True",
        "$.train.epochs: expected integer, got float 2.5",
        "$.train.lr: expected float, got string 'fast'"]


def test_choice_out_of_set(registry):
    assert problems({"data": {"truncation": "tail"}}, registry) == [
        "$.data.truncation: must be one of 'head', 'head_tail', 'windows'; got 'tail'; "
        "did you mean 'head_tail'?"]


def test_out_of_range_values_all_reported(registry):
    found = problems({"train": {"lr": -1.0, "epochs": 0},
                      "model": {"head": {"name": "mlp", "dropout": 1.5}}}, registry)
    assert found == ["$.model.head.dropout: 'dropout' must be < 1.0: 1.5",
                     "$.train.epochs: 'epochs' must be >= 1: 0",
                     "$.train.lr: 'lr' must be > 0.0: -1.0"]


def test_cross_field_rules(registry):
    assert problems({"data": {"max_length": 64, "stride": 64}}, registry) == [
        "$.data.stride: must be smaller than max_length (64)"]
    assert problems({"hpo": {"space": {"train.lr": {"type": "float", "low": 0.2, "high": 0.1}}}},
                    registry) == ['$.hpo.space."train.lr".high: must be greater than low (0.2)']
    # each edge is also set on the experiment: a bound the key refuses is named there
    assert problems({"hpo": {"space": {"train.lr": {"type": "float", "low": 1.0, "high": 0.5}}}},
                    registry) == ['$.hpo.space."train.lr".high: must be greater than low (1.0)',
                                  '$.hpo.space."train.lr": setting it to 1.0 fails: $.train.lr: '
                                  "'lr' must be < 1.0: 1.0 — fix the key or the bounds/choices"]
    assert problems({"data": {"fold": 2}}, registry) == [
        "$.data.fold: names a cross-validation fold: set data.folds too, or remove it"]
    assert problems({"data": {"folds": 3, "fold": 4}}, registry) == [
        "$.data.fold: must be 1 .. data.folds (3); got 4"]


def test_named_tables_for_optimizations_and_trackers(registry):
    experiment = decode({"optimizations": {"tf32": {}}, "tracking": {"mlflow": {}}},
                        registry=registry)
    assert list(experiment.optimizations) == ["tf32"]
    assert problems({"optimizations": {"tf33": {}}}, registry) == [
        "$.optimizations.tf33.name: 'tf33' is not a registered optimization (known: tf32); "
        "did you mean 'tf32'?"]


def test_all_errors_of_a_file_at_once(registry):
    found = problems({"train": {"lrr": 1, "epochs": "x"}, "data": {"level": "word"},
                      "model": {"pooling": {"name": "avg"}}}, registry)
    assert len(found) == 4
    assert [p.split(":")[0] for p in found] == [
        "$.data.level", "$.model.pooling.name", "$.train.epochs", "$.train.lrr"]


# (key, a value of the wrong type) and (key, a value of the right type out of range)
TYPE_ERRORS = [("train.lr", "nan"), ("train.epochs", '"x"'), ("data.split", '[0.5, "a", 0.5]'),
               ("seed", "1.5"), ("eval.thresholds", "true")]
RANGE_ERRORS = [("train.epochs", "-1"), ("train.batch_size", "0"), ("data.max_length", "100000"),
                ("eval.bootstrap_resamples", "1000000000"), ("model.tiny.num_layers", "1000")]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(TYPE_ERRORS + RANGE_ERRORS), min_size=1, max_size=6,
                unique_by=lambda pair: pair[0]))
def test_every_bad_value_is_reported_even_beside_type_errors(registry, bad):
    """Validators run where another key has a type error: each bad key is named once."""
    with pytest.raises(ConfigError) as info:
        decode(apply_overrides({}, [f"{key}={value}" for key, value in bad]), "x.toml",
               registry=registry)
    paths = [problem.split(":")[0].split("[")[0] for problem in info.value.problems]
    assert sorted(paths) == sorted(f"$.{key}" for key, _ in bad)


def test_type_and_range_errors_together():
    with pytest.raises(ConfigError) as info:
        load_experiment(DEMO_EXPERIMENT, ["train.lr=nan", "train.epochs=-1"],
                        registry=get_registry())
    assert info.value.problems == ["$.train.lr: expected a finite number, got nan",
                                   "$.train.epochs: 'epochs' must be >= 1: -1"]


@pytest.mark.parametrize("key", ["train..lr", ".train.lr", "train.lr.", "train.\"\".lr",
                                 'train."lr'])
def test_malformed_dotted_keys_are_refused(key):
    with pytest.raises(UserError, match=f"--set '{re.escape(key)}': not a dotted key"):
        apply_overrides({}, [f"{key}=0.5"])


names = st.text(st.characters(codec="ascii", exclude_characters='"'), min_size=1, max_size=8)


def written(name: str) -> str:
    return f'"{name}"' if "." in name else name


@given(st.lists(names, min_size=1, max_size=4))
def test_a_dotted_key_splits_into_its_names(parts):
    assert parse_key(".".join(written(p) for p in parts)) == parts


@given(st.lists(names, min_size=1, max_size=4), st.integers(0, 4))
def test_an_empty_part_anywhere_is_refused(parts, at):
    written_parts = [written(p) for p in parts]
    written_parts.insert(min(at, len(written_parts)), "")
    with pytest.raises(UserError, match="not a dotted key"):
        parse_key(".".join(written_parts))


def test_overrides_parse_toml_values(tmp_path, registry):
    path = tmp_path / "exp.toml"
    path.write_text('name = "x"\n[train]\nlr = 1e-5\n')
    experiment = load_experiment(
        path, ["train.lr=3e-5", "train.epochs=2", "data.split=[0.6, 0.2, 0.2]",
               "model.head={ name = 'mlp', hidden_dims = [8] }", "model.backbone=/models/x"],
        registry=registry)
    assert experiment.train.lr == 3e-5 and experiment.train.epochs == 2
    assert experiment.data.split == (0.6, 0.2, 0.2)
    assert experiment.model.head.options.hidden_dims == [8]
    assert experiment.model.backbone == "/models/x"


def test_override_errors(registry):
    with pytest.raises(UserError, match="expected key=value"):
        apply_overrides({}, ["train.lr"])
    assert parse_key('hpo.space."train.lr".low') == ["hpo", "space", "train.lr", "low"]
    with pytest.raises(ConfigError) as info:
        decode(apply_overrides({}, ["train.lrr=1"]), "exp.toml", registry=registry)
    assert info.value.problems == ["$.train.lrr: unknown key; did you mean 'lr'?"]


def test_base_inheritance_relative_to_file(tmp_path, registry):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "base.toml").write_text(
        'name = "base"\nseed = 1\n[train]\nlr = 1e-5\nepochs = 3\n'
        '[model.head]\nname = "mlp"\nhidden_dims = [64]\n')
    (tmp_path / "child.toml").write_text(
        'base = "shared/base.toml"\nname = "child"\n[train]\nepochs = 7\n')
    experiment = load_experiment(tmp_path / "child.toml", registry=registry)
    assert (experiment.name, experiment.seed) == ("child", 1)
    assert (experiment.train.lr, experiment.train.epochs) == (1e-5, 7)
    assert experiment.model.head.options.hidden_dims == [64]


def test_changing_a_component_name_drops_the_base_options(tmp_path, registry):
    (tmp_path / "base.toml").write_text('[model.head]\nname = "mlp"\nhidden_dims = [64]\n')
    (tmp_path / "child.toml").write_text('base = "base.toml"\n[model.head]\nname = "linear"\n')
    experiment = load_experiment(tmp_path / "child.toml", registry=registry)
    assert experiment.model.head.name == "linear"


def test_base_errors(tmp_path):
    (tmp_path / "a.toml").write_text('base = "b.toml"\n')
    (tmp_path / "b.toml").write_text('base = "a.toml"\n')
    with pytest.raises(UserError, match="'base' inheritance loops"):
        read_with_bases(tmp_path / "a.toml")
    (tmp_path / "c.toml").write_text('base = "missing.toml"\n')
    with pytest.raises(UserError, match="base file 'missing.toml' not found"):
        read_with_bases(tmp_path / "c.toml")
    (tmp_path / "bad.toml").write_text('name = \n')
    with pytest.raises(UserError, match=r"bad.toml: not valid TOML: .*line 1"):
        read_with_bases(tmp_path / "bad.toml")
    with pytest.raises(UserError, match="no such experiment file"):
        read_with_bases(tmp_path / "nope.toml")


def test_show_round_trip(tmp_path, registry):
    path = tmp_path / "exp.toml"
    path.write_text('[model.head]\nname = "mlp"\n[train.loss]\nname = "focal"\nalpha = 0.5\n'
                    '[optimizations.tf32]\n[hpo.space."train.lr"]\ntype = "float"\n'
                    'low = 1e-6\nhigh = 1e-4\nlog = true\n')
    experiment = load_experiment(path, registry=registry)
    shown = tmp_path / "shown.toml"
    shown.write_text(dumps(experiment))
    assert load_experiment(shown, registry=registry) == experiment


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {"d": [1]}}, "e": {}}) == {"a.b": 1, "a.c.d": [1],
                                                                  "e": {}}


finite = dict(allow_nan=False, allow_infinity=False)
experiments = st.fixed_dictionaries({}, optional={
    "name": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,12}", fullmatch=True),
    "seed": st.integers(0, 2**31),
    "data": st.fixed_dictionaries({}, optional={
        "level": st.sampled_from(["post", "sentence"]),
        "max_length": st.integers(200, 4096),
        "truncation": st.sampled_from(["head", "head_tail", "windows"]),
        "stride": st.integers(0, 199),
    }),
    "model": st.fixed_dictionaries({}, optional={
        "backbone": st.text(min_size=1, max_size=20),
        "pooling": st.sampled_from([{"name": "cls"}, {"name": "mean"}]),
        "head": st.one_of(st.just({"name": "linear"}), st.fixed_dictionaries(
            {"name": st.just("mlp")}, optional={
                "hidden_dims": st.lists(st.integers(1, 4096), max_size=3),
                "dropout": st.floats(0.0, 0.99, **finite)})),
    }),
    "train": st.fixed_dictionaries({}, optional={
        "epochs": st.integers(1, 100),
        "lr": st.floats(1e-8, 0.5, **finite),
        "head_lr": st.floats(1e-8, 10.0, **finite),
        "grad_accum_steps": st.integers(1, 64),
        "loss": st.fixed_dictionaries({"name": st.just("focal")}, optional={
            "gamma": st.floats(0, 10, **finite), "alpha": st.floats(0, 1, **finite)}),
        "scheduler": st.sampled_from([{"name": "linear"}, {"name": "cosine"}]),
    }),
    "optimizations": st.dictionaries(st.just("tf32"), st.just({})),
    "hpo": st.fixed_dictionaries({}, optional={
        "trials": st.integers(1, 500),
        "space": st.fixed_dictionaries({}, optional={  # each edge valid at its key
            "train.epochs": st.fixed_dictionaries({
                "type": st.just("categorical"),
                "choices": st.lists(st.integers(1, 9), min_size=1)}),
            "train.lr": st.fixed_dictionaries({
                "type": st.just("float"), "low": st.just(1e-6),
                "high": st.floats(1e-5, 0.5, **finite)}),
            "model.head.name": st.fixed_dictionaries({
                "type": st.just("categorical"),
                "choices": st.lists(st.sampled_from(["linear", "mlp"]), min_size=1)}),
        }),
    }),
})


@settings(max_examples=60, deadline=None)
@given(raw=experiments)
def test_any_valid_config_survives_show_then_parse(raw, registry, tmp_path_factory):
    experiment = decode(raw, registry=registry)
    path = tmp_path_factory.mktemp("rt") / "shown.toml"
    path.write_text(dumps(experiment))
    again = load_experiment(path, registry=registry)
    assert again == experiment
    assert dumps(again) == dumps(experiment)


def test_experiment_type_is_exported():
    assert sys.modules["cm.config"].Experiment is Experiment


def test_split_ratios_are_checked_by_the_one_rule_split_posts_uses(registry):
    from cm.data.splits import split_posts

    with pytest.raises(ConfigError) as info:
        decode({"data": {"split": [0.5, 0.2, 0.2]}}, "exp.toml", registry=registry)
    with pytest.raises(UserError) as direct:
        split_posts(["p1"], {}, (0.5, 0.2, 0.2))
    assert info.value.problems == [f"$.data.split: {direct.value}"]
    assert str(direct.value).startswith("split ratios must sum to 1")


def test_a_component_table_in_the_wrong_place_points_to_the_right_one(registry):
    raw = {"model": {"loss": {"name": "focal"}}, "train": {"optimization": {"bf16": {}}}}
    with pytest.raises(ConfigError) as info:
        decode(raw, "exp.toml", registry=registry)
    assert info.value.problems == [
        "$.model.loss: unknown key; a loss goes in [train.loss]",
        "$.train.optimization: unknown key; an optimization goes in [optimizations.<name>]"]


def test_eval_table_and_selection_metric(registry):
    experiment = decode({"eval": {"thresholds": 0.25, "calibration": "prior"},
                         "train": {"selection_metric": "pr_auc"}}, registry=registry)
    assert experiment.eval.thresholds == 0.25 and experiment.eval.calibration == "prior"
    assert experiment.sweep_metric == "val_tuned/pr_auc"  # no [hpo] metric: follows selection
    assert decode({}, registry=registry).eval.thresholds == "per_criterion"
    assert decode(tomllib.loads(dumps(experiment)), registry=registry) == experiment
    assert problems({"eval": {"thresholds": "best"}, "train": {"selection_metric": "loss"}},
                    registry) == [
        "$.train.selection_metric: 'selection_metric' must be in ('post_macro_f1', "
        "'post_micro_f1', 'post_samples_f1', 'macro_f1', 'weighted_f1', 'f1', 'accuracy', "
        "'roc_auc', 'pr_auc') (got 'loss')",
        "$.eval.thresholds: 'thresholds' must be 'per_criterion', 'global' or a number in "
        "(0, 1); got 'best'"]
    assert problems({"eval": {"thresholds": True}}, registry) == [
        "$.eval.thresholds: expected a string or a number, got boolean True"]
