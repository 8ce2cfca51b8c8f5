"""Ranking metrics under the two protocols of ``design/algorithms.md`` §5.

Both functions take any ``torch.nn.Module`` or plain callable that scores
``model(users, items)`` with ``users`` of shape ``(B, 1)`` and ``items`` of
shape ``(B, K)``, returning ``(B, K)`` scores (higher = more relevant). A model
that also has ``user_vectors()`` ``(n_users, d)`` and ``item_vectors()``
``(n_items, d)`` with ``r(u, i) = user_vectors()[u] @ item_vectors()[i]`` (as
``gnno.GMF``) is scored by one matrix product per batch instead.

The model runs under ``torch.no_grad()`` and, if it is a module, in ``eval()``
mode; its training mode is restored afterwards. Work happens on the model's
device (its first parameter's or buffer's; the CPU for a callable without
either). Results are Python floats, means over the evaluated users.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from gnno._arrays import as_ids, positive_int
from gnno._torch import eval_mode, module_device
from gnno.exceptions import (
    EmptyInputError,
    GnnoError,
    IdOutOfRangeError,
    NonFiniteError,
    ShapeError,
)
from gnno.interactions import Interactions

Model = torch.nn.Module | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def evaluate_sampled(
    model: Model,
    users: Any,
    targets: Any,
    negatives: Any,
    ks: Sequence[int] = (1, 3, 10),
    batch_size: int = 1024,
) -> dict[str, float]:
    """Sampled leave-one-out (NCF / SRNS protocol).

    ``users``, ``targets``: ``(n,)`` ids; ``negatives``: ``(n, m)`` ids, used
    exactly as listed (duplicates count twice, and a negative equal to the
    target ties with it). ``rank`` = number of negatives scored strictly above
    the target, so ties favour the target. Per user ``HR@k = Recall@k =
    [rank < k]`` and ``NDCG@k = 1 / log2(rank + 2)`` if ``rank < k`` else 0.

    Returns ``{"hr@k", "ndcg@k", "recall@k"}`` for every ``k`` in ``ks``.
    """
    ks = _check_ks(ks)
    batch_size = positive_int(batch_size, "batch_size")
    u = as_ids(users, "users")
    t = as_ids(targets, "targets")
    neg = as_ids(negatives, "negatives", ndim=2)
    n = len(u)
    if n == 0:
        raise EmptyInputError("users is empty: nothing to evaluate")
    if len(t) != n or neg.shape[0] != n:
        raise ShapeError(
            f"users, targets and negatives must have the same length, "
            f"got {n}, {len(t)} and {neg.shape[0]}"
        )

    with _inference(model):
        scorer = _Scorer(model)
        scorer.check_users(u, "users")
        scorer.check_items(t, "targets")
        scorer.check_items(neg, "negatives")
        device = scorer.device
        ranks = torch.empty(n, dtype=torch.long, device=device)
        for lo in range(0, n, batch_size):
            hi = min(n, lo + batch_size)
            # torch.tensor copies: the id arrays may be read-only views.
            bu = torch.tensor(u[lo:hi], device=device)
            bt = torch.tensor(t[lo:hi], device=device)
            bn = torch.tensor(neg[lo:hi], device=device)
            items = torch.cat([bt.unsqueeze(1), bn], dim=1)
            scores = scorer.pairs(bu, items)
            scorer.count_nonfinite(scores)
            # A listed negative that *is* the target ties with it by
            # definition, whatever rounding the two score computations had.
            above = (scores[:, 1:] > scores[:, :1]) & (bn != bt.unsqueeze(1))
            ranks[lo:hi] = above.sum(dim=1)
        scorer.raise_if_nonfinite()

    out: dict[str, float] = {}
    ranks64 = ranks.cpu().to(torch.float64)
    hit = {k: ranks64 < k for k in ks}
    for k in ks:
        out[f"hr@{k}"] = hit[k].to(torch.float64).mean().item()
    for k in ks:
        gain = torch.where(hit[k], 1.0 / torch.log2(ranks64 + 2.0), torch.zeros_like(ranks64))
        out[f"ndcg@{k}"] = gain.mean().item()
    for k in ks:
        out[f"recall@{k}"] = out[f"hr@{k}"]
    return out


def evaluate_full(
    model: Model,
    train: Interactions,
    test: Interactions,
    ks: Sequence[int] = (20,),
    batch_size: int | None = None,
) -> dict[str, float]:
    """Full ranking (LightGCN protocol).

    Every item is scored for each user with a non-empty ``test`` row; the
    user's ``train`` items are removed; the top ``k`` are compared with the
    test items. Per user: ``Recall@k = |top-k ∩ test| / |test|``,
    ``Precision@k = |top-k ∩ test| / k``, ``HR@k = [top-k ∩ test ≠ ∅]``,
    ``NDCG@k = DCG / IDCG`` with ``DCG = Σ_{hit at 0-based position p}
    1 / log2(p + 2)`` and IDCG over ``min(|test|, k)`` positions.

    Ties favour the targets, as in ``evaluate_sampled``: items of equal score
    are ranked test items first, so a constant model has ``HR@k = 1``,
    ``Recall@k = min(|test|, k) / |test|`` and ``NDCG@k = 1`` for every user.

    ``batch_size``: users scored at once (default: as many as keep one
    ``(batch, n_items)`` score block near 16 M entries).

    Returns ``{"recall@k", "ndcg@k", "precision@k", "hr@k"}`` for each ``k``.
    """
    ks = _check_ks(ks)
    for name, value in (("train", train), ("test", test)):
        if not isinstance(value, Interactions):
            raise GnnoError(f"{name} must be a gnno.Interactions, got {type(value).__name__}")
    if train.n_items != test.n_items:
        raise ShapeError(
            f"train and test must have the same number of items, got {train.n_items} and {test.n_items}"
        )
    n_items = test.n_items
    test_users, test_items = test.to_pairs()
    in_train = train.contains(test_users, test_items)
    if in_train.any():
        k = int(np.argmax(in_train))
        raise GnnoError(
            f"test pair (user {int(test_users[k])}, item {int(test_items[k])}) is also in train "
            f"({int(in_train.sum())} such pairs): full ranking removes each user's training "
            "items, so it could never be ranked; train and test must be disjoint"
        )
    if batch_size is None:
        batch_size = max(1, min(4096, (1 << 24) // max(1, n_items)))
    batch_size = positive_int(batch_size, "batch_size")

    test_counts = test.user_counts
    users = np.flatnonzero(test_counts > 0).astype(np.int64)
    if len(users) == 0:
        raise EmptyInputError("test has no interactions: nothing to evaluate")
    k_max = max(ks)
    top = min(k_max, n_items)

    with _inference(model):
        scorer = _Scorer(model)
        scorer.check_users(users, "test users")
        if scorer.n_items is not None and scorer.n_items != n_items:
            raise ShapeError(f"the model scores {scorer.n_items} items but the data has {n_items}")
        device = scorer.device
        all_items = torch.arange(n_items, device=device)
        acc = _accumulator_dtype(device)
        disc = 1.0 / torch.log2(torch.arange(top, device=device, dtype=acc) + 2.0)
        # ideal[c] = IDCG with c relevant items (c >= 1), capped at `top` positions.
        ideal = torch.cat([disc.new_zeros(1), disc.cumsum(0)])
        sums = {
            f"{name}@{k}": torch.zeros((), dtype=acc, device=device)
            for k in ks
            for name in ("recall", "ndcg", "precision", "hr")
        }
        train_rows = _Rows(train)
        test_rows = _Rows(test)
        for lo in range(0, len(users), batch_size):
            bu_np = users[lo : lo + batch_size]
            b = len(bu_np)
            bu = torch.from_numpy(bu_np).to(device)
            scores = scorer.all_items(bu, all_items)
            if not scorer.vectors_checked:
                # Scanning every block costs more than the product itself;
                # finite vectors give finite products (NaN from an overflow
                # would still surface in the top-k values checked below).
                scorer.count_nonfinite(scores)
            r, c = train_rows.coords(bu_np, device)
            scores[r, c] = -torch.inf
            relevant = torch.zeros((b, n_items), dtype=torch.bool, device=device)
            r, c = test_rows.coords(bu_np, device)
            relevant[r, c] = True
            # Ties favour the targets: the ranking sorts by score, then puts
            # test items before other items of the same score. The i-th best
            # test item (0-based) therefore sits at position i + the number
            # of other candidates scored strictly above it. Removed training
            # items (-inf) never count as hits.
            others, _ = torch.topk(scores.masked_fill(relevant, -torch.inf), top, dim=1)
            targets, _ = torch.topk(scores.masked_fill(~relevant, -torch.inf), top, dim=1)
            scorer.count_nonfinite_top(others)
            scorer.count_nonfinite_top(targets)
            # others is descending; count of others > s = top - #(others <= s).
            above = top - torch.searchsorted(others.flip(1).contiguous(), targets, right=True)
            position = torch.arange(top, device=device) + above
            is_target = torch.isfinite(targets)
            n_test = torch.from_numpy(test_counts[bu_np]).to(device=device, dtype=acc)
            gain = disc[position.clamp(max=top - 1)]
            for k in ks:
                h = (is_target & (position < k)).to(acc)
                n_hit = h.sum(dim=1)
                sums[f"recall@{k}"] += (n_hit / n_test).sum()
                sums[f"precision@{k}"] += (n_hit / k).sum()
                sums[f"hr@{k}"] += (n_hit > 0).to(acc).sum()
                dcg = (h * gain).sum(dim=1)
                idcg = ideal[n_test.clamp(max=min(k, top)).long()]
                sums[f"ndcg@{k}"] += (dcg / idcg).sum()
        scorer.raise_if_nonfinite()

    n = float(len(users))
    return {name: (total / n).item() for name, total in sums.items()}


# -- internals -------------------------------------------------------------


def _check_ks(ks: Any) -> tuple[int, ...]:
    if isinstance(ks, (int, np.integer)):
        ks = (ks,)
    try:
        ks = tuple(ks)
    except TypeError:
        raise GnnoError(f"ks must be a sequence of positive integers, got {ks!r}") from None
    if not ks:
        raise GnnoError("ks must name at least one cut-off")
    return tuple(dict.fromkeys(positive_int(k, "k in ks") for k in ks))


@contextlib.contextmanager
def _inference(model: Any) -> Iterator[None]:
    if not callable(model):
        raise GnnoError(f"model must be a torch module or a callable, got {type(model).__name__}")
    with eval_mode(model):
        yield


def _accumulator_dtype(device: torch.device) -> torch.dtype:
    # Sums over tens of thousands of users: float64 where the device has it.
    return torch.float32 if device.type == "mps" else torch.float64


class _Scorer:
    """Scores through ``user_vectors()``/``item_vectors()`` when the model has
    them, else through ``model(users, items)``; checks ids and scores."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.device = module_device(model)
        self.U: torch.Tensor | None = None
        self.V: torch.Tensor | None = None
        if callable(getattr(model, "user_vectors", None)) and callable(
            getattr(model, "item_vectors", None)
        ):
            self.U = model.user_vectors().detach().float()
            self.V = model.item_vectors().detach().float()
            if self.U.dim() != 2 or self.V.dim() != 2 or self.U.shape[1] != self.V.shape[1]:
                raise ShapeError(
                    f"user_vectors() and item_vectors() must be (n_users, d) and (n_items, d), "
                    f"got {tuple(self.U.shape)} and {tuple(self.V.shape)}"
                )
            self.device = self.U.device
            self.vectors_checked = True
            for what, vectors in (("user_vectors()", self.U), ("item_vectors()", self.V)):
                if not bool(torch.isfinite(vectors).all()):
                    raise NonFiniteError(f"the model's {what} holds non-finite values (NaN or inf)")
            self.n_users: int | None = self.U.shape[0]
            self.n_items: int | None = self.V.shape[0]
        else:
            self.vectors_checked = False
            self.n_users = _int_attr(model, "n_users")
            self.n_items = _int_attr(model, "n_items")
        self._nonfinite = torch.zeros((), dtype=torch.long, device=self.device)

    def check_users(self, users: np.ndarray, name: str) -> None:
        _check_range(users, self.n_users, name, "user", "n_users")

    def check_items(self, items: np.ndarray, name: str) -> None:
        _check_range(items, self.n_items, name, "item", "n_items")

    def pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``(B,)`` users × ``(B, K)`` items → ``(B, K)`` float scores."""
        if self.U is not None and self.V is not None:
            return (self.U[users].unsqueeze(1) * self.V[items]).sum(dim=-1)
        return self._call(users.unsqueeze(1), items)

    def all_items(self, users: torch.Tensor, all_items: torch.Tensor) -> torch.Tensor:
        """``(B,)`` users → ``(B, n_items)`` float scores of every item."""
        if self.U is not None and self.V is not None:
            return self.U[users] @ self.V.T
        items = all_items.unsqueeze(0).expand(len(users), -1)
        return self._call(users.unsqueeze(1), items).clone()

    def _call(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        scores = self.model(users, items)
        if not isinstance(scores, torch.Tensor):
            scores = torch.as_tensor(scores)
        if tuple(scores.shape) != tuple(items.shape):
            raise ShapeError(
                f"model(users, items) must return scores of shape {tuple(items.shape)}, "
                f"got {tuple(scores.shape)}"
            )
        return scores.to(device=self.device, dtype=torch.float32)

    def count_nonfinite(self, scores: torch.Tensor) -> None:
        # Accumulated on the device and checked once, not once per batch.
        self._nonfinite += (~torch.isfinite(scores)).sum()

    def count_nonfinite_top(self, values: torch.Tensor) -> None:
        # -inf marks removed training items; NaN and +inf are the model's.
        self._nonfinite += (torch.isnan(values) | (values == torch.inf)).sum()

    def raise_if_nonfinite(self) -> None:
        bad = int(self._nonfinite.item())
        if bad:
            raise NonFiniteError(f"the model produced {bad} non-finite scores (NaN or inf)")


def _int_attr(model: Any, name: str) -> int | None:
    value = getattr(model, name, None)
    return (
        int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else None
    )


def _check_range(ids: np.ndarray, size: int | None, name: str, kind: str, size_name: str) -> None:
    if ids.size == 0:
        return
    flat = ids.reshape(-1)
    bad = flat < 0 if size is None else (flat < 0) | (flat >= size)
    if bad.any():
        p = int(np.argmax(bad))
        where = np.unravel_index(p, ids.shape)
        at = where[0] if len(where) == 1 else tuple(int(w) for w in where)
        limit = "" if size is None else f" for the model's {size_name}={size}"
        raise IdOutOfRangeError(f"{kind} id {int(flat[p])} out of range{limit} ({name}[{at}])")


class _Rows:
    """Gathers the CSR rows of a batch of users as (row, column) coordinates."""

    def __init__(self, data: Interactions) -> None:
        self.indptr = np.asarray(data.indptr, dtype=np.int64)
        self.indices = np.asarray(data.indices, dtype=np.int64)
        self.n_users = data.n_users

    def coords(self, users: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        inside = users < self.n_users  # users past the last row have none
        safe = np.where(inside, users, 0)
        starts = self.indptr[safe]
        counts = np.where(inside, self.indptr[safe + 1] - starts, 0)
        total = int(counts.sum())
        rows = np.repeat(np.arange(len(users), dtype=np.int64), counts)
        offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        cols = self.indices[np.repeat(starts, counts) + offsets]
        return torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)


__all__ = ["evaluate_sampled", "evaluate_full"]
