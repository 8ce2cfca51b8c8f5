"""The Trainer's optimizers and regulariser.

Embedding tables built with ``sparse=True`` (``gnno.GMF(sparse=True)``, or
any ``torch.nn.Embedding(..., sparse=True)``) get sparse gradients: only the
batch's rows are touched, and ``torch.optim.SparseAdam`` updates just those
rows. Every other parameter is updated by ``torch.optim.Adam``. On a CPU this
is several times faster than dense Adam, which reads and writes every row of
both tables at every step.

Adam's ``weight_decay`` decays every row at every step, which has no sparse
form; the sparse path regularises with ``l2`` instead: an L2 penalty on the
embedding rows the batch touches (``model.penalty(users, items)``, as the
MF/LightGCN reference recipes do).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from gnno.exceptions import GnnoError


def sparse_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The weights of ``model``'s sparse-gradient embedding tables."""
    return [
        m.weight
        for m in model.modules()
        if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag))
        and m.sparse
        and m.weight.requires_grad
    ]


class Optimizers:
    """SparseAdam for sparse embeddings plus Adam for the rest, stepped as one."""

    def __init__(self, model: torch.nn.Module, lr: float, weight_decay: float) -> None:
        sparse = sparse_parameters(model)
        seen = {id(p) for p in sparse}
        dense = [p for p in model.parameters() if p.requires_grad and id(p) not in seen]
        if sparse and weight_decay:
            raise GnnoError(
                f"weight_decay={weight_decay} decays every embedding row at every step and "
                "has no sparse form; with sparse embeddings use l2 (a penalty on the batch's rows)"
            )
        self.optimizers: list[torch.optim.Optimizer] = []
        if sparse:
            self.optimizers.append(torch.optim.SparseAdam(sparse, lr=lr))
        if dense:
            self.optimizers.append(torch.optim.Adam(dense, lr=lr, weight_decay=weight_decay))
        if not self.optimizers:
            raise GnnoError("the model has no trainable parameters")
        self.sparse = bool(sparse)

    def zero_grad(self) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def state_dict(self) -> list[dict[str, Any]]:
        return [opt.state_dict() for opt in self.optimizers]

    def load_state_dict(self, states: Any) -> None:
        if not isinstance(states, list) or len(states) != len(self.optimizers):
            raise GnnoError(
                "the checkpoint's optimizer state does not match this model's parameters "
                f"(expected {len(self.optimizers)} optimizer states)"
            )
        for opt, state in zip(self.optimizers, states, strict=True):
            if not isinstance(state, Mapping):
                raise GnnoError("the checkpoint's optimizer state is damaged")
            try:
                opt.load_state_dict(state)
            except (ValueError, KeyError, RuntimeError) as err:
                raise GnnoError(f"cannot load the checkpoint's optimizer state: {err}") from None


def penalty(model: torch.nn.Module, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """``model.penalty(users, items)``: the L2 term over the batch's rows."""
    fn = getattr(model, "penalty", None)
    if not callable(fn):
        raise GnnoError(
            f"l2 > 0 needs model.penalty(users, items) (the squared norm of the batch's "
            f"embedding rows); {type(model).__name__} has none"
        )
    return fn(users, items)


__all__ = ["Optimizers", "penalty", "sparse_parameters"]
