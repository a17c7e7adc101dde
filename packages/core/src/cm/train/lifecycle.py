"""One tracked run's lifecycle, shared by ``cm run`` and ``cm replay --eval-only``: seed,
join torchrun when launched by it, make the run directory, then call the run's listeners
around the work: ``run_started`` ... ``run_finished`` (FINISHED, FAILED, or KILLED on Ctrl-C).

Before any of it, ``cm.preflight`` loads the run's data and builds the trackers its
``[tracking]`` tables name (for this run alone), once each. A run's listeners are the
installed plugins that implement lifecycle hooks, those trackers and whatever the caller
passes as ``listeners``. They sit on a plugin manager of the run's own, so the installed plugins'
manager never changes and every listener hears its own run only. Trackers publish their
external ids on the run (``run.links["mlflow"]["run_id"]``)."""

import itertools
import random
import time
from pathlib import Path

import attrs
import numpy as np
import pluggy
import torch
from rich.console import Console

from cm import hookspecs, terminal
from cm.config.dump import dumps
from cm.distributed import World, broadcast, resolve_device, start, stop
from cm.errors import saving_through_one_interrupt
from cm.plugins import GROUP
from cm.preflight import preflight
from cm.registry import get_registry


def fixed(**kwargs):
    """A ``Run`` field set once, when the run is made."""
    return attrs.field(on_setattr=attrs.setters.frozen, **kwargs)


@attrs.define
class Run:
    """What hooks receive. ``tracked_run`` makes it and alone sets ``status``; its identity
    (experiment, directory, device, the data, the torchrun world) is fixed from then on. The
    run's body records into it (``epoch``, ``telemetry``, ``record``), trackers publish
    their external ids in ``links``."""

    experiment: object = fixed()
    directory: Path = fixed()
    device: str = fixed()
    prepared: object = fixed()  # cm.data.prepare.Prepared: loaded once for the run
    world: World = fixed(factory=World, kw_only=True)  # this process's rank under torchrun
    epoch: int = 0
    status: str = "RUNNING"
    metrics: dict = attrs.Factory(dict)
    artifacts: dict = attrs.Factory(dict)
    telemetry: list = attrs.Factory(list)  # cm.optimization.Telemetry per requested one
    links: dict = attrs.Factory(dict)  # tracker name -> its external ids (run id, ...)
    parent: "Run | None" = None  # the group run (seeds, folds) this run is a member of

    def record(self, metrics=None, artifacts=None) -> None:
        """Add scores (name -> number) and artifacts (name -> path) to what the run keeps."""
        self.metrics.update(metrics or {})
        self.artifacts.update({name: str(path) for name, path in (artifacts or {}).items()})


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_directory(experiment) -> Path:
    """``<output_dir>/<name>/<timestamp>``, or ``<timestamp>-N`` when taken: each is claimed
    by an atomic mkdir, so runs started in the same second (a sweep's workers, a test
    starting two) never share a folder or crash on one the other just made."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(experiment.output_dir) / experiment.name
    base.mkdir(parents=True, exist_ok=True)
    for n in itertools.count():
        directory = base / (f"{stamp}-{n}" if n else stamp)
        try:
            directory.mkdir()
        except FileExistsError:
            continue
        return directory


def run_hooks(installed: pluggy.PluginManager, listeners) -> pluggy.HookRelay:
    """The lifecycle hooks of one run, on a manager of their own: pluggy calls the last
    registered first, so ``listeners`` hear each event from the last given to the first,
    and the ``installed`` plugins after them (``tryfirst``/``trylast`` still apply)."""
    manager = pluggy.PluginManager(GROUP)
    manager.add_hookspecs(hookspecs)
    for name, plugin in installed.list_name_plugin():
        if plugin is not None:  # None: blocked
            manager.register(plugin, name=name)
    for i, listener in enumerate(listeners):
        manager.register(listener, name=f"run-listener-{i}")
    return manager.hook


def tracked_run(experiment, body, *, registry=None, console=None, listeners=(),
                directory=None, links=None, parent=None, label=None) -> Run:
    """Set the run up, then ``body(run, registry, console, hooks)`` between run_started and
    run_finished; ``hooks`` calls this run's listeners (see the module's docstring).
    ``directory`` and ``links``: a stopped run's folder (its config.toml kept) and the ids its
    trackers published, for a resumed run (trackers reopen their runs). A new member of a
    group run ``parent`` gets the folder ``<parent's folder>/<label>``."""
    registry = registry or get_registry()
    seed_everything(experiment.seed)
    world, device = start(resolve_device(experiment.train.device))
    try:  # whatever fails from here on, this process leaves the torchrun group
        checked = preflight(experiment, registry, trackers=world.main)
        console = (console or terminal.console()) if world.main else Console(quiet=True)
        run, hooks = open_run(experiment, checked, registry, world, device, listeners,
                              directory, links, parent, label)
        live(run, hooks, lambda: body(run, registry, console, hooks))
    finally:
        stop(world)
    return run


def open_run(experiment, checked, registry, world, device, listeners, directory=None,
             links=None, parent=None, label=None):
    """The run, on the data the checks loaded, and its directory, a new one unless given
    (a group's member: ``<parent's folder>/<label>``; rank 0 writes a new one's
    ``config.toml``), and the hooks of the run's listeners (the checks built the trackers,
    on rank 0 alone)."""
    fresh = directory is None
    if fresh and parent is not None:
        directory = parent.directory / label
        directory.mkdir()
    elif fresh:
        directory = broadcast(run_directory(experiment) if world.main else None, world)
    run = Run(experiment, directory, device, checked.prepared, world=world,
              links=dict(links or {}), parent=parent)
    if world.main and fresh:  # rank 0 alone writes files
        (run.directory / "config.toml").write_text(dumps(experiment))
    # trackers last: called first, so a listener that stops the run (a pruner) does so
    # after the event was logged
    return run, run_hooks(registry.plugins.manager, [*listeners, *checked.trackers])


def live(run, hooks, work):
    """``run_started``, ``work()``, then ``run_finished`` with how the work ended."""
    try:
        hooks.run_started(run=run)
        work()
        finish(run, hooks, "FINISHED", None)
    except KeyboardInterrupt as exc:
        if run.status == "RUNNING":  # else it came while the run was saved: stop now
            finish(run, hooks, "KILLED", exc)
        raise
    except BaseException as exc:
        finish(run, hooks, "FAILED", exc)
        raise


def finish(run, hooks, status, error):
    """``run_finished`` for every listener, through one Ctrl-C: a user who presses it while
    the trackers save is told so and the run stops once they have; a second one stops the
    saving."""
    run.status = status
    with saving_through_one_interrupt():
        hooks.run_finished(run=run, status=status, error=error)
