"""GMF: the score formula, broadcasting, vectors, initialisation."""

from __future__ import annotations

import pytest
import torch

from gnno import GMF
from gnno.exceptions import GnnoError


def _model(seed=0):
    torch.manual_seed(seed)
    return GMF(7, 11, dim=5)


def test_score_is_w_dot_p_times_q():
    m = _model()
    u, i = 3, 9
    want = (m.weight * m.user_embedding.weight[u] * m.item_embedding.weight[i]).sum()
    got = m(torch.tensor([u]), torch.tensor([i]))
    assert got.shape == (1,)
    assert got[0].item() == pytest.approx(want.item(), rel=1e-6)


def test_vectors_give_the_same_scores():
    m = _model()
    users = torch.tensor([0, 3, 6])
    items = torch.tensor([[1, 2], [10, 0], [5, 5]])
    by_vectors = torch.einsum("bd,bkd->bk", m.user_vectors()[users], m.item_vectors()[items])
    torch.testing.assert_close(m(users, items), by_vectors)
    assert m.user_vectors().shape == (7, 5)
    assert m.item_vectors().shape == (11, 5)


@pytest.mark.parametrize("shape", [(4,), (4, 3), (4, 3, 2)])
def test_forward_broadcasts_over_item_dims(shape):
    m = _model()
    users = torch.tensor([0, 1, 2, 6])
    items = torch.randint(0, 11, shape, generator=torch.Generator().manual_seed(1))
    scores = m(users, items)
    assert scores.shape == shape
    flat_users = users.reshape((4,) + (1,) * (len(shape) - 1)).expand(shape).reshape(-1)
    one_by_one = m(flat_users, items.reshape(-1)).reshape(shape)
    torch.testing.assert_close(scores, one_by_one)


def test_users_column_broadcasts_against_item_rows():
    # The full-ranking call: users (B, 1) against items (B, n).
    m = _model()
    users = torch.tensor([[2], [5]])
    items = torch.arange(11).expand(2, 11)
    torch.testing.assert_close(m(users, items), m.user_vectors()[[2, 5]] @ m.item_vectors().T)


def test_ncf_initialisation():
    torch.manual_seed(0)
    m = GMF(3000, 2000, dim=32)
    assert m.user_embedding.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert m.item_embedding.weight.std().item() == pytest.approx(0.01, rel=0.05)
    limit = (3 / 32) ** 0.5
    assert m.weight.abs().max().item() <= limit
    assert m.weight.abs().max().item() > limit / 4  # not the embeddings' tiny scale


def test_gradients_reach_every_parameter():
    m = _model()
    m(torch.tensor([1, 2]), torch.tensor([[3, 4], [5, 6]])).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("args", [(0, 5), (5, 0), (5, 5, 0), (5.5, 5)])
def test_sizes_are_checked(args):
    with pytest.raises(GnnoError):
        GMF(*args)


def test_item_bias_keeps_the_dot_product_form():
    import torch

    from gnno import GMF

    torch.manual_seed(0)
    m = GMF(5, 7, dim=3, item_bias=True)
    with torch.no_grad():
        m.item_bias.weight.normal_()
    users = torch.tensor([0, 1, 4])
    items = torch.tensor([[0, 6], [2, 3], [5, 5]])
    want = m.user_vectors()[users][:, None, :].mul(m.item_vectors()[items]).sum(-1)
    torch.testing.assert_close(m(users, items), want)
    assert m.user_vectors().shape == (5, 4) and m.item_vectors().shape == (7, 4)
    # The penalty covers the biases of the batch's items.
    base = GMF(5, 7, dim=3)
    base.load_state_dict({k: v for k, v in m.state_dict().items() if k != "item_bias.weight"})
    extra = m.item_bias(items).pow(2).sum() / 3
    torch.testing.assert_close(m.penalty(users, items), base.penalty(users, items) + extra)
