"""The experiment schema. Every field has a default, so an empty file is a valid experiment.

Component fields (heads, losses, ...) hold a ``Spec``: the registered name plus an instance
of that component's options class. Optional values default to ``None`` and are left out of
written TOML (TOML has no null), which keeps ``cm config show`` output re-readable.
"""

import re
from typing import Any, ClassVar, Literal

import attrs
from attrs import field, frozen
from attrs.validators import ge, gt, in_, le, lt

from cm import limits
from cm.data.splits import ratios_problem
from cm.hookspecs import KINDS


@frozen
class Spec:
    """A chosen component: its registered ``name`` and its decoded ``options``."""

    kind: ClassVar[str]
    name: str
    options: Any = None

    def __init_subclass__(cls, kind: str, **kwargs):
        super().__init_subclass__(**kwargs)
        if kind not in KINDS:
            raise TypeError(f"{cls.__name__}: {kind!r} is not a kind declared in cm.hookspecs "
                            f"(known: {', '.join(KINDS)})")
        cls.kind = kind


def used_components(obj, path="$"):
    """(path, Spec) for every component an experiment names: ``$.model.head``, ..."""
    if isinstance(obj, Spec):
        yield path, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from used_components(value, f"{path}.{key}")
    elif attrs.has(type(obj)):
        for attribute in attrs.fields(type(obj)):
            yield from used_components(getattr(obj, attribute.name),
                                       f"{path}.{attribute.name}")


def spec_class(kind: str) -> type[Spec]:
    """The ``Spec`` subclass for one kind of component declared in ``cm.hookspecs``."""
    name = f"{kind.title()}Spec"
    return type(name, (Spec,), {"__module__": __name__, "__qualname__": name}, kind=kind)


DatasetSpec = spec_class("dataset")
HeadSpec = spec_class("head")
PoolingSpec = spec_class("pooling")
LossSpec = spec_class("loss")
OptimizerSpec = spec_class("optimizer")
SchedulerSpec = spec_class("scheduler")
OptimizationSpec = spec_class("optimization")
TrackerSpec = spec_class("tracker")


def _ratios(instance, attribute, value):
    problem = ratios_problem(value)
    if not problem and min(value[1:]) <= 0:  # the shared rule lets val/test be empty
        problem = (f"val and test ratios must be > 0 (a run picks its best epoch and threshold "
                   f"on val and scores test), got {list(value)}; e.g. [0.8, 0.1, 0.1]")
    if problem:
        raise ValueError(problem, attribute)


def _name(instance, attribute, value):
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise ValueError(
            f"'{attribute.name}' is used in paths: letters, digits, '_', '.', '-' only "
            f"(got {value!r})",
            attribute,
        )


@frozen
class DataConfig:
    dataset: DatasetSpec = DatasetSpec("demo")
    level: Literal["post", "sentence"] = "post"
    split: tuple[float, float, float] = field(default=(0.8, 0.1, 0.1), validator=_ratios)
    max_length: int = field(default=512, validator=[ge(16), le(limits.POSITIONS)])
    truncation: Literal["head", "head_tail", "windows"] = "head"
    stride: int = field(default=128, validator=ge(0))
    window_aggregation: Literal["max", "mean"] = "max"
    split_seed: int | None = field(default=None, validator=attrs.validators.optional(
        [ge(0), le(2**32 - 1)]))  # None: the experiment's seed (a seed repeat fixes it)
    # cross-validation: the train+val posts cut into ``folds`` folds (cm run trains one
    # model per fold); ``fold`` (1..folds) names the fold one run validates on
    folds: int | None = field(default=None, validator=attrs.validators.optional(
        [ge(2), le(100)]))
    fold: int | None = field(default=None, validator=attrs.validators.optional(ge(1)))

    @property
    def all_folds(self) -> bool:
        """``folds`` without ``fold``: one run per fold (``cm run`` makes them a group)."""
        return self.folds is not None and self.fold is None

    def check(self):
        """Cross-field rules: (field, message) pairs."""
        if self.stride >= self.max_length:
            yield "stride", f"must be smaller than max_length ({self.max_length})"
        if self.fold is not None and self.folds is None:
            yield "fold", "names a cross-validation fold: set data.folds too, or remove it"
        elif self.fold is not None and self.fold > self.folds:
            yield "fold", f"must be 1 .. data.folds ({self.folds}); got {self.fold}"


@frozen
class TinyBackbone:
    """Shape of the offline ``tiny-deberta-v3`` backbone (random init, local tokenizer)."""

    hidden_size: int = field(default=128, validator=[ge(8), le(limits.HIDDEN_SIZE)])
    num_layers: int = field(default=2, validator=[ge(1), le(limits.LAYERS)])
    num_heads: int = field(default=4, validator=[ge(1), le(limits.HEADS)])
    intermediate_size: int = field(default=256, validator=[ge(8), le(limits.INTERMEDIATE_SIZE)])
    # a target: shrunk to fit the corpus
    vocab_size: int = field(default=8000, validator=[ge(16), le(limits.VOCAB_SIZE)])
    # -1: derived from position_buckets, as in v3
    max_relative_positions: int = field(default=-1, validator=[ge(-1), le(limits.POSITIONS)])
    position_buckets: int = field(default=256, validator=[gt(0), le(limits.POSITIONS)])
    dropout: float = field(default=0.1, validator=[ge(0.0), lt(1.0)])

    def check(self):
        if self.hidden_size % self.num_heads:
            yield "num_heads", f"must divide hidden_size ({self.hidden_size})"


@frozen
class ModelConfig:
    backbone: str = "microsoft/deberta-v3-base"
    pooling: PoolingSpec = PoolingSpec("cls")
    head: HeadSpec = HeadSpec("linear")
    tiny: TinyBackbone = attrs.Factory(TinyBackbone)


SELECTION_METRICS = ("post_macro_f1", "post_micro_f1", "post_samples_f1", "macro_f1",
                     "weighted_f1", "f1", "accuracy", "roc_auc", "pr_auc")


@frozen
class TrainConfig:
    epochs: int = field(default=5, validator=ge(1))
    batch_size: int = field(default=16, validator=[ge(1), le(limits.BATCH_SIZE)])
    eval_batch_size: int = field(default=64, validator=[ge(1), le(limits.BATCH_SIZE)])
    lr: float = field(default=2e-5, validator=[gt(0.0), lt(1.0)])
    head_lr: float | None = field(default=None, validator=attrs.validators.optional(gt(0.0)))
    layerwise_lr_decay: float = field(default=1.0, validator=[gt(0.0), le(1.0)])
    weight_decay: float = field(default=0.01, validator=ge(0.0))
    grad_accum_steps: int = field(default=1, validator=ge(1))
    max_grad_norm: float = field(default=1.0, validator=ge(0.0))  # 0 = no clipping
    early_stopping_patience: int = field(default=2, validator=ge(0))  # 0 = never stop early
    # validation score (at the eval.thresholds decisions) for early stopping, the best
    # checkpoint and the default sweep objective
    selection_metric: str = field(default="post_macro_f1", validator=in_(SELECTION_METRICS))
    loss: LossSpec = LossSpec("bce")
    optimizer: OptimizerSpec = OptimizerSpec("adamw")
    scheduler: SchedulerSpec = SchedulerSpec("linear")
    device: str = field(default="auto", validator=in_(("auto", "cpu", "cuda", "mps")))
    # resumable state (cm run --resume) every this many optimizer steps; 0 = at epoch ends only
    save_every_steps: int = field(default=0, validator=ge(0))


def _thresholds(instance, attribute, value):
    if isinstance(value, str) and value not in ("per_criterion", "global"):
        raise ValueError(f"'{attribute.name}' must be 'per_criterion', 'global' or a number "
                         f"in (0, 1); got {value!r}", attribute)
    if not isinstance(value, str) and not 0 < value < 1:
        raise ValueError(f"'{attribute.name}' as a fixed threshold must lie in (0, 1); got "
                         f"{value!r}", attribute)


@frozen
class EvalConfig:
    """How validation sets the decisions and probabilities of a run (``cm.evaluate``)."""

    thresholds: str | float = field(default="per_criterion", validator=_thresholds)
    # "platt": the loss's prior shift undone, then a Platt calibrator; "prior": the shift
    # only; "none". Each step kept only where it helps on val (cm.evaluate.calibrator).
    calibration: Literal["platt", "prior", "none"] = "platt"
    bootstrap_resamples: int = field(default=1000, validator=[ge(100), le(limits.RESAMPLES)])
    evidence: bool = True  # rank sentences as evidence and score hit@1/hit@3 on val and test
    floor: bool = True  # fit the TF-IDF + logistic-regression floor and score it beside


CHOICE_TYPES = (bool, int, float, str, list, dict)  # TOML values a categorical may take


@frozen
class SearchParam:
    """One search dimension of a sweep, over any dotted config key: ``float`` and ``int``
    take ``low``/``high`` (``log`` or ``step``), ``categorical`` takes ``choices``."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    def check(self):
        if self.type == "categorical":
            yield from self._check_categorical()
            return
        if self.choices is not None:
            yield "choices", f"only a categorical parameter has choices; a {self.type} " \
                             "takes low and high"
        if self.low is None or self.high is None:
            yield "low", f"a {self.type} parameter needs both low and high"
            return
        if self.type == "int":
            for key in ("low", "high", "step"):
                value = getattr(self, key)
                if value is not None and value != int(value):
                    yield key, f"an int parameter needs whole numbers; got {value!r}"
        if self.low >= self.high:
            yield "high", f"must be greater than low ({self.low})"
        elif self.log and self.low <= 0:
            yield "low", "must be > 0 for a log-scaled parameter"
        if self.step is not None and self.step <= 0:
            yield "step", f"must be > 0; got {self.step!r}"
        elif self.step is not None and self.log:
            yield "step", "log and step cannot be combined; remove one"

    def _check_categorical(self):
        for key in ("low", "high", "step"):
            if getattr(self, key) is not None:
                yield key, "a categorical parameter takes choices only; remove it"
        if self.log:
            yield "log", "a categorical parameter takes choices only; remove it"
        if not self.choices:
            yield "choices", "a categorical parameter needs a non-empty list of choices"
        elif not all(isinstance(c, CHOICE_TYPES) for c in self.choices):
            yield "choices", "choices must be strings, numbers, booleans, arrays or tables"


def sweep_metrics() -> list[str]:
    """The validation scores a run reports every epoch, what ``hpo.metric`` may name (a
    criterion's own score as ``val_tuned/<id>/<name>``, e.g. ``val_tuned/A.5/f1``)."""
    from cm.evaluate.validation import metric_names  # numpy: only for [hpo] tables

    return [name.replace("/A.1/", "/<id>/") for name in metric_names()
            if "/A.2/" not in name]


def criterion_pattern(metric: str) -> str:
    """``val_tuned/A.5/f1`` -> ``val_tuned/<id>/f1``: per-criterion names checked by shape."""
    parts = metric.split("/")
    return "/".join([parts[0], "<id>", parts[2]]) if len(parts) == 3 else metric


@frozen
class HpoConfig:
    """A sweep (``cm sweep``): budget, objective, sampler and pruner settings, space."""

    trials: int = field(default=20, validator=ge(1))  # in the study, over all its workers
    timeout_s: float | None = field(default=None, validator=attrs.validators.optional(gt(0)))
    metric: str | None = None  # default: val_tuned/<train.selection_metric>
    direction: Literal["maximize", "minimize"] = "maximize"
    startup_trials: int = field(default=10, validator=ge(0))  # random before TPE models
    pruner: Literal["median", "none"] = "median"
    prune_after_trials: int = field(default=5, validator=ge(0))  # complete ones, first
    prune_warmup_epochs: int = field(default=0, validator=ge(0))  # epochs run unpruned
    heartbeat_s: int = field(default=60, validator=ge(1))  # dead workers' trials fail after 2x
    confirm_seeds: int = field(default=3, validator=ge(0))  # best vs baseline on test; 0: off
    space: dict[str, SearchParam] = attrs.Factory(dict)

    def check(self):
        if self.metric is not None and not self.metric.startswith(("val/", "val_tuned/")):
            yield "metric", (f"sweeps optimize a validation metric (val/... or "
                             f"val_tuned/...), never test; got {self.metric!r}")
        elif self.metric is not None and \
                criterion_pattern(self.metric) not in (known := sweep_metrics()):
            from cm.errors import suggest

            yield "metric", (f"{self.metric!r} is not a metric a run reports"
                             f"{suggest(criterion_pattern(self.metric), known)} "
                             f"(known: {', '.join(known)})")
        for key in self.space:
            if key.split(".")[0] in ("hpo", "tracking", "name", "output_dir"):
                yield f'space."{key}"', "a sweep cannot search over this key"


@frozen
class Experiment:
    name: str = field(default="experiment", validator=_name)
    seed: int = field(default=42, validator=[ge(0), le(2**32 - 1)])  # numpy's seed range
    output_dir: str = "outputs"
    data: DataConfig = attrs.Factory(DataConfig)
    model: ModelConfig = attrs.Factory(ModelConfig)
    train: TrainConfig = attrs.Factory(TrainConfig)
    eval: EvalConfig = attrs.Factory(EvalConfig)
    optimizations: dict[str, OptimizationSpec] = attrs.Factory(dict)
    tracking: dict[str, TrackerSpec] = attrs.Factory(dict)
    hpo: HpoConfig | None = None

    @property
    def sweep_metric(self) -> str:
        """What a sweep optimizes: ``hpo.metric``, else the run's own selection metric."""
        chosen = self.hpo.metric if self.hpo else None
        return chosen or f"val_tuned/{self.train.selection_metric}"
