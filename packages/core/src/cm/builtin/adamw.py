"""AdamW and bitsandbytes' 8-bit AdamW, the built-in optimizers.

Factories take ``(options, param_groups, lr)``; the groups already carry their own ``lr``
and ``weight_decay`` (set by the engine through ``cm.train.param_groups``), ``lr`` is only
the default for a group without one.
"""

import importlib

import torch

from cm.builtin.options import AdamW8bitOptions, AdamWOptions
from cm.errors import UserError


def _params(groups):
    return [p for group in groups for p in group["params"]]


def _on_cuda(groups) -> bool:
    params = _params(groups)
    return bool(params) and all(p.is_cuda for p in params)


def adamw(options: AdamWOptions, param_groups: list[dict], lr: float) -> torch.optim.AdamW:
    devices = {p.device.type for p in _params(param_groups)}
    if options.fused and not devices <= {"cpu", "cuda"}:
        raise UserError(
            f"optimizer 'adamw': fused AdamW runs on CPU and CUDA, not on {sorted(devices)}; "
            "set fused = false in [train.optimizer]"
        )
    return torch.optim.AdamW(
        param_groups,
        lr=lr,
        betas=tuple(options.betas),
        eps=options.eps,
        fused=True if options.fused else None,
    )


def _bitsandbytes():
    """The bitsandbytes module, imported only when asked for (it is an optional extra)."""
    return importlib.import_module("bitsandbytes")


def adamw_8bit(options: AdamW8bitOptions, param_groups: list[dict], lr: float):
    """bitsandbytes' AdamW8bit: 8-bit optimizer state, about 75% less optimizer memory."""
    try:
        bnb = _bitsandbytes()
    except ImportError as exc:
        reason = f"bitsandbytes is not installed ({exc})"
    else:
        if _on_cuda(param_groups):
            return bnb.optim.AdamW8bit(
                param_groups, lr=lr, betas=tuple(options.betas), eps=options.eps
            )
        reason = "the model's parameters are not on a CUDA GPU"
    raise UserError(
        f"optimizer 'adamw_8bit' cannot be used here: {reason}. It needs bitsandbytes "
        "(pip install bitsandbytes) and a CUDA GPU; otherwise use optimizer 'adamw'"
    )
