"""``cm run --resume RUN_DIR``: a stopped run (SIGTERM, Ctrl-C, a crash, SIGKILL) continues
in its own folder from the last state it saved, and ends as it would have without the stop.

The state (``RUN_DIR/resume/state.pt``, with ``state.json`` saying how far it got) is saved at
every epoch end and every ``train.save_every_steps`` optimizer steps, each time replacing the
last (written to a temporary file, then renamed). It holds the model, optimizer, scheduler and
grad scaler; the python, numpy, torch and CUDA random generators; the epoch, the batches of
it done (the batch order is a function of the seed and the epoch, so those are skipped) and
their loss tally, the optimizer step; the best epoch (score, weights), the early-stopping
wait and the history; and the trackers' links (the MLflow run reopened). The loader's own
generator only seeds loader workers, which draw nothing in cm, so it is not kept.

A resume runs the run's own config (``RUN_DIR/config.toml``): a FILE or ``--set`` that
differs is refused naming the keys, except ``UNCHANGING``: keys that cannot change results."""

import json
import os
import random
from pathlib import Path

import attrs
import numpy as np
import torch

from cm.config import flatten, load_experiment, to_dict
from cm.errors import UserError
from cm.train.loop import Tally

FOLDER = "resume"
STATE = "state.pt"
POSITION = "state.json"
UNCHANGING = ("train.save_every_steps",)  # how often state is saved: results stay the same


@attrs.frozen
class Resume:
    """A stopped run to continue: its folder and the state it saved last."""

    directory: Path
    state: dict

    @property
    def links(self) -> dict:
        return self.state["links"]


def open_resume(directory: Path, experiment_file, overrides, registry):
    """The experiment to continue the run in ``directory`` with, and its saved state; a
    ``UserError`` for a folder that is no run, a finished run, a changed config, no state."""
    config = directory / "config.toml"
    if not config.is_file():
        raise UserError(f"--resume {directory}: not a run folder (no config.toml); give the "
                        "folder cm run printed (<output_dir>/<name>/<timestamp>)")
    if (directory / "metrics.json").exists():
        raise UserError(f"--resume {directory}: the run finished (metrics.json is there); "
                        "nothing to resume")
    saved = load_experiment(config, registry=registry)
    experiment = load_experiment(experiment_file or config, overrides, registry=registry)
    changed = differing_keys(saved, experiment)
    if changed:
        raise UserError(f"--resume {directory}: the config differs from its config.toml at "
                        f"{', '.join(changed)}; a resumed run keeps its config (only "
                        f"{', '.join(UNCHANGING)} may change)")
    return experiment, Resume(directory, load_state(directory))


def differing_keys(saved, experiment) -> list[str]:
    """The dotted keys whose values differ between two experiments, ``UNCHANGING`` left out."""
    old, new = flatten(to_dict(saved)), flatten(to_dict(experiment))
    return sorted(key for key in old.keys() | new.keys()
                  if old.get(key) != new.get(key) and key not in UNCHANGING)


def load_state(directory: Path) -> dict:
    path = directory / FOLDER / STATE
    if not path.is_file():
        raise UserError(f"--resume {directory}: no saved state ({FOLDER}/{STATE}): the run "
                        "stopped before its first epoch end (or train.save_every_steps); "
                        "start it again with cm run FILE")
    return torch.load(path, map_location="cpu", weights_only=True)


def save_state(run, loop, best) -> None:
    """Replace the run's saved state with where ``loop`` and ``best`` are now (rank 0)."""
    if not run.world.main:
        return
    folder = run.directory / FOLDER
    folder.mkdir(exist_ok=True)
    trainer = loop.trainer
    state = {"epoch": loop.epoch, "step": loop.step, "tally": attrs.asdict(loop.tally),
             "nonfinite_losses": loop.nonfinite_losses,
             "model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict(),
             "scheduler": loop.scheduler.state_dict(), "scaler": trainer.scaler.state_dict(),
             "best": attrs.asdict(best, recurse=False), "rng": rng_state(), "links": run.links}
    replace(folder / STATE, lambda path: torch.save(state, path))
    position = {"epoch": loop.epoch, "batches": loop.tally.batches, "step": loop.step}
    replace(folder / POSITION, lambda path: path.write_text(json.dumps(position)))


def replace(path: Path, write) -> None:
    """``write(temporary)`` then an atomic rename onto ``path``: a stop in between leaves the
    previous file whole."""
    temporary = path.with_name(path.name + ".tmp")
    write(temporary)
    os.replace(temporary, path)


def restore(state: dict, loop, best, batches_per_epoch: int) -> int:
    """Put the saved state back into ``loop`` and ``best``; returns the epoch to train next
    (past ``train.epochs`` when training was over)."""
    trainer = loop.trainer
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    loop.scheduler.load_state_dict(state["scheduler"])
    trainer.scaler.load_state_dict(state["scaler"])
    loop.epoch, loop.step = state["epoch"], state["step"]
    loop.nonfinite_losses, loop.resumed = state["nonfinite_losses"], Tally(**state["tally"])
    for name, value in state["best"].items():
        setattr(best, name, value)
    set_rng_state(state["rng"])
    if loop.resumed.batches < batches_per_epoch:
        return loop.epoch
    return loop.settings.epochs + 1 if best.exhausted else loop.epoch + 1


def discard(run) -> None:
    """A finished run's state is no longer needed (it holds the optimizer: model-sized)."""
    if not run.world.main:
        return
    directory = run.directory
    for name in (STATE, POSITION):
        (directory / FOLDER / name).unlink(missing_ok=True)
    if (directory / FOLDER).is_dir() and not any((directory / FOLDER).iterdir()):
        (directory / FOLDER).rmdir()


def rng_state() -> dict:
    name, keys, position, has_gauss, gauss = np.random.get_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"python": random.getstate(), "torch": torch.get_rng_state(), "cuda": cuda,
            "numpy": [name, keys.tolist(), position, has_gauss, gauss]}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
