"""The one versions() and device_name() that crash reports, trackers and the bench share."""

import platform
from importlib import metadata

from cm.environment import VERSIONED, device_name, versions


def test_versions_name_python_the_libraries_and_every_cm_distribution():
    found = versions()
    assert found["python"] == platform.python_version()
    assert found["torch"] == metadata.version("torch")
    assert found["cm-core"] == metadata.version("cm-core")
    assert set(VERSIONED) <= set(found)
    assert list(found) == sorted(found)


def test_an_absent_library_is_named_absent(monkeypatch):
    monkeypatch.setattr("cm.environment.VERSIONED", ("no-such-distribution-cm",))
    assert versions()["no-such-distribution-cm"] == "absent"


def test_the_cpu_has_a_name():
    name = device_name("cpu")
    assert isinstance(name, str) and name.strip() == name and name
