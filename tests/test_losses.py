"""BPR and the group-wise hinge, against direct formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import gnno
from gnno import bpr_loss, group_hinge_loss
from gnno.exceptions import EmptyInputError, GnnoError, ShapeError


def test_bpr_single_negative():
    pos = torch.tensor([2.0, 0.0])
    neg = torch.tensor([1.0, 3.0])
    want = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(3.0))) / 2
    assert bpr_loss(pos, neg).item() == pytest.approx(want, rel=1e-6)


def test_bpr_k_negatives_broadcast_the_positive():
    pos = torch.tensor([1.0, -1.0])
    neg = torch.tensor([[0.0, 2.0, 1.0], [0.5, -3.0, -1.0]])
    want = (
        sum(
            math.log1p(math.exp(neg[b, k].item() - pos[b].item()))
            for b in range(2)
            for k in range(3)
        )
        / 6
    )
    assert bpr_loss(pos, neg).item() == pytest.approx(want, rel=1e-6)


def test_bpr_is_stable_for_large_gaps():
    loss = bpr_loss(torch.tensor([0.0, 0.0]), torch.tensor([200.0, -200.0]))
    assert loss.item() == pytest.approx(100.0)


def test_bpr_gradient_pushes_positive_up():
    pos = torch.zeros(3, requires_grad=True)
    neg = torch.zeros(3, 2, requires_grad=True)
    bpr_loss(pos, neg).backward()
    assert (pos.grad < 0).all() and (neg.grad > 0).all()


def test_bpr_shape_errors():
    with pytest.raises(ShapeError):
        bpr_loss(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ShapeError):
        bpr_loss(torch.zeros(3, 1), torch.zeros(3))


def _hinge_ref(pos, neg, margin, pos_mask, neg_mask):
    rows = []
    for b in range(len(pos)):
        terms = [
            max(0.0, neg[b][j] - pos[b][i] + margin)
            for i in range(len(pos[b]))
            if pos_mask[b][i]
            for j in range(len(neg[b]))
            if neg_mask[b][j]
        ]
        if terms:
            rows.append(sum(terms) / len(terms))
    return sum(rows) / len(rows)


def test_group_hinge_by_hand():
    pos = torch.tensor([[2.0, 0.5]])
    neg = torch.tensor([[1.0, 0.0, 3.0]])
    # pairs (margin 1): [1-2+1]+ = 0, [0-2+1]+ = 0, [3-2+1] = 2,
    #                   [1-.5+1] = 1.5, [0-.5+1] = .5, [3-.5+1] = 3.5 -> 7.5 / 6
    assert group_hinge_loss(pos, neg, margin=1.0).item() == pytest.approx(7.5 / 6)
    assert group_hinge_loss(pos, neg, margin=0.0).item() == pytest.approx((1 + 0.5 + 2.5) / 6)


def test_group_hinge_masks_and_row_normalisation():
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(4, 3, generator=g)
    neg = torch.randn(4, 5, generator=g)
    pos_mask = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [0, 0, 0]], dtype=torch.bool)
    neg_mask = torch.tensor([[1] * 5, [1, 1, 0, 0, 0], [1] * 5, [1] * 5], dtype=torch.bool)
    # Padding holds garbage that must not leak.
    pos = torch.where(pos_mask, pos, torch.tensor(float("nan")))
    got = group_hinge_loss(pos, neg, margin=0.7, pos_mask=pos_mask, neg_mask=neg_mask)
    want = _hinge_ref(pos.tolist(), neg.tolist(), 0.7, pos_mask.tolist(), neg_mask.tolist())
    # Row 3 has no pair: the mean is over the three other rows, each normalised by its own count.
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_group_hinge_without_masks_is_the_plain_mean():
    pos = torch.tensor([[0.0, 1.0], [2.0, 2.0]])
    neg = torch.tensor([[0.5, 0.2], [0.0, 3.0]])
    ones = [[True, True], [True, True]]
    want = _hinge_ref(pos.tolist(), neg.tolist(), 1.0, ones, ones)
    assert group_hinge_loss(pos, neg).item() == pytest.approx(want)


def test_group_hinge_gradients_only_from_valid_pairs():
    pos = torch.tensor([[0.0, 0.0]], requires_grad=True)
    neg = torch.tensor([[0.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[True, False]])
    group_hinge_loss(pos, neg, pos_mask=mask).backward()
    assert pos.grad[0, 1] == 0 and pos.grad[0, 0] < 0
    assert (neg.grad > 0).all()


def test_group_hinge_no_pairs_is_zero_and_differentiable():
    pos = torch.zeros(2, 2, requires_grad=True)
    neg = torch.zeros(2, 3, requires_grad=True)
    loss = group_hinge_loss(pos, neg, pos_mask=torch.zeros(2, 2, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert pos.grad.abs().sum() == 0


def test_group_hinge_1d_inputs_are_single_columns():
    pos = torch.tensor([1.0, 0.0])
    neg = torch.tensor([0.5, 0.5])
    assert group_hinge_loss(pos, neg).item() == pytest.approx((0.5 + 1.5) / 2)


def test_group_hinge_shape_errors():
    with pytest.raises(ShapeError, match="same number of rows"):
        group_hinge_loss(torch.zeros(2, 3), torch.zeros(3, 3))
    with pytest.raises(ShapeError, match="pos_mask"):
        group_hinge_loss(
            torch.zeros(2, 3), torch.zeros(2, 3), pos_mask=torch.ones(2, 2, dtype=torch.bool)
        )
    with pytest.raises(ShapeError, match="boolean"):
        group_hinge_loss(torch.zeros(2, 3), torch.zeros(2, 3), neg_mask=torch.ones(2, 3))


# -- softmax losses ----------------------------------------------------------------------


def test_softmax_loss_is_cross_entropy_against_the_positive():
    torch.manual_seed(0)
    pos, neg = torch.randn(5), torch.randn(5, 7)
    for tau in (0.1, 1.0, 3.0):
        logits = torch.cat([pos[:, None], neg], 1) / tau
        want = torch.nn.functional.cross_entropy(logits, torch.zeros(5, dtype=torch.long))
        torch.testing.assert_close(gnno.softmax_loss(pos, neg, temperature=tau), want)
    # One negative each: a (B,) tensor works like (B, 1).
    torch.testing.assert_close(
        gnno.softmax_loss(pos, neg[:, 0]), gnno.softmax_loss(pos, neg[:, :1])
    )


def test_group_softmax_shares_the_negatives_of_a_row():
    torch.manual_seed(1)
    pos, neg = torch.randn(3, 4), torch.randn(3, 6)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    terms = [
        gnno.softmax_loss(pos[b, p : p + 1], neg[b : b + 1], temperature=0.5)
        for b in range(3)
        for p in range(4)
        if mask[b, p]
    ]
    got = gnno.group_softmax_loss(pos, neg, temperature=0.5, pos_mask=mask)
    torch.testing.assert_close(got, torch.stack(terms).mean())
    # Padded positives never leak in, even when they are not finite.
    padded = pos.clone()
    padded[~mask] = float("nan")
    torch.testing.assert_close(
        gnno.group_softmax_loss(padded, neg, temperature=0.5, pos_mask=mask), got
    )


@pytest.mark.parametrize("fn", ["softmax_loss", "group_softmax_loss"])
def test_softmax_losses_refuse_bad_input(fn):
    f = getattr(gnno, fn)
    with pytest.raises(GnnoError, match="temperature"):
        f(torch.zeros(2), torch.zeros(2, 3), temperature=0.0)
    with pytest.raises(EmptyInputError):
        f(torch.zeros(0), torch.zeros(0, 3))
    with pytest.raises(ShapeError):
        f(torch.zeros(2), torch.zeros(3, 3))


@pytest.mark.parametrize(
    "fn", ["bpr_loss", "softmax_loss", "group_hinge_loss", "group_softmax_loss"]
)
def test_losses_refuse_scores_that_are_not_float_tensors(fn):
    f = getattr(gnno, fn)
    with pytest.raises(
        ShapeError, match="neg_scores must hold floating-point scores, got dtype torch.int64"
    ):
        f(torch.zeros(2, 1), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ShapeError, match="pos_scores must be a torch.Tensor, got ndarray"):
        f(np.zeros((2, 1), np.float32), torch.zeros(2, 3))
