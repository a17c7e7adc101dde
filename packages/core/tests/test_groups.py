"""Groups of runs read from their folders: the aggregate, the pooled interval, the ensemble
and the paired comparison of two groups (hand-written predictions, no training)."""

import csv
import json
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cm.errors import UserError
from cm.evaluate.bootstrap import intervals, pooled_intervals
from cm.evaluate.compare import compare, read_predictions, scored_pairs
from cm.evaluate.decisions import statistic
from cm.evaluate.groups import AGGREGATE, ensemble, member_dirs, summarize
from cm.evaluate.report import PREDICTION_COLUMNS

CRITERIA = ("A.1", "A.2", "A.3")


def write_run(path, split, labels, probs, cut=0.5):
    path.mkdir(parents=True, exist_ok=True)
    with (path / f"{split}_predictions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(PREDICTION_COLUMNS)
        for i, (y, p) in enumerate(zip(labels, probs, strict=True)):
            writer.writerow([f"p{i // 3}", CRITERIA[i % 3], "", y, p, int(p >= cut)])
    return path


def write_group(path, runs):
    """runs: label -> {split: (labels, probs)}"""
    for label, splits in runs.items():
        for split, (labels, probs) in splits.items():
            write_run(path / label, split, labels, probs)
    (path / AGGREGATE).write_text(json.dumps({"members": list(runs)}))
    return path


@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.integers(-1000, 1000)), min_size=1,
                max_size=8))
@settings(max_examples=100, deadline=None)
def test_summarize_is_the_mean_sd_min_max_of_each_metric(values):
    metrics = [{"score": a, "count": b, "note": "text", "flag": True} for a, b in values]
    found = summarize(metrics)
    assert set(found) == {"score", "count"}  # numbers only
    for name, column in (("score", [a for a, _ in values]), ("count", [b for _, b in values])):
        assert found[name]["mean"] == pytest.approx(statistics.fmean(column), abs=1e-6)
        sd = statistics.stdev(column) if len(column) > 1 else 0.0
        assert found[name]["sd"] == pytest.approx(sd, rel=1e-6, abs=1e-6)
        assert (found[name]["min"], found[name]["max"]) == (min(column), max(column))


def test_pooling_one_model_twice_is_its_own_interval(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    run = read_predictions(write_run(tmp_path / "a", "test", labels, rng.random(60)))
    pairs = scored_pairs({"a": run})
    made = statistic(pairs, [row.decision for _, row in sorted(run.items())])
    alone = intervals(made, 20, seed=3, resamples=200)
    pooled = pooled_intervals([made, made], 20, seed=3, resamples=200)
    for name, row in alone.items():
        assert pooled[name] == pytest.approx(
            {"mean": row["value"], "low": row["low"], "high": row["high"]})


def test_pooled_interval_covers_the_spread_between_models(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 90)
    perfect = labels.astype(float)
    wrong = 1.0 - labels
    runs = {name: read_predictions(write_run(tmp_path / name, "test", labels, probs))
            for name, probs in (("good", perfect), ("bad", wrong))}
    pairs = scored_pairs(runs)
    made = [statistic(pairs, [r.decision for _, r in sorted(run.items())])
            for run in runs.values()]
    pooled = pooled_intervals(made, 30, seed=0, resamples=200)["post_macro_f1"]
    assert pooled["mean"] == pytest.approx(0.5)  # 1.0 and 0.0
    assert pooled["low"] == 0.0 and pooled["high"] == 1.0


def test_the_ensemble_averages_probabilities_and_tunes_thresholds_on_val(tmp_path):
    labels = np.tile([1, 0, 1, 0, 1, 0], 10)  # every criterion has positives
    sign = np.where(np.arange(60) // 6 % 2 == 0, 1.0, -1.0)  # per post
    # each member alone mixes positives and negatives up; their mean separates them
    a = np.clip(labels * 0.5 + 0.25 + 0.3 * sign, 0, 1)
    b = np.clip(labels * 0.5 + 0.25 - 0.3 * sign, 0, 1)
    group = write_group(tmp_path / "g", {"seed-1": {"val": (labels, a), "test": (labels, a)},
                                         "seed-2": {"val": (labels, b), "test": (labels, b)}})
    members = [group / "seed-1", group / "seed-2"]
    found = ensemble(members, "per_criterion", seed=0, resamples=100).scores
    assert found["test"]["post_macro_f1"] == 1.0 and found["val"]["post_macro_f1"] == 1.0
    assert found["test"]["post_macro_f1_high"] == 1.0
    alone = ensemble(members[:1], "per_criterion", seed=0, resamples=100).scores
    assert alone["test"]["post_macro_f1"] < 1.0


def test_out_of_fold_validation_averages_only_the_runs_that_scored_a_pair(tmp_path):
    labels = np.tile([1, 0, 1, 0, 1, 0], 2)
    group = tmp_path / "cv"
    # each fold's model validated on its own posts; averaging it with the other fold's
    # (which never scored them) would be an error
    for fold, rows in (("fold-1", slice(0, 6)), ("fold-2", slice(6, 12))):
        write_run(group / fold, "val", labels[rows], labels[rows] * 0.8 + 0.1)
        write_run(group / fold, "test", labels, labels * 0.6 + 0.2)
    (group / "fold-2" / "val_predictions.csv").write_text(
        (group / "fold-2" / "val_predictions.csv").read_text().replace("p0,", "p2,")
        .replace("p1,", "p3,"))
    found = ensemble([group / "fold-1", group / "fold-2"], "per_criterion", 0, 100).scores
    assert found["val"]["post_macro_f1"] == 1.0 and found["val"]["n"] == 12


def test_group_compare_pairs_members_and_pools_the_differences(tmp_path):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 150)
    noisy = [np.where(rng.random(150) < 0.4, 1 - labels, labels) * 0.8 + 0.1 for _ in range(2)]
    good = write_group(tmp_path / "good", {f"seed-{i}": {"test": (labels, labels * 0.8 + 0.1)}
                                           for i in range(2)})
    bad = write_group(tmp_path / "bad", {f"seed-{i}": {"test": (labels, noisy[i])}
                                         for i in range(2)})
    rows = compare(member_dirs(good), member_dirs(bad), seed=0, resamples=200)
    head = rows["post_macro_f1"]
    assert head["a"] == 1.0 and head["difference"] == pytest.approx(1.0 - head["b"])
    assert 0 < head["low"] <= head["difference"] <= head["high"] and head["excludes_zero"]
    same = compare(member_dirs(good), member_dirs(good), seed=0, resamples=200)["post_macro_f1"]
    assert same["difference"] == same["low"] == same["high"] == 0.0
    assert not same["excludes_zero"]


def test_group_compare_refuses_groups_of_different_sizes(tmp_path):
    labels = np.array([1, 0, 0])
    one = write_group(tmp_path / "one", {"seed-1": {"test": (labels, labels)}})
    two = write_group(tmp_path / "two", {f"seed-{i}": {"test": (labels, labels)}
                                         for i in range(2)})
    with pytest.raises(UserError, match="A holds 1 runs and B 2"):
        compare(member_dirs(one), member_dirs(two))
    with pytest.raises(UserError, match="no aggregate.json"):
        member_dirs(tmp_path)


def test_members_are_one_per_seed_and_fold_on_one_split(tmp_path):
    from cm.testing import make_tiny_experiment
    from cm.train.group import is_group, members

    experiment = make_tiny_experiment(tmp_path, "seed=7", "data.folds=3")
    found = members(experiment, 2)
    assert [m.label for m in found] == [f"seed-{s}-fold-{f}" for s in (7, 8) for f in (1, 2, 3)]
    assert [(m.experiment.seed, m.experiment.data.fold) for m in found] == \
        [(s, f) for s in (7, 8) for f in (1, 2, 3)]
    assert {m.experiment.data.split_seed for m in found} == {7}
    single = make_tiny_experiment(tmp_path, "data.folds=3", "data.fold=2")
    assert not is_group(single) and is_group(single, 2) and is_group(experiment)
    with pytest.raises(UserError, match="--seeds 3 from seed 4294967294"):
        members(make_tiny_experiment(tmp_path, "seed=4294967294"), 3)


def test_one_run_of_a_cross_validated_experiment_is_refused_without_its_fold(tmp_path):
    from cm.testing import make_tiny_experiment
    from cm.train.engine import run_experiment

    with pytest.raises(UserError, match=r"data.folds = 3 trains one model per fold"):
        run_experiment(make_tiny_experiment(tmp_path, "data.folds=3"))
    assert not (tmp_path / "demo").exists()  # refused before a run folder


def test_bad_group_requests_are_refused_with_the_fix(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from cm.cli.main import cli
    from cm.testing import DEMO_EXPERIMENT, make_tiny_experiment
    from cm.train.group import run_group

    result = CliRunner().invoke(cli, ["run", str(DEMO_EXPERIMENT), "--seeds", "0"])
    assert result.exit_code == 2 and "'--seeds': 0 is not in the range x>=1" in result.output
    both = CliRunner().invoke(cli, ["run", "--resume", str(tmp_path), "--seeds", "2"])
    assert both.exit_code == 2 and "not with --dry-run or --seeds" in both.output
    monkeypatch.setenv("RANK", "0")  # torchrun, any world size
    with pytest.raises(UserError, match="cannot run under torchrun"):
        run_group(make_tiny_experiment(tmp_path), 2)
    assert not (tmp_path / "demo").exists()
