"""The optimizer of a gradient-training run, from `torch.optim` (never hand-written), as
`lm.train.settings.OPTIMIZERS` describes the choices: AdamW, Adam, SGD (with momentum; momentum 0 is plain
SGD), SGD with Nesterov momentum, RMSprop and Adagrad.

`momentum` is each optimizer's own momentum where it has one, and beta1 for Adam and AdamW (beta2 stays
0.99, the project's AdamW setting). Weight decay is given per parameter group (matrices only): AdamW's is
decoupled, the others' is torch's L2 term added to the gradient. On CUDA the fused implementations are used
where torch has them; on the CPU torch's default (a loop over the parameters), which bench/bench_train.py
measured against the foreach and fused CPU kernels (no faster: docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

import torch

from lm.errors import LMError
from lm.train.settings import OPTIMIZERS
from lm.train.state import _unflatten_optimizer

_FUSED = {"adamw", "adam", "sgd", "nesterov", "adagrad"}  # torch.optim classes with a `fused` argument


def optimizer_kwargs(name: str, momentum: float | None) -> dict[str, Any]:
    """The keyword arguments (besides lr) `torch.optim.<class>` gets for the optimizer choice `name`."""
    if name in ("adamw", "adam"):
        return {"betas": (momentum, 0.99)}
    if name in ("sgd", "nesterov"):
        return {"momentum": momentum, "nesterov": name == "nesterov"}
    if name == "rmsprop":
        return {"momentum": momentum}
    return {}


def build_optimizer(name: str, groups: list[dict[str, Any]], lr: float, momentum: float | None,
                    device: torch.device, fused: bool | None = None) -> torch.optim.Optimizer:
    """`torch.optim` optimizer `name` over `groups`; `fused` None: fused on CUDA where available."""
    kwargs = optimizer_kwargs(name, momentum)
    use_fused = device.type == "cuda" if fused is None else fused
    if use_fused and name in _FUSED:
        kwargs["fused"] = True
    return getattr(torch.optim, OPTIMIZERS[name].torch_class)(groups, lr=lr, **kwargs)


def optimizer_for(model: torch.nn.Module, name: str, plan, device: torch.device,
                  saved: dict[str, Any] | None) -> torch.optim.Optimizer:
    """The run's optimizer over `model`: weight decay on matrices only (never biases or LayerNorm gains),
    with the resume state's optimizer state loaded when continuing a run."""
    decay, no_decay = [], []
    for _, param in model.named_parameters():  # tied weights are listed once
        (decay if param.dim() >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": plan.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = build_optimizer(name, groups, plan.lr, plan.momentum, device)
    if saved is not None:
        try:
            optimizer.load_state_dict(_unflatten_optimizer(saved["optimizer_tensors"], saved["optimizer"]))
        except (ValueError, KeyError, RuntimeError) as exc:
            raise LMError(f"the resume state's optimizer does not match this run ({exc})") from None
    return optimizer
