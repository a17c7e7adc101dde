"""Test helpers for cm and for plugins written for it. They need no pytest: a script may
``from cm.testing import TINY_RUN``. ``cm.pytest_plugin`` (entry point ``cm`` of group
``pytest11``) turns them into fixtures that any project with cm-core installed gets:

- ``tiny_experiment(*sets, **tables)`` -> a decoded ``Experiment``: the post-level demo
  experiment shipped in cm-core (``DEMO_EXPERIMENT``: ``demo-posts.toml``, offline tiny
  DeBERTaV3, the 300 synthetic posts shipped with cm, whole posts as pairs),
  shrunk by ``TINY_RUN``, writing under the test's ``tmp_path``; then your ``--set``
  strings (``"model.head.name=my_head"``) and tables (``model={"head": {...}}``).
- ``run_tiny(experiment, **kwargs)`` -> the finished ``Run`` of ``cm run`` (metrics,
  artifacts, telemetry), printing nothing unless given a ``console``; keyword arguments go
  to ``run_experiment``.
- ``train_context(*sets, **tables)`` -> a ``TrainContext`` as an optimization's ``apply``
  receives it: the tiny experiment, the cross-encoder built on CPU, nothing applied yet.

``TINY_RUN`` is a list of ``--set`` overrides that make the demo a DeBERTaV3-shaped run
training in seconds on CPU (one layer, hidden 32, 64-token pairs, one epoch, 40/30/30 splits
so val and test hold enough positives, sentence evidence not scored: add
``eval.evidence=true`` where a test needs it). Heavy modules are imported inside the helpers, so
the plugin costs nothing at pytest start.
"""

from importlib.resources import files
from pathlib import Path

TINY_RUN = ["model.tiny.hidden_size=32", "model.tiny.num_heads=2", "model.tiny.num_layers=1",
            "model.tiny.intermediate_size=64", "data.max_length=64", "data.stride=16",
            "train.epochs=1", "train.batch_size=32", "data.split=[0.4, 0.3, 0.3]",
            "eval.evidence=false"]

DEMO_EXPERIMENT = Path(str(files("cm") / "data" / "demo_data" / "demo-posts.toml"))


def tiny_toml() -> str:
    """TINY_RUN as TOML tables, for tests that write experiment files (``base = ...``
    and top-level keys go before it, further tables after it)."""
    import tomli_w

    from cm.config.load import apply_overrides

    return tomli_w.dumps(apply_overrides({}, TINY_RUN))


def make_tiny_experiment(output_dir, *sets, registry=None, **tables):
    """The shipped post-level demo experiment shrunk by TINY_RUN, writing under
    ``output_dir``, with ``sets`` (``key=value`` strings) and ``tables`` (top-level keys
    merged in) applied."""
    from cm.config.decode import decode
    from cm.config.keys import set_keys
    from cm.config.load import apply_overrides, load_raw
    from cm.registry import get_registry

    raw = load_raw(DEMO_EXPERIMENT, [*TINY_RUN, f"output_dir={output_dir}"])
    raw = set_keys(apply_overrides(raw, sets), tables)
    return decode(raw, source=f"{DEMO_EXPERIMENT} (tiny)", registry=registry or get_registry())


def run_quietly(experiment, **kwargs):
    """``cm.train.engine.run_experiment`` printing nothing unless given a ``console``."""
    from rich.console import Console

    from cm.train.engine import run_experiment

    kwargs.setdefault("console", Console(quiet=True))
    return run_experiment(experiment, **kwargs)


def build_train_context(experiment, device="cpu"):
    """What ``Optimization.apply`` receives for ``experiment``: the model is built as
    ``cm run`` builds it (tokenizer trained on the train posts, cached), with none of the
    experiment's optimizations applied."""
    import attrs

    from cm.cachedir import cache_root
    from cm.data.prepare import prepare
    from cm.model.backbone import load_backbone
    from cm.registry import get_registry
    from cm.train.trainer import build_trainer

    registry = get_registry()
    prepared = prepare(experiment, registry)
    backbone, _ = load_backbone(experiment.model.backbone, texts=prepared.tokenizer_texts(),
                                tiny=experiment.model.tiny, cache_root=cache_root(),
                                seed=experiment.seed)
    plain = attrs.evolve(experiment, optimizations={})
    trainer = build_trainer(plain, registry, device, backbone, pos_weight=1.0)
    return attrs.evolve(trainer.context, experiment=experiment)
