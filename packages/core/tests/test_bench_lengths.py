"""Bench length profiles, the recorded source commit and the bench's batch-size rule: no
training here (``cm bench`` runs are in test_bench.py)."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cm.bench.config import load_bench
from cm.bench.lengths import PROFILES, profile, reshape
from cm.bench.source import source_digest, source_state, stamp
from cm.config.decode import ConfigError
from cm.data.encode import Encoded

DEMO = Path(__file__).resolve().parents[3] / "experiments" / "demo-posts.toml"


def test_the_redsm5_post_profile_follows_the_measured_quantiles():
    lengths = profile("redsm5", "post").draw(200_000, seed=0)
    for q, tokens in [(0.10, 20), (0.25, 50), (0.50, 124), (0.75, 292), (0.90, 736),
                      (0.99, 4428)]:
        assert np.quantile(lengths, q) == pytest.approx(tokens, rel=0.03)
    # pairs = criterion (~35) + post + 3 specials: 32% over 256 and 15.5% over 512 measured
    assert np.mean(lengths + 38 > 256) == pytest.approx(0.32, abs=0.03)
    assert np.mean(lengths + 38 > 512) == pytest.approx(0.155, abs=0.03)
    assert 330 < lengths.mean() < 430  # measured mean 364


def test_the_sentence_profile_makes_pairs_of_about_55_tokens():
    lengths = profile("redsm5", "sentence").draw(100_000, seed=1)
    assert 16 < lengths.mean() < 20  # measured: ~18 tokens a sentence
    assert np.mean(lengths + 35 + 3) == pytest.approx(55, abs=3)


def test_draws_are_seeded():
    post = PROFILES["redsm5"]["post"]
    assert (post.draw(50, 3) == post.draw(50, 3)).all()
    assert (post.draw(50, 3) != post.draw(50, 4)).any()


example = st.builds(
    lambda criterion, post, index: Encoded(
        input_ids=(1, *criterion, 2, *post, 2),
        token_type_ids=(0,) * (len(criterion) + 2) + (1,) * (len(post) + 1),
        pair_index=index),
    st.lists(st.integers(5, 99), min_size=1, max_size=40),
    st.lists(st.integers(5, 99), min_size=0, max_size=60),
    st.integers(0, 1000))


@given(st.lists(st.tuples(example, st.integers(1, 9000)), min_size=1, max_size=20),
       st.integers(48, 600))
def test_reshape_keeps_the_criterion_and_fits_the_drawn_length(cases, max_length):
    encoded, lengths = zip(*cases, strict=True)
    for before, after, length in zip(encoded, reshape(list(encoded), lengths, max_length),
                                     lengths, strict=True):
        head = before.token_type_ids.index(1)
        assert after.input_ids[:head] == before.input_ids[:head]
        assert after.input_ids[-1] == before.input_ids[-1]
        assert len(after.input_ids) == head + max(1, min(length, max_length - head - 1)) + 1
        assert len(after.input_ids) <= max(max_length, head + 2)
        assert after.token_type_ids == (0,) * head + (1,) * (len(after.input_ids) - head)
        assert set(after.input_ids[head:-1]) <= set(before.input_ids[1:])
        assert after.pair_index == before.pair_index


def git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "packages").mkdir()
    (tmp_path / "packages" / "a.py").write_text("x = 1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    return tmp_path


def head(root) -> str:
    return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_a_clean_tree_names_git_head(repo):
    state = source_state(repo, environ={})
    assert (state["commit"], state["dirty"], state["known_by"]) == (head(repo), False, "git")


def test_a_copied_tree_with_a_stale_git_takes_the_commit_of_a_matching_stamp(repo):
    (repo / "packages" / "a.py").write_text("x = 2\n")  # newer source than .git's HEAD
    env = dict(part.split("=", 1) for part in stamp(repo).split())
    assert env["CM_SOURCE_COMMIT"] == head(repo) + "+dirty"
    state = source_state(repo, environ={**env, "CM_SOURCE_COMMIT": "f00d"})
    assert (state["commit"], state["dirty"], state["known_by"]) == ("f00d", False, "stamp")
    (repo / "packages" / "a.py").write_text("x = 3\n")  # the stamp is for other source
    stale = source_state(repo, environ=env)
    assert stale["commit"] is None and stale["known_by"] is None
    assert stale["git_head"] == head(repo) and stale["dirty"] is True


def test_the_digest_skips_outputs_and_caches(repo):
    before = source_digest(repo)
    (repo / "packages" / "__pycache__").mkdir()
    (repo / "packages" / "__pycache__" / "a.pyc").write_bytes(b"\0")
    (repo / "benchmarks" / "results").mkdir(parents=True)
    (repo / "benchmarks" / "results" / "r.json").write_text("{}")
    assert source_digest(repo) == before
    (repo / "packages" / "b.py").write_text("")
    assert source_digest(repo) != before


BENCH = f"""
base = "{DEMO}"
[train]
batch_size = 8
[bench]
{{table}}
[[bench.configs]]
name = "cm"
[[bench.configs]]
name = "big"
set = {{ "train.batch_size" = 32 }}
"""


def test_a_configuration_at_another_batch_size_than_the_reference_is_refused(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text(BENCH.replace("{table}", 'lengths = "redsm5"'))
    with pytest.raises(ConfigError) as error:
        load_bench(path)
    assert "configs (big): train.batch_size = 32, but the reference runs at 8" in str(error.value)


def test_an_unknown_length_profile_is_refused_naming_the_known_ones(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text(BENCH.replace("{table}", 'lengths = "reddit"'))
    with pytest.raises(ConfigError) as error:
        load_bench(path)
    assert "$.bench.lengths: 'reddit' is not a length profile; choose one of ['redsm5']" in str(
        error.value)
