"""Checks made before a run (or sweep) starts any work, so a bad experiment fails in
seconds with exit 2, before a run folder or a tracking run exists, instead of after an
epoch: the device and the optimizations on it, the output folder can be written, the
dataset loads and every split of it is non-empty, every criterion fits in max_length, and
each tracker's store answers (trackers check their store when they are built)."""

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


def problems(experiment, registry=None) -> list[str]:
    """Everything ``cm run`` and ``cm sweep`` would refuse beyond the file itself, found
    with nothing written (``cm config validate`` asks this too): the device and the
    optimizations on it (conflicts included), the output folder, the dataset (every split
    non-empty), room for every criterion in ``data.max_length``, the criterion
    ``hpo.metric`` names. One line per problem; the data checks need the data to load."""
    from cm.registry import get_registry

    registry = registry or get_registry()
    found = []
    for check in (check_device, check_output, check_data):
        try:
            check(experiment, registry)
        except UserError as exc:
            found += str(exc).splitlines()
    return found


def check_device(experiment, registry) -> None:
    from cm.optimization import resolve
    from cm.train.lifecycle import resolve_device

    resolve(experiment.optimizations, registry, resolve_device(experiment.train.device))


def check_output(experiment, registry) -> None:
    writable_directory(experiment.output_dir, "output_dir")


def check_data(experiment, registry) -> None:
    from cm.data.encode import post_budget
    from cm.data.prepare import prepare
    from cm.model.backbone import experiment_tokenizer

    prepared = prepare(experiment, registry)  # loads the dataset; refuses an empty split
    criteria = prepared.corpus.criteria
    check_sweep_metric(experiment, [c.id for c in criteria])
    tokenizer = experiment_tokenizer(experiment, prepared)
    data = experiment.data
    for criterion in criteria:
        tokens = tokenizer(criterion.text, add_special_tokens=False)["input_ids"]
        post_budget(criterion.text, len(tokens), data.max_length, data.truncation, data.stride)


def check_sweep_metric(experiment, criteria) -> None:
    """``hpo.metric = "val_tuned/A.10/f1"`` names a criterion this dataset must have."""
    metric = experiment.hpo.metric if experiment.hpo else None
    parts = (metric or "").split("/")
    if len(parts) == 3 and parts[1] not in criteria:
        raise UserError(f"$.hpo.metric: {metric!r} names criterion {parts[1]!r}, which this "
                        f"dataset does not have (criteria: {', '.join(criteria)}); e.g. "
                        f"{parts[0]}/{criteria[0]}/{parts[2]}")


def check(experiment, registry=None) -> None:
    """Refuse (exit 2) with every one of ``problems``, or pass."""
    found = problems(experiment, registry)
    if len(found) == 1:
        raise UserError(found[0])
    if found:
        raise UserError(f"{len(found)} problems:\n" + "\n".join(f"  {p}" for p in found))


def preflight(experiment, registry=None) -> None:
    """``check``, then each tracker's store (a tracker checks it when it is built)."""
    from cm.registry import get_registry

    registry = registry or get_registry()
    check(experiment, registry)
    for spec in experiment.tracking.values():
        registry.get(spec.kind, spec.name).build(spec.options, experiment=experiment)
