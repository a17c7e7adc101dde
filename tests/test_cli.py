"""The installed ``cm`` command, run as a user runs it (subprocess, real entry points)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # trains, or starts processes: not in `nox -s quick`

ROOT = Path(__file__).resolve().parents[1]
CM = shutil.which("cm", path=str(Path(sys.executable).parent)) or "cm"


def cm(*args, cwd=ROOT, env=None):
    return subprocess.run([CM, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_plugins_lists_built_ins_and_the_example_plugin_with_distributions():
    result = cm("plugins", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["failures"] == []
    providers = {(kind, c["name"]): c["distribution"]
                 for kind, items in data["components"].items() for c in items}
    assert providers[("head", "mlp")] == "cm-heads"
    assert providers[("pooling", "cls")] == "cm-heads"
    assert providers[("loss", "bce")] == "cm-core"
    assert providers[("dataset", "demo")] == "cm-core"
    assert providers[("optimization", "tf32")] == "cm-optimizations"
    assert providers[("head", "scaled_linear")] == "cm-plugin-example"
    assert providers[("optimization", "deterministic")] == "cm-plugin-example"
    [mlp] = [c for c in data["components"]["head"] if c["name"] == "mlp"]
    assert {"name": "dropout", "type": "float", "default": "0.1"} in mlp["options"]


def test_plugins_table_names_the_provider():
    result = cm("plugins", "--kind", "head")
    assert result.returncode == 0
    assert "scaled_linear" in result.stdout and "cm-plugin-example 0.1.0" in result.stdout


def test_blocklisted_plugin_disappears():
    result = cm("plugins", "--json", env={"CM_DISABLE_PLUGINS": "example"})
    heads = [c["name"] for c in json.loads(result.stdout)["components"]["head"]]
    assert "scaled_linear" not in heads and "mlp" in heads


@pytest.mark.parametrize("name", ["demo", "baseline", "hpo"])
def test_shipped_experiments_round_trip_through_config_show(name, tmp_path):
    shown = cm("config", "show", f"experiments/{name}.toml")
    assert shown.returncode == 0, shown.stderr
    (tmp_path / "shown.toml").write_text(shown.stdout)
    again = cm("config", "show", str(tmp_path / "shown.toml"))
    assert again.returncode == 0, again.stderr
    assert again.stdout == shown.stdout


def test_config_show_applies_overrides():
    result = cm("config", "show", "experiments/demo.toml", "--set", "train.lr=3e-5",
                "--set", "model.head.name=linear")
    assert result.returncode == 0, result.stderr
    assert "lr = 3e-05" in result.stdout
    assert '[model.head]\nname = "linear"\ndropout = 0.1\n' in result.stdout


def test_config_errors_exit_2_with_every_problem_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[train]\nlrr = 1e-5\n[model.head]\nname = "mlpp"\n')
    result = cm("config", "validate", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}: 2 problems" in result.stderr
    assert "$.train.lrr: unknown key; did you mean 'lr'?" in result.stderr
    assert "$.model.head.name: 'mlpp' is not a registered head" in result.stderr


def test_missing_file_is_a_clear_error(tmp_path):
    result = cm("config", "show", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "no such experiment file" in result.stderr


@pytest.mark.parametrize("command", ["run", "sweep", "replay", "predict", "bench", "plugins", "new",
                                     "config", "data"])
def test_every_command_has_help(command):
    result = cm(command, "--help")
    assert result.returncode == 0
    assert "Usage: cm " + command in result.stdout


def test_data_stats_on_the_demo_data():
    result = cm("data", "stats", "experiments/demo-posts.toml", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["posts"] == {"train": 240, "val": 30, "test": 30}
    total = report["labels"][-1]
    assert total["criterion"] == "total"
    assert (total["train_pairs"], total["val_pairs"], total["test_pairs"]) == (2160, 270, 270)
    assert total["train_positives"] + total["val_positives"] + total["test_positives"] == 466
    waste = {row["strategy"]: row for row in report["padding"]}
    assert list(waste) == ["pad_to_max", "dynamic", "bucketing", "packing"]
    assert waste["bucketing"]["ratio"] < waste["dynamic"]["ratio"] <= waste["pad_to_max"]["ratio"]
    # packing's default budget (max_length / 2 = 128) is below most demo pairs: they get a
    # row alone, so packing pads like bucketing here and never runs more rows than examples
    assert waste["packing"]["rows"] <= waste["dynamic"]["rows"]
    assert waste["packing"]["ratio"] < waste["dynamic"]["ratio"]
    assert len({row["real_tokens"] for row in waste.values()}) == 1


def test_data_stats_table_on_the_shared_sample_in_its_real_format():
    sample = ROOT.parent / "shared" / "fixtures" / "redsm5-sample"
    if not sample.is_dir():
        pytest.skip("../shared/fixtures/redsm5-sample not present (only in the workspace)")
    dataset = (f'{{ name = "redsm5", posts = "{sample}/redsm5_posts.csv", '
               f'annotations = "{sample}/redsm5_annotations.csv", '
               f'criteria = "{sample}/MDD_Criteira.json" }}')
    result = cm("data", "stats", "experiments/demo-posts.toml", "--set", f"data.dataset={dataset}",
                "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert sum(report["posts"].values()) == 17
    total = report["labels"][-1]
    assert total["train_pairs"] + total["val_pairs"] + total["test_pairs"] == 153
    assert total["train_positives"] + total["val_positives"] + total["test_positives"] == 20
    assert set(report["digests"]) == {"redsm5_posts.csv", "redsm5_annotations.csv",
                                      "MDD_Criteira.json"}


def test_data_stats_at_sentence_level_measures_criterion_and_sentence():
    result = cm("data", "stats", "experiments/demo-posts.toml", "--set", 'data.level="sentence"')
    assert result.returncode == 0, result.stderr
    assert "(sentence level)" in result.stdout
    assert "pair length in tokens (criterion + sentence):" in result.stdout


def test_data_stats_names_a_missing_dataset_root(tmp_path):
    result = cm("data", "stats", "experiments/baseline.toml",
                "--set", f"data.dataset.root={tmp_path / 'nowhere'}")
    assert result.returncode == 2
    assert "nowhere" in result.stderr and "Traceback" not in result.stderr


def test_cm_tracking_adds_its_commands_through_the_hook_and_cm_runs_without_it(tmp_path):
    listed = cm("--help")
    assert "sweep" in listed.stdout and "replay" in listed.stdout
    assert "--run-id" in cm("predict", "--help").stdout
    without = {"CM_DISABLE_PLUGINS": "tracking"}  # as if cm-tracking were not installed
    listed = cm("--help", env=without)
    assert listed.returncode == 0, listed.stderr
    assert "sweep" not in listed.stdout and "replay" not in listed.stdout
    posts = tmp_path / "posts.csv"
    posts.write_text("post_id,text\np1,I cannot sleep\n")
    unsourced = cm("predict", str(posts), "--run-id", "abc", env=without)  # no run source
    assert unsourced.returncode == 2 and "no installed plugin fetches runs by id" in \
        unsourced.stderr, unsourced.stderr
    missing = cm("sweep", "experiments/hpo.toml", env=without)
    assert missing.returncode == 2 and "No such command 'sweep'" in missing.stderr
    run = cm("run", "experiments/demo-posts.toml", "--dry-run", "--set", f"output_dir='{tmp_path}'",
             "--set", "train.device='cpu'", env={**without, "CM_CACHE_DIR": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    assert "dry run finished" in run.stdout
