"""Property tests of the error boundary: experiment files and CSVs of random keys, types,
encodings and quoting never produce a traceback; they are accepted or refused (exit 2 /
a UserError) with a message."""

import csv
import io
from pathlib import Path

import pytest
import tomli_w
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cm.cli.main import cli
from cm.data.redsm5 import load_redsm5
from cm.errors import UserError
from cm.posts_file import count_posts, iter_posts

DEMO = Path(__file__).resolve().parents[1] / "experiments" / "demo-posts.toml"
KEYS = [("name",), ("seed",), ("output_dir",), ("data",), ("data", "split"),
        ("data", "max_length"), ("data", "stride"), ("data", "truncation"), ("data", "level"),
        ("data", "dataset"), ("data", "dataset", "name"), ("model", "backbone"),
        ("model", "head"), ("model", "head", "name"), ("model", "head", "hidden_dims"),
        ("model", "pooling", "name"), ("model", "tiny", "hidden_size"),
        ("model", "tiny", "num_heads"), ("train", "lr"), ("train", "epochs"),
        ("train", "batch_size"), ("train", "weight_decay"), ("train", "head_lr"),
        ("train", "max_grad_norm"), ("train", "loss", "name"), ("train", "scheduler"),
        ("train", "device"), ("optimizations", "bf16"), ("optimizations", "packing"),
        ("hpo", "metric"), ("hpo", "trials"), ("hpo", "space", "train.lr"),
        ("hpo", "space", "train.lr", "type"), ("hpo", "space", "x", "low"), ("lrr",),
        ("train", "lrr"), ("data", "splitt")]
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(["name", "low", "x", "type"]), inner,
                                        max_size=3), max_leaves=6)


def nest(flat: dict) -> dict:
    """Key paths into TOML tables; a path running into a value set earlier is dropped."""
    doc = {}
    for (*parents, leaf), value in flat.items():
        table = doc
        for part in parents:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                break
        else:
            table.setdefault(leaf, value)
    return doc


def toml_text(doc) -> str:
    def clean(v):
        if v is None:
            return "none"
        if isinstance(v, list):
            return [clean(x) for x in v]
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        return v

    return tomli_w.dumps(clean(doc))


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a tracker table with no URI would make ./mlflow.db here
    monkeypatch.setenv("CM_CRASH_DIR", str(tmp_path / "crashes"))
    return tmp_path


@SETTINGS
@given(flat=st.dictionaries(st.sampled_from(KEYS), values, max_size=6),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "garbage"]),
       cut=st.integers(0, 40))
def test_random_experiment_files_never_print_a_traceback(isolated, flat, encoding, cut):
    text = f'base = "{DEMO}"\n' + toml_text(nest(flat))
    data = text.encode("utf-8", "replace") if encoding == "garbage" else \
        text.encode(encoding, "replace")
    if encoding == "garbage":
        data = data[:cut] + bytes([0xff, 0x00, 0xc3]) + data[cut:]
    path = isolated / "x.toml"
    path.write_bytes(data)
    result = CliRunner().invoke(cli, ["config", "validate", str(path)])
    assert result.exit_code in (0, 2), (result.output, result.exception)
    assert "Traceback" not in result.output
    assert not (isolated / "crashes").exists()


cells = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


def csv_bytes(rows, header, quoting, encoding):
    buffer = io.StringIO()
    csv.writer(buffer, quoting=quoting).writerows([header, *rows])
    return buffer.getvalue().encode(encoding, "replace")


@SETTINGS
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=4), max_size=6),
       header=st.sampled_from([["post_id", "text"], ["text", "post_id", "x"], ["id", "text"],
                               [], ["post_id"]]),
       quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]),
       suffix=st.sampled_from([".csv", ".jsonl"]))
def test_random_posts_files_are_read_or_refused(isolated, rows, header, quoting, encoding,
                                                suffix):
    path = isolated / f"posts{suffix}"
    path.write_bytes(csv_bytes(rows, header, quoting, encoding))
    try:
        count = count_posts(path)
        posts = list(iter_posts(path))
    except UserError as exc:
        assert str(path) in str(exc)
        return
    assert len(posts) == count
    assert all(isinstance(pid, str) and text.strip() for pid, text in posts)


@SETTINGS
@given(posts=st.lists(st.lists(cells, max_size=3), max_size=5),
       annotations=st.lists(st.lists(cells | st.sampled_from(["1", "0", "SLEEP_ISSUES"]),
                                     max_size=6), max_size=5),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1"]),
       criteria=st.sampled_from(['{"criteria": []}', "[]", "{", '{"criteria": [{"id": "A.1",'
                                 ' "text": "x"}]}', "\x00"]))
def test_random_dataset_files_are_loaded_or_refused(isolated, posts, annotations, encoding,
                                                    criteria):
    paths = [isolated / "posts.csv", isolated / "annotations.csv", isolated / "criteria.json"]
    paths[0].write_bytes(csv_bytes(posts, ["post_id", "text"], csv.QUOTE_MINIMAL, encoding))
    paths[1].write_bytes(csv_bytes(annotations, ["post_id", "sentence_id", "sentence_text",
                                                 "DSM5_symptom", "status", "explanation"],
                                   csv.QUOTE_MINIMAL, encoding))
    paths[2].write_text(criteria)
    try:
        load_redsm5(*paths)
    except UserError as exc:
        assert any(p.name in str(exc) for p in paths), exc
