"""Loader tests: the shared ReDSM5 sample loads exactly, and each kind of bad input is
reported with its file, line/row and a fix (and never the post text)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cm.data.records import SYMPTOM_TO_CRITERION, Annotation, Criterion, Post
from cm.data.redsm5 import DataError, load_redsm5, load_redsm5_root
from cm.errors import UserError


def _load_error(root: Path) -> str:
    with pytest.raises(DataError) as info:
        load_redsm5_root(root)
    return str(info.value)


def test_shared_sample_loads_exactly(sample_root):
    corpus = load_redsm5_root(sample_root)
    assert len(corpus.posts) == 17
    assert len(corpus.annotations) == 25
    assert [c.id for c in corpus.criteria] == [f"A.{i}" for i in range(1, 10)]
    assert corpus.posts[0] == Post("s_1270_9", corpus.posts[0].text)
    assert all(p.text.strip() for p in corpus.posts)
    first = corpus.annotations[0]
    assert (first.post_id, first.sentence_id, first.symptom, first.status) == (
        "s_1270_9", "s_1270_9_6", "SLEEP_ISSUES", 1,
    )  # fmt: skip
    assert corpus.skipped == {"duplicate_annotation_rows": 0}
    raw = (sample_root / "redsm5" / "redsm5_posts.csv").read_bytes()
    assert corpus.digests["redsm5_posts.csv"] == hashlib.sha256(raw).hexdigest()
    assert set(corpus.digests) == {
        "redsm5_posts.csv",
        "redsm5_annotations.csv",
        "MDD_Criteira.json",
    }


def test_explicit_paths_match_root_layout(shared_sample, sample_root):
    direct = load_redsm5(
        shared_sample / "redsm5_posts.csv",
        shared_sample / "redsm5_annotations.csv",
        shared_sample / "MDD_Criteira.json",
    )
    assert direct == load_redsm5_root(sample_root)
    assert direct.digests == load_redsm5_root(sample_root).digests


def test_records_hide_text_in_repr():
    post = Post("p1", "private words")
    assert "private" not in repr(post)
    assert "private" not in repr(Annotation("p1", "s1", "private", "FATIGUE", 1, "private"))
    assert repr(Criterion("A.1", "x")) == "Criterion(id='A.1', text='x')"
    assert SYMPTOM_TO_CRITERION["SUICIDAL_THOUGHTS"] == "A.9"
    assert SYMPTOM_TO_CRITERION["SPECIAL_CASE"] is None


def test_data_error_is_a_user_error():
    assert issubclass(DataError, UserError)
    assert DataError.exit_code == 2


def test_valid_tiny_dataset_loads(make_dataset):
    corpus = load_redsm5_root(make_dataset())
    assert [p.post_id for p in corpus.posts] == ["p1", "p2", "p3"]
    assert [(a.post_id, a.symptom, a.status) for a in corpus.annotations] == [
        ("p1", "DEPRESSED_MOOD", 1),
        ("p2", "SLEEP_ISSUES", 0),
    ]


@pytest.mark.parametrize(
    "relative",
    ["redsm5/redsm5_posts.csv", "redsm5/redsm5_annotations.csv", "DSM5/MDD_Criteira.json"],
)
def test_missing_file_names_path_and_layout(make_dataset, relative):
    root = make_dataset()
    (root / relative).unlink()
    message = _load_error(root)
    assert str(root / relative) in message
    assert "not found" in message
    assert "Expected layout: <root>/redsm5/redsm5_posts.csv" in message


def test_missing_root_directory(tmp_path):
    message = _load_error(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in message and "expected layout" in message


def test_correctly_spelled_criteria_file_gets_rename_hint(make_dataset):
    root = make_dataset()
    (root / "DSM5" / "MDD_Criteira.json").rename(root / "DSM5" / "MDD_Criteria.json")
    assert "rename it to MDD_Criteira.json" in _load_error(root)


def test_missing_column_lists_header(make_dataset):
    message = _load_error(make_dataset(post_header=["id", "text"]))
    assert "redsm5_posts.csv (line 1): missing column(s) ['post_id']" in message
    assert "the header has ['id', 'text']" in message
    assert "Rename the columns to ['post_id', 'text']" in message


def test_missing_annotation_column(make_dataset):
    header = ["post_id", "sentence_id", "sentence_text", "symptom", "status", "explanation"]
    message = _load_error(make_dataset(annotation_header=header))
    assert "redsm5_annotations.csv (line 1): missing column(s) ['DSM5_symptom']" in message


def test_explanation_column_is_optional(make_dataset):
    rows = [["p1", "p1_0", "s", "FATIGUE", "1"]]
    header = ["post_id", "sentence_id", "sentence_text", "DSM5_symptom", "status"]
    corpus = load_redsm5_root(make_dataset(annotations=rows, annotation_header=header))
    assert corpus.annotations[0].explanation == ""


@pytest.mark.parametrize("text", ["", "   ", "NaN", "nan"])
def test_empty_or_nan_post_text(make_dataset, text):
    root = make_dataset(posts=[["p1", "fine"], ["p2", text], ["p3", "fine"]])
    message = _load_error(root)
    assert "1 problem(s) in" in message and "redsm5_posts.csv" in message
    assert "line 3: post 'p2' has empty/NaN text; fill it in or drop the row" in message


def test_empty_sentence_text(make_dataset):
    rows = [["p1", "p1_0", " ", "FATIGUE", "1", ""]]
    message = _load_error(make_dataset(annotations=rows))
    assert "redsm5_annotations.csv" in message
    assert "line 2: sentence 'p1_0' has empty/NaN sentence_text; fill it in" in message


def test_duplicate_post_id_names_both_lines_not_text(make_dataset):
    posts = [["p1", "SECRET one"], ["p2", "two"], ["p1", "SECRET again"]]
    message = _load_error(make_dataset(posts=posts))
    assert "line 4: duplicate post_id 'p1' (first on line 2); keep one row per post" in message
    assert "SECRET" not in message


def test_annotation_for_unknown_post(make_dataset):
    rows = [["p1", "p1_0", "s", "FATIGUE", "1", ""], ["p9", "p9_0", "s", "FATIGUE", "1", ""]]
    message = _load_error(make_dataset(annotations=rows))
    assert "redsm5_annotations.csv" in message
    assert (
        "line 3: post_id 'p9' is not in the posts file; add the post or remove its annotations"
        in message
    )


def test_unknown_symptom_lists_known_and_suggests(make_dataset):
    rows = [["p1", "p1_0", "s", "SLEEP_ISSUE", "1", ""]]
    message = _load_error(make_dataset(annotations=rows))
    assert "line 2: unknown DSM5_symptom 'SLEEP_ISSUE' (did you mean 'SLEEP_ISSUES'?)" in message
    assert "use one of ['ANHEDONIA', 'APPETITE_CHANGE', 'COGNITIVE_ISSUES'," in message


def test_unknown_symptom_without_close_match(make_dataset):
    rows = [["p1", "p1_0", "s", "XYZ", "1", ""]]
    message = _load_error(make_dataset(annotations=rows))
    assert "unknown DSM5_symptom 'XYZ'; use one of" in message


@pytest.mark.parametrize("status", ["2", "-1", "yes", "", "1.5"])
def test_status_outside_zero_one(make_dataset, status):
    rows = [["p1", "p1_0", "s", "FATIGUE", "1", ""], ["p2", "p2_0", "s", "FATIGUE", status, ""]]
    message = _load_error(make_dataset(annotations=rows))
    assert f"line 3: status {status!r} is not 0 or 1; use 1 (met) or 0 (not)" in message


def test_symptom_whose_criterion_is_absent(make_dataset):
    criteria = {"criteria": [{"id": "A.1", "text": "mood"}]}
    rows = [["p1", "p1_0", "s", "FATIGUE", "1", ""]]
    message = _load_error(make_dataset(annotations=rows, criteria=criteria))
    assert "line 2: symptom FATIGUE maps to criterion A.6, which the criteria file lacks" in message


def test_all_row_errors_reported_once_and_capped(make_dataset):
    posts = [["p1", "ok"]] + [[f"q{i}", ""] for i in range(25)]
    message = _load_error(make_dataset(posts=posts, annotations=[]))
    assert "25 problem(s) in" in message
    assert "line 3: post 'q0'" in message and "line 22: post 'q19'" in message
    assert "q20" not in message
    assert message.rstrip().endswith("- and 5 more")


def test_errors_of_different_kinds_collected_together(make_dataset):
    rows = [["p9", "p9_0", "s", "FATIGUE", "1", ""], ["p1", "p1_0", "s", "MOOD", "7", ""]]
    message = _load_error(make_dataset(annotations=rows))
    assert "3 problem(s)" in message
    assert "line 2: post_id 'p9'" in message
    assert "line 3: unknown DSM5_symptom 'MOOD'" in message
    assert "line 3: status '7'" in message


def test_line_numbers_count_multiline_fields(make_dataset):
    posts = [["p1", "para one\n\npara two"], ["p2", ""]]
    message = _load_error(make_dataset(posts=posts, annotations=[]))
    assert "line 5: post 'p2' has empty/NaN text" in message


def test_ragged_row(make_dataset):
    posts = [["p1", "ok"], ["p2", "a", "b"]]
    message = _load_error(make_dataset(posts=posts, annotations=[]))
    assert "line 3: 3 fields but the header has 2; quote fields containing commas" in message


def test_not_utf8(make_dataset):
    root = make_dataset()
    (root / "redsm5" / "redsm5_posts.csv").write_bytes(b"post_id,text\np1,caf\xe9\n")
    assert "is not UTF-8 (byte 19); re-save it as UTF-8 CSV" in _load_error(root)


def test_utf8_bom_header_is_accepted(make_dataset):
    root = make_dataset()
    path = root / "redsm5" / "redsm5_posts.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(load_redsm5_root(root).posts) == 3


def test_duplicate_identical_annotation_rows_are_counted(make_dataset):
    row = ["p1", "p1_0", "s", "FATIGUE", "1", "why"]
    corpus = load_redsm5_root(make_dataset(annotations=[row, row, row, row[:4] + ["0", "why"]]))
    assert corpus.skipped == {"duplicate_annotation_rows": 2}
    assert [a.status for a in corpus.annotations] == [1, 0]


def test_criteria_bad_json_reports_position(make_dataset):
    message = _load_error(make_dataset(criteria_text='{\n  "criteria": [\n    {"id": "A.1",,}\n'))
    assert "MDD_Criteira.json is not valid JSON" in message
    assert "at line 3, column 18" in message and "fix the syntax there" in message


@pytest.mark.parametrize("criteria", [{"diagnosis": "x"}, {"criteria": []}, [1, 2]])
def test_criteria_missing_list(make_dataset, criteria):
    message = _load_error(make_dataset(criteria=criteria))
    assert 'MDD_Criteira.json: missing or empty "criteria" list; expected {"diagnosis"' in message


def test_criterion_without_id_or_text(make_dataset):
    criteria = {"criteria": [{"text": "no id"}, {"id": "A.2"}, {"id": "A.3", "text": " "}]}
    message = _load_error(make_dataset(criteria=criteria, annotations=[]))
    assert "3 problem(s) in" in message and "MDD_Criteira.json" in message
    assert 'criteria[0]: missing "id"; give each criterion an id like "A.1"' in message
    assert "criteria[1] (id 'A.2'): missing \"text\"" in message
    assert "criteria[2] (id 'A.3'): missing \"text\"" in message


def test_duplicate_criterion_ids(make_dataset):
    criteria = {"criteria": [{"id": "A.1", "text": "a"}, {"id": "A.1", "text": "b"}]}
    message = _load_error(make_dataset(criteria=criteria, annotations=[]))
    assert "criteria[1]: duplicate id 'A.1' (first at criteria[0]); ids must be unique" in message
