"""Scoring models. ``GMF`` is NCF's generalized matrix factorization."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from gnno._arrays import positive_int


class GMF(nn.Module):
    """Generalized matrix factorization (He et al., NCF, WWW 2017):
    ``r(u, i) = wᵀ (P_u ⊙ Q_i)``.

    ``P`` (``user_embedding``, ``(n_users, dim)``) and ``Q``
    (``item_embedding``, ``(n_items, dim)``) start as ``N(0, 0.01²)`` as in
    NCF; ``w`` (``weight``, ``(dim,)``) starts as NCF's prediction layer does
    (Keras ``lecun_uniform``: ``U(±sqrt(3 / dim))``). NCF's output bias is left
    out: it shifts every score of a user alike and so never changes a ranking
    or a pairwise loss.

    Every dot-product model is ``r(u, i) = ⟨a_u, b_i⟩``; here
    ``a = user_vectors() = w ⊙ P`` and ``b = item_vectors() = Q``, which is
    what full-ranking evaluation and score-based samplers use.

    ``sparse=True`` gives the embedding tables sparse gradients (only the
    batch's rows), for a lazy Adam (``torch.optim.SparseAdam``, ``gnno.training.RowAdam``);
    ``gnno.Trainer`` picks the
    optimizers to match. ``penalty(users, items)`` is the L2 term on the
    batch's rows that replaces weight decay there.

    ``item_bias=True`` adds a learned bias per item, ``r(u, i) = wᵀ(P_u ⊙ Q_i)
    + c_i`` (as in Rendle et al.'s tuned MF): it carries an item's
    popularity without spending embedding norm on it. The model stays a
    dot-product model, ``a_u = [w ⊙ P_u, 1]`` and ``b_i = [Q_i, c_i]``.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 32,
        *,
        sparse: bool = False,
        item_bias: bool = False,
    ) -> None:
        super().__init__()
        self.n_users = positive_int(n_users, "n_users")
        self.n_items = positive_int(n_items, "n_items")
        self.dim = positive_int(dim, "dim")
        self.user_embedding = nn.Embedding(self.n_users, self.dim, sparse=bool(sparse))
        self.item_embedding = nn.Embedding(self.n_items, self.dim, sparse=bool(sparse))
        self.weight = nn.Parameter(torch.empty(self.dim))
        self.item_bias = nn.Embedding(self.n_items, 1, sparse=bool(sparse)) if item_bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user_embedding.weight, std=0.01)
        nn.init.normal_(self.item_embedding.weight, std=0.01)
        limit = math.sqrt(3.0 / self.dim)
        nn.init.uniform_(self.weight, -limit, limit)
        if self.item_bias is not None:
            nn.init.zeros_(self.item_bias.weight)

    def forward(
        self, users: torch.Tensor, items: torch.Tensor, *, with_penalty: bool = False
    ) -> Any:
        """Scores ``r(users, items)``.

        ``users`` is ``(B,)`` (or any shape that broadcasts against ``items``
        once trailing size-1 dimensions are added); ``items`` is ``(B,)``,
        ``(B, K)``, ``(B, K, C)``, ... The result has the broadcast shape of
        the two, ``items.shape`` in the usual cases. Ids are ``torch.long`` on
        the model's device.

        ``with_penalty=True`` returns ``(scores, penalty(users, items))``
        from one lookup of the rows (what ``gnno.Trainer`` uses with
        ``l2 > 0``: half the embedding reads and sparse gradient entries of
        scoring and penalising separately).
        """
        p = self.user_embedding(users)
        a = p * self.weight  # users.shape + (dim,)
        b = self.item_embedding(items)
        bias = self.item_bias(items).squeeze(-1) if self.item_bias is not None else None
        extra = items.dim() - users.dim()
        a_rows = a
        if extra > 0:
            # (B, dim) -> (B, 1, ..., 1, dim) so that one user row meets all its items.
            a = a.reshape(users.shape + (1,) * extra + (self.dim,))
        scores = (a * b).sum(dim=-1)
        if bias is not None:
            scores = scores + bias
        if not with_penalty:
            return scores
        total = a_rows.pow(2).sum() + b.pow(2).sum()
        if bias is not None:
            total = total + bias.pow(2).sum()
        return scores, total / max(1, users.shape[0])

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``(Σ_b ‖a_{users[b]}‖² + Σ ‖Q_items‖² [+ Σ c_items²]) / len(users)``:
        the squared norms of the rows a batch touches, per example. The user
        side is ``a = w ⊙ P`` (what scores depend on), so moving scale
        between ``w`` and ``P`` cannot escape the penalty. ``items`` is
        ``(B,)`` or ``(B, K)`` (a positive and its negatives)."""
        return self(users, items, with_penalty=True)[1]

    def user_vectors(self) -> torch.Tensor:
        """``w ⊙ P`` (``(n_users, dim)``; with ``item_bias`` a column of ones
        more), so ``r(u, i) = user_vectors()[u] @ item_vectors()[i]``."""
        a = self.user_embedding.weight * self.weight
        if self.item_bias is not None:
            a = torch.cat([a, a.new_ones(a.shape[0], 1)], dim=1)
        return a

    def item_vectors(self) -> torch.Tensor:
        """``Q`` (``(n_items, dim)``; with ``item_bias`` the biases as one
        column more)."""
        if self.item_bias is not None:
            return torch.cat([self.item_embedding.weight, self.item_bias.weight], dim=1)
        return self.item_embedding.weight

    def extra_repr(self) -> str:
        sparse = ", sparse=True" if self.user_embedding.sparse else ""
        bias = ", item_bias=True" if self.item_bias is not None else ""
        return f"n_users={self.n_users}, n_items={self.n_items}, dim={self.dim}{sparse}{bias}"


__all__ = ["GMF"]
