"""The committed synthetic demo dataset: reproducible byte for byte, loads cleanly, covers every
criterion, has a realistic long tail of lengths, and shares no text with the real sample."""

from __future__ import annotations

import json
import statistics
from collections import Counter

import pytest

from cm.data.demo import DEMO_ROOT, write_demo
from cm.data.pairs import build_pairs, label_matrix
from cm.data.redsm5 import load_redsm5, load_redsm5_root

FILES = ("redsm5/redsm5_posts.csv", "redsm5/redsm5_annotations.csv", "DSM5/MDD_Criteira.json")


@pytest.fixture(scope="module")
def demo():
    return load_redsm5_root(DEMO_ROOT)


def test_regenerates_byte_identically(tmp_path):
    write_demo(tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (DEMO_ROOT / name).read_bytes(), name


def test_other_sizes_and_seeds_are_deterministic_and_valid(tmp_path):
    first, second = write_demo(tmp_path / "a", 40, seed=5), write_demo(tmp_path / "b", 40, seed=5)
    for name in FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes()
    corpus = load_redsm5_root(first)
    assert len(corpus.posts) == 40
    other = write_demo(tmp_path / "c", 40, seed=6)
    assert (other / FILES[0]).read_bytes() != (first / FILES[0]).read_bytes()


def test_loads_cleanly(demo):
    assert len(demo.posts) == 300
    assert [c.id for c in demo.criteria] == [f"A.{i}" for i in range(1, 10)]
    assert demo.skipped == {"duplicate_annotation_rows": 0}
    assert len(build_pairs(demo)[0]) == 300 * 9


def test_every_criterion_has_enough_positive_posts(demo):
    counts = Counter(cid for ids in label_matrix(demo).values() for cid in ids)
    assert set(counts) == {f"A.{i}" for i in range(1, 10)}
    assert min(counts.values()) >= 20, counts


def test_about_a_third_of_posts_have_no_positives(demo):
    empty = sum(1 for ids in label_matrix(demo).values() if not ids)
    assert 0.30 * 300 <= empty <= 0.40 * 300


def test_has_status_zero_special_case_and_multi_symptom_rows(demo):
    symptoms = Counter((a.symptom, a.status) for a in demo.annotations)
    assert sum(n for (_, status), n in symptoms.items() if status == 0) >= 100
    assert symptoms[("SPECIAL_CASE", 1)] >= 10
    per_sentence = Counter((a.post_id, a.sentence_id) for a in demo.annotations)
    assert max(per_sentence.values()) == 2


def test_long_tailed_lengths_with_posts_past_512_tokens(demo):
    words = [len(p.text.split()) for p in demo.posts]
    assert 100 <= statistics.median(words) <= 160
    assert sum(w > 400 for w in words) >= 10
    assert min(words) >= 20 and max(words) <= 1000


def test_annotated_sentences_appear_in_their_posts(demo):
    texts = {p.post_id: p.text for p in demo.posts}
    for ann in demo.annotations:
        assert ann.sentence_text in texts[ann.post_id], ann.sentence_id
        assert ann.sentence_id.startswith(ann.post_id + "_")


def test_total_size_is_small():
    assert sum((DEMO_ROOT / name).stat().st_size for name in FILES) < 1_500_000


def _shingles(text, n=6):
    words = text.lower().split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_shares_no_text_with_the_real_sample(demo, shared_sample):
    sample = load_redsm5(
        shared_sample / "redsm5_posts.csv",
        shared_sample / "redsm5_annotations.csv",
        shared_sample / "MDD_Criteira.json",
    )
    demo_shingles = set().union(*(_shingles(p.text) for p in demo.posts))
    for post in sample.posts:
        assert not _shingles(post.text) & demo_shingles, post.post_id
    real = json.loads((shared_sample / "MDD_Criteira.json").read_text(encoding="utf-8"))
    real_shingles = set().union(*(_shingles(c["text"]) for c in real["criteria"]))
    for criterion in demo.criteria:
        assert not _shingles(criterion.text) & real_shingles, criterion.id


def test_the_demo_dataset_generates_other_sizes_once_into_the_cache(tmp_path, monkeypatch):
    from cm.data import datasets

    monkeypatch.setenv("CM_CACHE_DIR", str(tmp_path))
    shipped = datasets.demo(datasets.DemoOptions())
    assert len(shipped.posts) == 300 and not (tmp_path / "demo").exists()
    small = datasets.demo(datasets.DemoOptions(posts=60, length_scale=0.5))
    [folder] = (tmp_path / "demo").iterdir()
    assert folder.name == "60-0.5" and len(small.posts) == 60
    words = statistics.median(len(p.text.split()) for p in small.posts)
    full = statistics.median(len(p.text.split()) for p in datasets.demo(
        datasets.DemoOptions(posts=60)).posts)
    assert words < 0.7 * full  # half-length ranges: about half the words
    stamp = (folder / FILES[0]).stat().st_mtime_ns
    again = datasets.demo(datasets.DemoOptions(posts=60, length_scale=0.5))
    assert [p.text for p in again.posts] == [p.text for p in small.posts]
    assert (folder / FILES[0]).stat().st_mtime_ns == stamp  # read, not written again
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["60-0.5", "60-1"]
