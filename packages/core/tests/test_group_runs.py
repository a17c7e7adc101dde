"""Groups trained for real (tiny DeBERTaV3): two seeds through ``run_group``, two folds
through ``cm run``, and ``cm compare`` of the two groups."""

import csv
import json
import statistics
import tomllib

import pytest
from click.testing import CliRunner
from rich.console import Console

from cm.cli.main import cli
from cm.testing import DEMO_EXPERIMENT, TINY_RUN, make_tiny_experiment
from cm.train.group import run_group

pytestmark = pytest.mark.integration  # trains: not in `nox -s quick`


@pytest.fixture(scope="module")
def seeds_group(tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds")
    return run_group(make_tiny_experiment(out), 2, console=Console(quiet=True)).directory


@pytest.fixture(scope="module")
def folds_group(tmp_path_factory):
    out = tmp_path_factory.mktemp("folds")
    sets = [f"--set={s}" for s in [*TINY_RUN, f"output_dir={out}", "data.folds=2"]]
    result = CliRunner().invoke(cli, ["run", str(DEMO_EXPERIMENT), *sets])
    assert result.exit_code == 0, result.output
    [group] = (out / "demo").iterdir()
    return group


def metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def posts_of(run_dir, split):
    with (run_dir / f"{split}_predictions.csv").open() as handle:
        return {row["post_id"] for row in csv.DictReader(handle)}


def test_the_aggregate_is_the_mean_and_sd_of_the_seed_runs_metrics(seeds_group):
    found = json.loads((seeds_group / "aggregate.json").read_text())
    assert found["members"] == ["seed-13", "seed-14"] and found["seeds"] == [13, 14]
    runs = [metrics(seeds_group / label) for label in found["members"]]
    for name in ("test_tuned/post_macro_f1", "val_tuned/post_macro_f1", "test/pr_auc",
                 "test_tuned/A.1/f1"):
        values = [run[name] for run in runs]
        row = found["metrics"][name]
        assert row["mean"] == pytest.approx(statistics.fmean(values))
        assert row["sd"] == pytest.approx(statistics.stdev(values))
        assert (row["min"], row["max"]) == (min(values), max(values))
    headline = found["headline"]["post_macro_f1"]
    assert headline["mean"] == pytest.approx(
        statistics.fmean(run["test_tuned/post_macro_f1"] for run in runs))
    assert 0 <= headline["low"] <= headline["mean"] <= headline["high"] <= 1
    assert set(found["ensemble"]) == {"val", "test"}
    assert "post_macro_f1_low" in found["ensemble"]["test"]
    assert "| ensemble |" in (seeds_group / "summary.md").read_text()


def test_the_ensemble_folder_compares_like_a_run(seeds_group):
    ensembled = json.loads((seeds_group / "aggregate.json").read_text())["ensemble"]["test"]
    result = CliRunner().invoke(cli, ["compare", str(seeds_group / "ensemble"),
                                      str(seeds_group / "seed-13"), "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)["post_macro_f1"]
    assert row["a"] == pytest.approx(ensembled["post_macro_f1"])
    assert row["b"] == pytest.approx(metrics(seeds_group / "seed-13")["test_tuned/post_macro_f1"])


def test_seed_runs_differ_in_seed_only_and_score_the_same_posts(seeds_group):
    configs = [tomllib.loads((seeds_group / m / "config.toml").read_text())
               for m in ("seed-13", "seed-14")]
    assert [c["seed"] for c in configs] == [13, 14]
    assert [c["data"]["split_seed"] for c in configs] == [13, 13]
    for split in ("val", "test"):
        assert posts_of(seeds_group / "seed-13", split) == posts_of(seeds_group / "seed-14", split)
    assert metrics(seeds_group / "seed-13") != metrics(seeds_group / "seed-14")
    # one tokenizer for both, so both read the same encoded cache entries (keyed by the
    # tokenizer and the texts)
    tokenizers = [{p.name: p.read_bytes() for p in (seeds_group / m / "checkpoint" /
                                                    "tokenizer").iterdir()}
                  for m in ("seed-13", "seed-14")]
    assert tokenizers[0] == tokenizers[1]


def test_fold_runs_validate_on_their_fold_and_share_the_test_posts(folds_group):
    with (folds_group / "folds.csv").open() as handle:
        fold_of = {row["post_id"]: row["fold"] for row in csv.DictReader(handle)}
    assert set(fold_of.values()) == {"1", "2", "test"}
    for fold in ("1", "2"):
        member = folds_group / f"fold-{fold}"
        assert posts_of(member, "val") == {p for p, f in fold_of.items() if f == fold}
        assert posts_of(member, "test") == {p for p, f in fold_of.items() if f == "test"}
    found = json.loads((folds_group / "aggregate.json").read_text())
    assert found["folds"] == [1, 2]
    per_fold = [metrics(folds_group / m)["val_tuned/post_macro_f1"] for m in found["members"]]
    assert found["metrics"]["val_tuned/post_macro_f1"]["mean"] == pytest.approx(
        statistics.fmean(per_fold))


def test_compare_two_groups_pairs_their_runs(seeds_group, folds_group):
    result = CliRunner().invoke(cli, ["compare", str(seeds_group), str(folds_group), "--json",
                                      "--resamples", "200"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)["post_macro_f1"]
    a = [metrics(seeds_group / m)["test_tuned/post_macro_f1"] for m in ("seed-13", "seed-14")]
    b = [metrics(folds_group / m)["test_tuned/post_macro_f1"] for m in ("fold-1", "fold-2")]
    assert row["difference"] == pytest.approx(statistics.fmean(a) - statistics.fmean(b))
    assert row["low"] <= row["difference"] <= row["high"]
    assert row["excludes_zero"] == (row["low"] > 0 or row["high"] < 0)
    mixed = CliRunner().invoke(cli, ["compare", str(seeds_group), str(folds_group / "fold-1")])
    assert mixed.exit_code == 2 and "is a group of runs" in mixed.output
