"""cm's cache folder (tokenizers, encoded pairs, generated demo data) and the one way a
folder entry is built in it (an encoded-pairs entry is one file: ``cm.data.encode`` replaces
it atomically). Standard library only: cheap to import at start-up."""

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def cache_root() -> Path:
    """Where tokenizers and encoded pairs are cached: ``$CM_CACHE_DIR`` or ``~/.cache/cm``."""
    return Path(os.environ.get("CM_CACHE_DIR") or Path.home() / ".cache" / "cm")


def build_once(entry: Path, write: Callable[[Path], object]) -> Path:
    """``entry``, a folder ``write(folder)`` fills, built the first time only: written into a
    temporary sibling and renamed into place, so a reader never sees half an entry and of
    concurrent builders whichever rename lands first wins."""
    entry = Path(entry)
    if entry.is_dir():
        return entry
    entry.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".tmp-{entry.name}-", dir=entry.parent))
    try:
        write(scratch)
        try:
            os.rename(scratch, entry)
        except OSError:
            if not entry.is_dir():  # not a lost race with another builder: a real failure
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return entry
