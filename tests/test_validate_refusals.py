"""`cm config validate` refuses exactly what `cm run` and `cm sweep` refuse, with the same
message, and those refuse it before a run folder, a tracking run or a study exists."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from cm import limits
from cm.cli.main import cli
from cm.testing import DEMO_EXPERIMENT, TINY_RUN

pytestmark = pytest.mark.integration  # loads the data and trains the tiny tokenizer

SPACE = 'hpo.space."train.lr"={ type = "float", low = 1e-4, high = 1e-3 }'

CASES = {
    "cuda-only optimization on cpu": (
        ["optimizations.tf32={}"],
        ["optimizations.tf32: cannot be used here: needs CUDA"]),
    "bucketing and packing": (
        ["optimizations.bucketing={}", "optimizations.packing={}"],
        ["optimizations.packing: cannot be used here: conflicts with bucketing"]),
    "hpo.metric names a criterion the data lacks": (
        ['hpo.metric="val_tuned/A.10/f1"'],
        ["$.hpo.metric: 'val_tuned/A.10/f1' names criterion 'A.10', which this dataset does "
         "not have", "e.g. val_tuned/A.1/f1"]),
    "hpo.space key that does not exist": (
        ['hpo.space."train.lrr"={ type = "float", low = 0.1, high = 0.2 }'],
        ['$.hpo.space."train.lrr": setting it to 0.1 fails: $.train.lrr: unknown key; '
         "did you mean 'lr'?"]),
    "a type error does not hide a range error": (
        ["train.lr=nan", "train.epochs=-1"],
        ["2 problems", "$.train.lr: expected a finite number, got nan",
         "$.train.epochs: 'epochs' must be >= 1: -1"]),
    "empty part in a dotted key": (
        ["train..lr=0.5"], ["--set 'train..lr': not a dotted key"]),
    "leading dot": ([".train.lr=0.5"], ["--set '.train.lr': not a dotted key"]),
    "trailing dot": (["train.lr.=0.5"], ["--set 'train.lr.': not a dotted key"]),
    "bootstrap resamples past the bound": (
        ["eval.bootstrap_resamples=1000000000"],
        ["$.eval.bootstrap_resamples: 'bootstrap_resamples' must be <= 10000"]),
    "max_length leaves no room for a criterion": (
        ["data.max_length=20", "data.stride=4"],
        ["needs max_length >= ", "but max_length is 20", "raise data.max_length"]),
    "windows stride past the room a criterion leaves": (
        ['data.truncation="windows"', "data.max_length=40", "data.stride=30"],
        ["stride (30) must be smaller than the post budget", "lower data.stride"]),
    "several refusals at once": (
        ["optimizations.tf32={}", "data.max_length=20", "data.stride=4"],
        ["2 problems", "optimizations.tf32: cannot be used here", "but max_length is 20"]),
}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def arguments(tmp_path, overrides):
    sets = [*TINY_RUN, f'output_dir="{tmp_path}/out"', SPACE,
            f'tracking.mlflow.tracking_uri="sqlite:///{tmp_path}/mlflow.db"', *overrides]
    return [DEMO_EXPERIMENT, *[a for item in sets for a in ("--set", item)]]


@pytest.mark.parametrize("case", CASES)
def test_validate_refuses_what_run_and_sweep_refuse(case, tmp_path):
    overrides, fragments = CASES[case]
    args = arguments(tmp_path, overrides)
    validated = invoke("config", "validate", *args)
    assert validated.exit_code == 2, validated.output
    assert "Traceback" not in validated.output
    for fragment in fragments:
        assert fragment in validated.stderr, validated.stderr
    for command in ("run", "sweep"):
        refused = invoke(command, *args)
        assert refused.exit_code == 2, refused.output
        assert refused.stderr == validated.stderr
        assert not (tmp_path / "out").exists()  # no run folder, no study
        assert not (tmp_path / "mlflow.db").exists()  # no tracking run, not even a store


def test_the_same_file_without_the_faults_is_valid(tmp_path):
    result = invoke("config", "validate", *arguments(tmp_path, []))
    assert result.exit_code == 0, result.output
    assert "valid experiment 'demo'" in result.stdout
    assert not (tmp_path / "out").exists() and not (tmp_path / "mlflow.db").exists()


def test_compare_resamples_past_the_bound_is_refused(tmp_path):
    result = invoke("compare", tmp_path, tmp_path, "--resamples", "1000000000")
    assert result.exit_code == 2
    assert "'--resamples': 1000000000 is not in the range 100<=x<=10000" in result.stderr


def test_a_dry_run_leaves_no_tracking_run(tmp_path):
    from mlflow import MlflowClient

    result = invoke("run", *arguments(tmp_path, []), "--dry-run")
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiments = client.search_experiments()
    assert client.search_runs([e.experiment_id for e in experiments]) == []


def test_every_bound_is_in_the_cli_contract():
    contract = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    bounds = {name: value for name, value in vars(limits).items() if name.isupper()}
    assert len(bounds) == 8
    for name, value in bounds.items():
        assert f"| {value:,}" in contract, f"cm.limits.{name} = {value:,} not in docs/cli.md"
