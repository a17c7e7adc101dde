"""Checks made before a run (or sweep) starts any work, so a bad experiment fails in
seconds with exit 2 instead of after an epoch: the output folder can be written, the
dataset loads and every split of it is non-empty, and each tracker's store answers
(trackers check their store when they are built)."""

import os
from pathlib import Path

from cm.errors import UserError


def writable_directory(path, what) -> None:
    """``path`` is, or can be created as, a directory this process may write in."""
    path = Path(path).absolute()
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == path else f"lies under {existing}, which is a file"
        raise UserError(f"{what} {path} {where}, not a directory; choose another path or "
                        "move that file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path}: {existing} is not writable by this user; choose a "
                        "writable path or fix its permissions")


def preflight(experiment, registry=None) -> None:
    from cm.data.prepare import prepare
    from cm.registry import get_registry

    registry = registry or get_registry()
    writable_directory(experiment.output_dir, "output_dir")
    prepare(experiment, registry)  # loads the dataset; refuses a split left empty
    for spec in experiment.tracking.values():
        registry.build(spec, experiment=experiment)
