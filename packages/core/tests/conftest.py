"""Shared fixtures for cm-core tests: the public ReDSM5 sample and tiny hand-written datasets."""

from __future__ import annotations

import csv
import json
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

SAMPLE_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "redsm5-sample"
POST_HEADER = ["post_id", "text"]
ANNOTATION_HEADER = [
    "post_id", "sentence_id", "sentence_text", "DSM5_symptom", "status", "explanation",
]  # fmt: skip
CRITERIA = {
    "diagnosis": "test",
    "criteria": [{"id": f"A.{i}", "text": f"criterion {i}"} for i in range(1, 10)],
}


@pytest.fixture
def shared_sample() -> Path:
    """The official 17-post paraphrased sample (lives outside the repo, in the workspace)."""
    if not SAMPLE_DIR.is_dir():
        pytest.skip(
            "../shared/fixtures/redsm5-sample not present (only in the project's workspace)"
        )
    return SAMPLE_DIR


@pytest.fixture
def sample_root(shared_sample: Path, tmp_path: Path) -> Path:
    """The shared sample copied into the standard <root>/redsm5, <root>/DSM5 layout."""
    root = tmp_path / "sample"
    (root / "redsm5").mkdir(parents=True)
    (root / "DSM5").mkdir()
    for name in ("redsm5_posts.csv", "redsm5_annotations.csv"):
        shutil.copy(shared_sample / name, root / "redsm5" / name)
    shutil.copy(shared_sample / "MDD_Criteira.json", root / "DSM5" / "MDD_Criteira.json")
    return root


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *rows])


@pytest.fixture
def make_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Write a tiny dataset in the standard layout; returns its root.

    Defaults: three valid posts, two valid annotations and nine criteria; pass rows, a
    header, a criteria object or raw criteria text to break exactly one thing.
    """

    def make(
        posts: list[list] | None = None,
        annotations: list[list] | None = None,
        criteria: object = CRITERIA,
        criteria_text: str | None = None,
        post_header: list[str] = POST_HEADER,
        annotation_header: list[str] = ANNOTATION_HEADER,
    ) -> Path:
        root = tmp_path / "data"
        (root / "redsm5").mkdir(parents=True, exist_ok=True)
        (root / "DSM5").mkdir(exist_ok=True)
        if posts is None:
            posts = [["p1", "first post"], ["p2", "second post"], ["p3", "third post"]]
        if annotations is None:
            annotations = [
                ["p1", "p1_0", "first post", "DEPRESSED_MOOD", "1", "why"],
                ["p2", "p2_0", "second post", "SLEEP_ISSUES", "0", "why"],
            ]
        _write_csv(root / "redsm5" / "redsm5_posts.csv", post_header, posts)
        _write_csv(root / "redsm5" / "redsm5_annotations.csv", annotation_header, annotations)
        text = criteria_text if criteria_text is not None else json.dumps(criteria, indent=2)
        (root / "DSM5" / "MDD_Criteira.json").write_text(text, encoding="utf-8")
        return root

    return make


def make_distribution(root, dist, version, plugin, module, source):
    """Write an installed-looking distribution (module + dist-info) under ``root``."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[cm]\n{plugin} = {module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fake site-packages directory on sys.path: ``(add, path)``, where
    ``add(dist, version, plugin, module, source)`` writes a distribution there whose entry
    point ``plugin`` of group ``cm`` is the module ``module`` holding ``source``."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def add(dist, version, plugin, module, source):
        make_distribution(tmp_path, dist, version, plugin, module, source)

    return add, tmp_path
