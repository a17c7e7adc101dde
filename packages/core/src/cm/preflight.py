"""Checks made before a run (or sweep) starts any work, so a bad experiment fails in
seconds with exit 2, before a run folder or a tracking run exists, instead of after an
epoch: the device and the optimizations on it, the output folder can be written, the
dataset loads and every split of it is non-empty, every criterion fits in max_length, and
each tracker's store answers (trackers check their store when they are built). What the
checks load is kept (``Checked``): a run uses that data and those trackers, loaded and built
once."""

import os
from pathlib import Path

import attrs

from cm.errors import UserError
from cm.factories import check_factories


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
    with nothing written (``cm config validate`` asks this too): the components' factories
    (imported, checked against their contracts), the device and the
    optimizations on it (conflicts included), the output folder, the dataset (every split
    non-empty), room for every criterion in ``data.max_length``, the criterion
    ``hpo.metric`` names. One line per problem; the data checks need the data to load."""
    from cm.registry import get_registry

    return examine(experiment, registry or get_registry())[0]


def examine(experiment, registry) -> tuple[list[str], object]:
    """``problems``' lines, and the data the data check loaded (None when it could not)."""
    found, prepared = [], None
    for check in (check_factories, check_device, check_output, check_data):
        try:
            result = check(experiment, registry)
        except UserError as exc:
            found += [line for line in str(exc).splitlines() if line not in found]
        else:
            prepared = result if result is not None else prepared
    return found, prepared


def check_device(experiment, registry) -> None:
    from cm.distributed import resolve_device
    from cm.optimization import resolve

    resolve(experiment.optimizations, registry, resolve_device(experiment.train.device))


def check_output(experiment, registry) -> None:
    writable_directory(experiment.output_dir, "output_dir")


def check_data(experiment, registry):
    """The data loaded and split (``cm.data.prepare.Prepared``), each criterion fitting."""
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
    return prepared


def check_sweep_metric(experiment, criteria) -> None:
    """``hpo.metric = "val_tuned/A.10/f1"`` names a criterion this dataset must have."""
    metric = experiment.hpo.metric if experiment.hpo else None
    parts = (metric or "").split("/")
    if len(parts) == 3 and parts[1] not in criteria:
        raise UserError(f"$.hpo.metric: {metric!r} names criterion {parts[1]!r}, which this "
                        f"dataset does not have (criteria: {', '.join(criteria)}); e.g. "
                        f"{parts[0]}/{criteria[0]}/{parts[2]}")


def check(experiment, registry=None):
    """Refuse (exit 2) with every one of ``problems``, or return the data the checks
    loaded."""
    from cm.registry import get_registry

    found, prepared = examine(experiment, registry or get_registry())
    if len(found) == 1:
        raise UserError(found[0])
    if found:
        raise UserError(f"{len(found)} problems:\n" + "\n".join(f"  {p}" for p in found))
    return prepared


@attrs.frozen
class Checked:
    """What passed the checks: the data (``cm.data.prepare.Prepared``: corpus, pairs,
    splits) and the trackers ``[tracking]`` names, built (none when not asked for)."""

    prepared: object
    trackers: tuple


def preflight(experiment, registry, trackers=True) -> Checked:
    """``check``, then (``trackers``: only torchrun's rank 0 talks to them) each tracker
    built, which checks its store; what they loaded and built is kept for the run."""
    prepared = check(experiment, registry)
    built = tuple(registry.build(spec, experiment=experiment)
                  for spec in experiment.tracking.values()) if trackers else ()
    return Checked(prepared, built)
