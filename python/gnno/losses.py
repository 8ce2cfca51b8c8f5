"""Pairwise ranking losses on model scores (see ``design/algorithms.md`` §4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gnno._arrays import finite_float
from gnno.exceptions import EmptyInputError, ShapeError

#: Default margin ``γ`` of the group-wise hinge. GMF scores are unbounded, so
#: the margin only fixes the scale the scores settle at (weight decay pulls
#: against it); 1.0 is the usual choice for hinge ranking losses.
DEFAULT_MARGIN = 1.0


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Bayesian personalized ranking: ``mean softplus(r(u, j) − r(u, i))``.

    ``pos_scores``: ``(B,)``; ``neg_scores``: ``(B,)`` or ``(B, K)`` (each
    positive is compared with each of its ``K`` negatives; the mean is over
    all ``B·K`` pairs). Returns a scalar.
    """
    _check_scores(pos_scores, neg_scores)
    if pos_scores.dim() != 1:
        raise ShapeError(
            f"pos_scores must be 1-dimensional (B,), got shape {tuple(pos_scores.shape)}"
        )
    if neg_scores.dim() not in (1, 2) or neg_scores.shape[0] != pos_scores.shape[0]:
        raise ShapeError(
            f"neg_scores must be (B,) or (B, K) with B={pos_scores.shape[0]}, "
            f"got shape {tuple(neg_scores.shape)}"
        )
    if pos_scores.numel() == 0 or neg_scores.numel() == 0:
        raise EmptyInputError(
            f"bpr_loss needs at least one (positive, negative) pair, got pos_scores of shape "
            f"{tuple(pos_scores.shape)} and neg_scores of shape {tuple(neg_scores.shape)}"
        )
    if neg_scores.dim() == 2:
        pos_scores = pos_scores.unsqueeze(1)
    # softplus(x) = -log σ(-x): the BPR log-likelihood, computed stably.
    return F.softplus(neg_scores - pos_scores).mean()


def group_hinge_loss(
    pos_scores: torch.Tensor,
    neg_scores: torch.Tensor,
    margin: float = DEFAULT_MARGIN,
    pos_mask: torch.Tensor | None = None,
    neg_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """GDNS's group-wise hinge: every positive of a user's group against
    every negative of the same group.

    ``pos_scores``: ``(B, P)`` (or ``(B,)`` for one positive per row);
    ``neg_scores``: ``(B, N)`` (or ``(B,)``). Row ``b`` holds one user's group.
    ``pos_mask`` ``(B, P)`` / ``neg_mask`` ``(B, N)`` are boolean and mark the
    valid entries of ragged groups (``None``: all valid).

    Per row: ``Σ_{i, j valid} [r_uj − r_ui + margin]_+ / (#valid pairs)``;
    the result is the mean of that over rows with at least one valid pair
    (a scalar; zero, still attached to the graph, when no row has one).
    ``margin`` must be ``>= 0``; empty inputs (no rows, positives or
    negatives) are an ``EmptyInputError``.
    """
    _check_scores(pos_scores, neg_scores)
    margin = finite_float(margin, "margin", low=0.0)
    pos_scores, neg_scores = _groups(pos_scores, neg_scores, "group_hinge_loss")
    pos_mask = _check_mask(pos_mask, pos_scores, "pos_mask")
    neg_mask = _check_mask(neg_mask, neg_scores, "neg_mask")

    # (B, P, N): the hinge of every (positive, negative) pair of the row.
    hinge = F.relu(neg_scores.unsqueeze(1) - pos_scores.unsqueeze(2) + margin)
    if pos_mask is None and neg_mask is None:
        return hinge.mean(dim=(1, 2)).mean()
    b, p, n = hinge.shape
    pm = pos_mask if pos_mask is not None else pos_scores.new_ones((b, p), dtype=torch.bool)
    nm = neg_mask if neg_mask is not None else neg_scores.new_ones((b, n), dtype=torch.bool)
    pairs = pm.unsqueeze(2) & nm.unsqueeze(1)
    # where() rather than a product, so that a padded score that is inf or
    # NaN cannot leak into the sum.
    per_row = torch.where(pairs, hinge, hinge.new_zeros(())).sum(dim=(1, 2))
    counts = pairs.sum(dim=(1, 2)).to(per_row.dtype)
    # No boolean indexing or branching on values: that would make a CUDA
    # step wait for the device. Rows without pairs contribute 0 / 1.
    n_rows = (counts > 0).sum().to(per_row.dtype)
    return (per_row / counts.clamp(min=1)).sum() / n_rows.clamp(min=1)


def softmax_loss(
    pos_scores: torch.Tensor, neg_scores: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Sampled softmax: each positive against its own ``K`` negatives,
    ``mean_b −log( e^{r_ui/τ} / (e^{r_ui/τ} + Σ_j e^{r_uj/τ}) )``.

    ``pos_scores``: ``(B,)``; ``neg_scores``: ``(B, K)`` (or ``(B,)`` for
    one negative each). ``temperature`` ``τ > 0`` sharpens (small) or
    flattens (large) the weight the loss puts on the hardest negatives. No
    correction for the proposal distribution is applied: with uniform
    negatives it is a constant, and hard-negative samplers choose their
    negatives on purpose. Returns a scalar.
    """
    _check_scores(pos_scores, neg_scores)
    temperature = finite_float(temperature, "temperature", low=0.0, low_open=True)
    if pos_scores.dim() != 1:
        raise ShapeError(
            f"pos_scores must be 1-dimensional (B,), got shape {tuple(pos_scores.shape)}"
        )
    neg_scores = _as_rows(neg_scores, "neg_scores")
    if neg_scores.shape[0] != pos_scores.shape[0]:
        raise ShapeError(
            f"neg_scores must be (B,) or (B, K) with B={pos_scores.shape[0]}, "
            f"got shape {tuple(neg_scores.shape)}"
        )
    if pos_scores.numel() == 0 or neg_scores.shape[1] == 0:
        raise EmptyInputError(
            f"softmax_loss needs at least one positive and one negative, got pos_scores of "
            f"shape {tuple(pos_scores.shape)} and neg_scores of shape {tuple(neg_scores.shape)}"
        )
    # −log(e^a / (e^a + Σ e^b)) = softplus(logsumexp(b) − a)
    lse = torch.logsumexp(neg_scores / temperature, dim=1)
    return F.softplus(lse - pos_scores / temperature).mean()


def group_softmax_loss(
    pos_scores: torch.Tensor,
    neg_scores: torch.Tensor,
    temperature: float = 1.0,
    pos_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sampled softmax with negatives shared per user group: every positive
    of a row against all ``N`` negatives of the same row,
    ``−log( e^{r_ui/τ} / (e^{r_ui/τ} + Σ_j e^{r_uj/τ}) )``, averaged over the
    valid positives.

    ``pos_scores``: ``(B, P)`` (or ``(B,)``); ``neg_scores``: ``(B, N)``.
    ``pos_mask`` ``(B, P)`` marks the valid positives of ragged groups. Each
    row's negatives are scored once and serve all its positives, so ``N``
    can be large at the cost of ``P + N`` scores per row (GDNS's sharing of
    negatives within a user's group, with a softmax instead of the hinge).
    """
    _check_scores(pos_scores, neg_scores)
    temperature = finite_float(temperature, "temperature", low=0.0, low_open=True)
    pos_scores, neg_scores = _groups(pos_scores, neg_scores, "group_softmax_loss")
    pos_mask = _check_mask(pos_mask, pos_scores, "pos_mask")
    lse = torch.logsumexp(neg_scores / temperature, dim=1, keepdim=True)
    per_pos = F.softplus(lse - pos_scores / temperature)
    if pos_mask is None:
        return per_pos.mean()
    kept = torch.where(pos_mask, per_pos, per_pos.new_zeros(()))
    return kept.sum() / pos_mask.sum().clamp(min=1).to(kept.dtype)


def _groups(
    pos_scores: torch.Tensor, neg_scores: torch.Tensor, loss: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both score tensors as ``(B, ·)`` rows of the same groups, non-empty."""
    pos_scores = _as_rows(pos_scores, "pos_scores")
    neg_scores = _as_rows(neg_scores, "neg_scores")
    if pos_scores.shape[0] != neg_scores.shape[0]:
        raise ShapeError(
            f"pos_scores and neg_scores must have the same number of rows, "
            f"got {pos_scores.shape[0]} and {neg_scores.shape[0]}"
        )
    if pos_scores.numel() == 0 or neg_scores.numel() == 0:
        raise EmptyInputError(
            f"{loss} needs at least one positive and one negative, got pos_scores "
            f"of shape {tuple(pos_scores.shape)} and neg_scores of shape "
            f"{tuple(neg_scores.shape)}"
        )
    return pos_scores, neg_scores


def _check_scores(pos_scores: object, neg_scores: object) -> None:
    """Scores are floating-point tensors (a loss of integer scores has no
    gradient, and torch's own message names a kernel, not the argument)."""
    for name, x in (("pos_scores", pos_scores), ("neg_scores", neg_scores)):
        if not isinstance(x, torch.Tensor):
            raise ShapeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise ShapeError(f"{name} must hold floating-point scores, got dtype {x.dtype}")


def _as_rows(scores: torch.Tensor, name: str) -> torch.Tensor:
    if scores.dim() == 1:
        return scores.unsqueeze(1)
    if scores.dim() != 2:
        raise ShapeError(f"{name} must be (B,) or (B, K), got shape {tuple(scores.shape)}")
    return scores


def _check_mask(mask: torch.Tensor | None, scores: torch.Tensor, name: str) -> torch.Tensor | None:
    if mask is None:
        return None
    if mask.dim() == 1 and scores.shape[1] == 1:
        mask = mask.unsqueeze(1)
    if tuple(mask.shape) != tuple(scores.shape):
        raise ShapeError(f"{name} must have shape {tuple(scores.shape)}, got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise ShapeError(f"{name} must be a boolean tensor, got dtype {mask.dtype}")
    return mask


__all__ = [
    "bpr_loss",
    "softmax_loss",
    "group_hinge_loss",
    "group_softmax_loss",
    "DEFAULT_MARGIN",
]
