"""What each kind of component is, written as typing Protocols (docs/plugins.md cites them).

A registered factory is called as ``factory(options, **arguments)``: the decoded options
instance first, then the keyword arguments its ``*Factory`` protocol lists. ``B`` is the
batch size, ``T`` the padded sequence length, ``H`` the backbone's hidden size, ``L`` its
number of layers. Tensors are float32 unless the run autocasts (bf16/fp16); masks are int64
0/1 (1 on real tokens, position 0 is [CLS]); labels are float32 0/1.

The registry checks the members a result must have (``REQUIRED``) when it builds one, so a
pooling without ``out_features`` fails naming its plugin, not deep inside the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # cm plugins and cm --help must not pay for importing torch
    import torch

    from cm.data.records import Corpus
    from cm.optimization import Optimization


class HeadFactory(Protocol):
    def __call__(self, options: Any, *, in_features: int, num_logits: int) -> torch.nn.Module:
        """The head: ``forward(pooled [B, in_features]) -> logits [B, num_logits]``."""


@runtime_checkable
class Pooling(Protocol):
    out_features: int  # width of the pooled vector, the head's in_features

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor,
                all_hidden: Sequence[torch.Tensor] | None) -> torch.Tensor:
        """``hidden [B, T, H]`` (last layer), ``mask [B, T]``, ``all_hidden``: the L + 1
        hidden states ``[B, T, H]`` (embeddings first) when the module has
        ``needs_all_hidden = True``, else None -> ``[B, out_features]``."""


class PoolingFactory(Protocol):
    def __call__(self, options: Any, *, hidden_size: int, num_layers: int) -> Pooling: ...


@runtime_checkable
class Loss(Protocol):
    num_logits: int  # 1 (sigmoid) or 2 (softmax): the engine sizes the head from it

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``logits [B, num_logits]``, ``labels [B]`` float 0/1 -> a scalar."""

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits [B, num_logits]`` -> P(match) ``[B]``, as the loss was trained."""

    # Optional (not checked when built, so older losses keep working):
    # ``prior_shift: float | None``, the log-odds the loss's class weighting adds to
    # ``probabilities`` (``bce`` with ``pos_weight`` w: ``log w``; 0.0: none), which
    # calibration subtracts first; None: the loss cannot say (``focal``). A loss without it
    # is treated as None, with a note in the run's summary.


class LossFactory(Protocol):
    def __call__(self, options: Any, *, pos_weight: float | None) -> Loss:
        """``pos_weight``: negatives / positives of the train split (None when unknown)."""


class OptimizerFactory(Protocol):
    def __call__(self, options: Any, *, param_groups: list[dict],
                 lr: float) -> torch.optim.Optimizer:
        """``param_groups``: torch parameter groups (their own ``lr``/``weight_decay``
        set from the train table); ``lr``: ``train.lr``."""


class SchedulerFactory(Protocol):
    def __call__(self, options: Any, *, optimizer: torch.optim.Optimizer,
                 num_training_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
        """Stepped once per optimizer step; ``num_training_steps`` counts them all."""


class OptimizationFactory(Protocol):
    def __call__(self, options: Any) -> Optimization:
        """``options`` subclass ``cm.optimization.OptimizationOptions``."""


class DatasetFactory(Protocol):
    def __call__(self, options: Any) -> Corpus: ...


class TrackerFactory(Protocol):
    def __call__(self, options: Any, *, experiment: Any) -> object:
        """An object implementing any of the lifecycle hooks of ``cm.hookspecs``."""


# kind -> the protocol a factory's result must satisfy when the registry builds it
REQUIRED = {"pooling": Pooling, "loss": Loss}

# kind -> how its factory is called: ``factory(options, **keywords of __call__)``
FACTORIES = {"head": HeadFactory, "pooling": PoolingFactory, "loss": LossFactory,
             "optimizer": OptimizerFactory, "scheduler": SchedulerFactory,
             "optimization": OptimizationFactory, "dataset": DatasetFactory,
             "tracker": TrackerFactory}


def missing_members(obj, protocol) -> list[str]:
    """The attributes and methods of ``protocol`` that ``obj`` lacks."""
    members = [*protocol.__annotations__,
               *(name for name, value in vars(protocol).items()
                 if callable(value) and not name.startswith("_"))]
    return [name for name in members if not hasattr(obj, name)]
