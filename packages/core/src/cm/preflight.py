"""Checks made before a run (or sweep) starts any work, so a bad experiment fails in
seconds with exit 2 instead of after an epoch: the output folder can be written, the
dataset loads and every split of it is non-empty, and each tracker's store answers
(trackers check their store when they are built). What the checks load is kept
(``Checked``): a run uses that data and those trackers, loaded and built once."""

import os
from pathlib import Path

import attrs

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


@attrs.frozen
class Checked:
    """What passed the checks: the data (``cm.data.prepare.Prepared``: corpus, pairs,
    splits) and the trackers ``[tracking]`` names, built (none when not asked for)."""

    prepared: object
    trackers: tuple


def preflight(experiment, registry, trackers=True) -> Checked:
    """The output folder is writable, the dataset loads and splits with no split empty,
    and (``trackers``: only torchrun's rank 0 talks to them) each tracker is built."""
    from cm.data.prepare import prepare

    writable_directory(experiment.output_dir, "output_dir")
    prepared = prepare(experiment, registry)  # refuses a split left empty
    built = tuple(registry.build(spec, experiment=experiment)
                  for spec in experiment.tracking.values()) if trackers else ()
    return Checked(prepared, built)
