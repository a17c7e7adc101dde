"""Which source a bench ran, read in the working tree at run time, and the GPU it ran on.

git's HEAD is trusted when the tree has no changes. A copy of a tree sent to another machine
(the lent GPU machine) can carry a stale ``.git`` that names an older snapshot and shows
every newer file as a change: there the commit comes from a stamp made beside the real
repository (``python packages/core/src/cm/bench/source.py`` prints it as two environment
assignments, CM_SOURCE_COMMIT and CM_SOURCE_DIGEST) and is trusted only when the copy's
source digest equals the stamp's. Standard library only: scripts/gpu-check runs it before cm
is installed (it puts this source tree on ``sys.path``).
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

FOLDERS = ("packages", "benchmarks", "experiments", "scripts")
SUFFIXES = {".py", ".toml", ".cfg", ".json", ".txt", ""}
SKIPPED = {"results", "__pycache__", ".venv", "build"}


def source_digest(root: Path) -> str:
    """sha256 over the path and bytes of every source file under FOLDERS (outputs, caches
    and build folders left out), in path order."""
    digest = hashlib.sha256()
    for path in sorted(_source_files(root)):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _source_files(root: Path):
    for folder in FOLDERS:
        for path in (root / folder).rglob("*"):
            parts = set(path.relative_to(root).parts)
            if (path.is_file() and path.suffix in SUFFIXES and not parts & SKIPPED
                    and not any(part.endswith(".egg-info") for part in parts)):
                yield path


def source_state(root: Path, environ=os.environ) -> dict:
    """commit, dirty, the source digest, and how the commit is known: "git" (a clean tree),
    "stamp" (the digest matches CM_SOURCE_DIGEST), or None (unknown: git's HEAD is then
    kept as ``git_head`` only)."""
    from cm.lineage import git_state

    root = Path(root).resolve()
    digest = source_digest(root)
    state = git_state(root)
    if state["dirty"] is False:
        return {**state, "digest": digest, "known_by": "git"}
    if environ.get("CM_SOURCE_DIGEST") == digest and environ.get("CM_SOURCE_COMMIT"):
        commit, _, dirty = environ["CM_SOURCE_COMMIT"].partition("+")
        return {"commit": commit, "dirty": dirty == "dirty", "digest": digest,
                "known_by": "stamp"}
    return {"commit": None, "dirty": state["dirty"], "digest": digest, "known_by": None,
            "git_head": state["commit"]}


GPU_FIELDS = ("name", "clocks.sm", "clocks.max.sm", "clocks.mem", "power.limit",
              "power.draw", "temperature.gpu")


def gpu_state() -> dict | None:
    """The first GPU's name, clocks (MHz), power (W) and temperature as nvidia-smi reads them
    now, or None where nvidia-smi cannot be run (no GPU, no driver)."""
    try:
        line = subprocess.run(["nvidia-smi", f"--query-gpu={','.join(GPU_FIELDS)}",
                               "--format=csv,noheader,nounits"], capture_output=True,
                              text=True, timeout=30, check=True).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None
    return dict(zip(GPU_FIELDS, (value.strip() for value in line.split(",")), strict=False))


def stamp(root: Path) -> str:
    """``CM_SOURCE_COMMIT=<sha>[+dirty] CM_SOURCE_DIGEST=<digest>`` for this tree."""
    from cm.lineage import git_state

    root = Path(root).resolve()
    state = git_state(root)
    commit = (state["commit"] or "unknown") + ("+dirty" if state["dirty"] else "")
    return f"CM_SOURCE_COMMIT={commit} CM_SOURCE_DIGEST={source_digest(root)}"


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this tree's cm
    print(stamp(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
