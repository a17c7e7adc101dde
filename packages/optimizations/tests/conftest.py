"""Shared by the optimization tests: a cache of tokenizers and encodings per session."""

import pytest


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("CM_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cm-cache"))
