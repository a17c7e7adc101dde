"""One tracked run's lifecycle, shared by ``cm run`` and ``cm replay --eval-only``: seed,
join torchrun when launched by it, make the run directory, then call the run's listeners
around the work: ``run_started`` ... ``run_finished`` (FINISHED, FAILED, or KILLED on Ctrl-C).

A run's listeners are the installed plugins that implement lifecycle hooks, the trackers its
``[tracking]`` tables name (built for this run alone) and whatever the caller passes as
``listeners``. They sit on a plugin manager of the run's own, so the installed plugins'
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
from cm.distributed import World, broadcast, start, stop
from cm.errors import UserError, saving_through_one_interrupt
from cm.plugins import GROUP
from cm.registry import get_registry


@attrs.define
class Run:
    """What hooks receive: the resolved experiment, where outputs go, and progress."""

    experiment: object
    directory: Path
    device: str
    epoch: int = 0
    status: str = "RUNNING"
    metrics: dict = attrs.Factory(dict)
    artifacts: dict = attrs.Factory(dict)
    telemetry: list = attrs.Factory(list)  # cm.optimization.Telemetry per requested one
    world: World = attrs.Factory(World)  # this process's rank under torchrun
    links: dict = attrs.Factory(dict)  # tracker name -> its external ids (run id, ...)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device = 'cuda' but no CUDA GPU is visible; use 'auto' or 'cpu'")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("train.device = 'mps' but MPS is not available; use 'auto' or 'cpu'")
    return name


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


def build(registry, spec, **kwargs):
    """The component ``spec`` names (a head, a loss, a tracker ...), built with its options."""
    return registry.get(spec.kind, spec.name).build(spec.options, **kwargs)


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


def tracked_run(experiment, body, *, registry=None, console=None, listeners=()) -> Run:
    """Set the run up, then ``body(run, registry, console, hooks)`` between run_started and
    run_finished; ``hooks`` calls this run's listeners (see the module's docstring)."""
    registry = registry or get_registry()
    seed_everything(experiment.seed)
    world, device = start(resolve_device(experiment.train.device))
    try:  # whatever fails from here on, this process leaves the torchrun group
        console = (console or terminal.console()) if world.main else Console(quiet=True)
        run, hooks = open_run(experiment, registry, world, device, listeners)
        live(run, hooks, lambda: body(run, registry, console, hooks))
    finally:
        stop(world)
    return run


def open_run(experiment, registry, world, device, listeners):
    """The run and its directory (rank 0 writes ``config.toml`` and builds the trackers),
    and the hooks of the run's listeners."""
    directory = broadcast(run_directory(experiment) if world.main else None, world)
    run = Run(experiment, directory, device, world=world)
    trackers = []
    if world.main:  # rank 0 alone writes files and talks to trackers
        (run.directory / "config.toml").write_text(dumps(experiment))
        trackers = [build(registry, spec, experiment=experiment)
                    for spec in experiment.tracking.values()]
    # trackers last: called first, so a listener that stops the run (a pruner) does so
    # after the event was logged
    return run, run_hooks(registry.plugins.manager, [*listeners, *trackers])


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
