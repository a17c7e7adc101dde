"""`cm predict` never scores a bad row and never overwrites its input; every CSV is read
strictly (issue 20, points 3 and 4): one attack per case, exit 2 naming the file and line."""

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from cm.cli.main import cli
from cm.data.redsm5 import load_redsm5
from cm.errors import UserError

OPEN_QUOTE = 's_t1,"open quote\ns_t2,second post\ns_t3,third post\n'

POSTS = {
    "duplicate id": ("posts.csv", "post_id,text\np1,tired\np2,sad\np1,awake\n",
                     ["line 4", "duplicate post_id 'p1' (first on line 2)"]),
    "empty id": ("posts.csv", "post_id,text\np1,tired\n ,sad\n",
                 ["line 3", "empty or missing post_id"]),
    "empty text": ("posts.csv", 'post_id,text\np1,tired\np2,"  "\n',
                   ["line 3", "post 'p2' has empty text"]),
    "null text": ("posts.jsonl", '{"post_id": "p1", "text": null}\n',
                  ["line 1", "post 'p1' has no text"]),
    "missing text": ("posts.jsonl", '{"post_id": "p1", "text": "ok"}\n\n{"post_id": "p2"}\n',
                     ["line 3", "post 'p2' has no text"]),
    "number as text": ("posts.jsonl", '{"post_id": "p1", "text": 3}\n',
                       ["line 1", "text of type int"]),
    "null id": ("posts.jsonl", '{"post_id": null, "text": "tired"}\n',
                ["line 1", "empty or missing post_id"]),
    "open quote": ("posts.csv", "post_id,text\n" + OPEN_QUOTE,
                   ["line 2", "unreadable CSV", "quotes"]),
    "text after a quote": ("posts.csv", 'post_id,text\np1,"tired" all day\n',
                           ["line 2", "unreadable CSV"]),
}


@pytest.mark.parametrize("case", list(POSTS))
def test_a_bad_posts_row_is_exit_2_naming_its_line(case, checkpoint, tmp_path):
    name, content, fragments = POSTS[case]
    posts, out = tmp_path / name, tmp_path / "out.csv"
    posts.write_text(content)
    result = CliRunner().invoke(cli, ["predict", str(posts), "--model", str(checkpoint),
                                      "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in [str(posts), *fragments]:
        assert fragment in result.output, result.output
    assert not out.exists()


@pytest.mark.parametrize("how", ["same path", "relative path", "symlink", "hard link"])
def test_out_that_is_the_posts_file_is_refused(how, checkpoint, tmp_path, monkeypatch):
    posts = tmp_path / "posts.csv"
    posts.write_text("post_id,text\np1,tired\n")
    before = posts.read_bytes()
    out = {"same path": posts, "relative path": Path("posts.csv")}.get(how, tmp_path / "o.csv")
    if how == "symlink":
        out.symlink_to(posts)
    elif how == "hard link":
        os.link(posts, out)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["predict", str(posts), "--model", str(checkpoint),
                                      "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert f"--out {out} is the posts file {posts}" in result.output
    assert posts.read_bytes() == before


def test_two_posts_give_eighteen_rows_each_with_its_own_values(checkpoint, tmp_path):
    posts, out = tmp_path / "posts.jsonl", tmp_path / "out.json"
    posts.write_text(json.dumps({"post_id": "a", "text": "I cannot sleep at night"}) + "\n" +
                     json.dumps({"post_id": 7, "text": "night night sleep"}) + "\n")
    result = CliRunner().invoke(cli, ["predict", str(posts), "--model", str(checkpoint),
                                      "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [(r["post_id"], r["criterion_id"]) for r in rows] == \
        [(p, f"A.{i}") for p in ("a", "7") for i in range(1, 10)]


DATASET = {
    "posts": ("redsm5_posts.csv", "post_id,text\n" + OPEN_QUOTE),
    "annotations": ("redsm5_annotations.csv",
                    "post_id,sentence_id,sentence_text,DSM5_symptom,status,explanation\n"
                    's_t1,s_t1_0,"first,DEPRESSED_MOOD,1,x\ns_t2,s_t2_0,b,ANHEDONIA,1,x\n'),
}


@pytest.mark.parametrize("which", list(DATASET))
def test_a_quoting_error_in_a_dataset_file_names_the_file_and_line(which, tmp_path):
    files = {"redsm5_posts.csv": "post_id,text\ns_t1,first post\ns_t2,second post\n",
             "redsm5_annotations.csv": "post_id,sentence_id,sentence_text,DSM5_symptom,"
                                       "status,explanation\n",
             "MDD_Criteira.json": json.dumps({"criteria": [{"id": "A.1", "text": "mood"},
                                                           {"id": "A.2", "text": "joy"}]})}
    name, content = DATASET[which]
    files[name] = content
    for file, text in files.items():
        (tmp_path / file).write_text(text)
    with pytest.raises(UserError) as info:
        load_redsm5(*(tmp_path / f for f in files))
    assert f"{tmp_path / name} (line 2): unreadable CSV" in str(info.value)
