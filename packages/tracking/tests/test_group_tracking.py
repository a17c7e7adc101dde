"""A group of runs (seeds, folds) in MLflow: the group's run is the parent, each member's run
nested under it, the aggregate logged on the parent (a real sqlite store)."""

import json
import os

import pytest
from mlflow import MlflowClient
from rich.console import Console

from cm.testing import make_tiny_experiment
from cm.train.group import run_group

pytestmark = pytest.mark.integration  # trains: not in `nox -s quick`


def test_a_group_is_the_parent_run_of_its_members_with_the_aggregate(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment = make_tiny_experiment(tmp_path / "outputs",
                                      f"tracking.mlflow={{ tracking_uri = '{uri}' }}")
    with open(os.devnull, "w") as sink:
        group = run_group(experiment, 2, console=Console(file=sink))
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("demo").experiment_id])
    assert len(runs) == 3
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["cm.group_member"] for r in children) == ["seed-13", "seed-14"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert parent.info.run_id == group.links["mlflow"]["run_id"]
    found = json.loads((group.directory / "aggregate.json").read_text())
    logged = parent.data.metrics
    row = found["metrics"]["test_tuned/post_macro_f1"]
    assert logged["test_tuned/post_macro_f1/mean"] == pytest.approx(row["mean"])
    assert logged["test_tuned/post_macro_f1/sd"] == pytest.approx(row["sd"])
    assert logged["headline/post_macro_f1/low"] == pytest.approx(
        found["headline"]["post_macro_f1"]["low"])
    assert logged["ensemble/test_tuned/post_macro_f1"] == pytest.approx(
        found["ensemble"]["test"]["post_macro_f1"])
    for child in children:  # each member's own scores stay on its own run
        member = json.loads((group.directory / child.data.tags["cm.group_member"]
                             / "metrics.json").read_text())
        assert child.data.metrics["test_tuned/post_macro_f1"] == pytest.approx(
            member["test_tuned/post_macro_f1"])
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"aggregate.json", "summary.md", "config.toml", "ensemble"} <= artifacts
