"""Evaluation protocols: hand-computed cases and a plain numpy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gnno import GMF, Interactions, evaluate_full, evaluate_sampled
from gnno.exceptions import (
    EmptyInputError,
    GnnoError,
    IdOutOfRangeError,
    NonFiniteError,
    ShapeError,
)


def table_model(table):
    """A callable scoring ``table[u, i]`` (users (B, 1), items (B, K))."""
    t = torch.as_tensor(table, dtype=torch.float32)
    return lambda users, items: t[users, items]


# -- sampled protocol: by hand ------------------------------------------------

SCORES = [[0.9, 0.5, 0.5, 0.1]]  # user 0; the target is item 2 (score 0.5)


def test_sampled_tie_favours_target():
    # item 0 beats the target, item 1 ties with it, item 3 loses: rank 1.
    m = evaluate_sampled(table_model(SCORES), [0], [2], [[0, 1, 3]], ks=(1, 3))
    assert m["hr@1"] == 0.0
    assert m["hr@3"] == 1.0
    assert m["ndcg@1"] == 0.0
    assert m["ndcg@3"] == pytest.approx(1 / math.log2(3))
    assert m["recall@3"] == m["hr@3"]


def test_sampled_duplicates_count():
    # item 0 listed twice beats the target twice: rank 2.
    m = evaluate_sampled(table_model(SCORES), [0], [2], [[0, 0, 3]], ks=(2, 3))
    assert m["hr@2"] == 0.0
    assert m["ndcg@3"] == pytest.approx(1 / math.log2(4))


def test_sampled_target_listed_among_negatives_ties():
    m = evaluate_sampled(table_model(SCORES), [0], [2], [[2, 2, 3]], ks=(1,))
    assert m == {"hr@1": 1.0, "ndcg@1": 1.0, "recall@1": 1.0}


def test_sampled_mean_over_users():
    scores = [[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]]
    # user 0: target 0 below items 1, 2 -> rank 2; user 1: target 0 on top -> rank 0.
    m = evaluate_sampled(table_model(scores), [0, 1], [0, 0], [[1, 2], [1, 2]], ks=(1, 3))
    assert m["hr@1"] == 0.5
    assert m["hr@3"] == 1.0
    assert m["ndcg@3"] == pytest.approx((1 / math.log2(4) + 1.0) / 2)


def test_sampled_target_in_negatives_ties_even_with_rounding():
    # GMF scores the target column and the negatives in one product, but the
    # tie rule must not depend on that: a listed copy never outranks the target.
    torch.manual_seed(0)
    model = GMF(5, 50, 16)
    users = np.arange(5)
    targets = np.arange(5)
    negatives = np.tile(targets[:, None], (1, 7))
    m = evaluate_sampled(model, users, targets, negatives, ks=(1,))
    assert m["hr@1"] == 1.0


# -- full ranking: by hand -----------------------------------------------------


def test_full_by_hand():
    scores = [
        [5.0, 4.0, 3.0, 2.0, 1.0],  # user 0
        [1.0, 2.0, 3.0, 4.0, 5.0],  # user 1: no test items, skipped
        [9.0, 0.0, 0.0, 0.0, 8.0],  # user 2
    ]
    train = Interactions.from_pairs([0, 2], [0, 1], n_users=3, n_items=5)
    test = Interactions.from_pairs([0, 0, 2], [2, 4, 0], n_users=3, n_items=5)
    m = evaluate_full(table_model(scores), train, test, ks=(2,))
    # user 0: item 0 removed, ranking 1, 2, 3, 4 -> top-2 [1, 2], one hit at position 1.
    # user 2: item 1 removed, ranking 0, 4, ... -> top-2 [0, 4], hit at position 0.
    u0_ndcg = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert m["recall@2"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["precision@2"] == pytest.approx((0.5 + 0.5) / 2)
    assert m["hr@2"] == pytest.approx(1.0)
    assert m["ndcg@2"] == pytest.approx((u0_ndcg + 1.0) / 2)


def test_full_refuses_a_test_item_that_is_also_a_training_item():
    # Full ranking removes the user's training items, so such a test item
    # could never be hit: an error naming the pair, not a silent miss.
    train = Interactions.from_pairs([0, 0, 1], [0, 1, 2], n_users=2, n_items=3)
    test = Interactions.from_pairs([0, 1], [2, 2], n_users=2, n_items=3)
    with pytest.raises(GnnoError, match=r"\(user 1, item 2\) is also in train \(1 such pairs\)"):
        evaluate_full(table_model([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]]), train, test, ks=(5,))


# -- against a plain numpy implementation ----------------------------------------


def _random_gmf(n_users, n_items, dim=8, seed=0):
    torch.manual_seed(seed)
    model = GMF(n_users, n_items, dim)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    return model


def _scores(model):
    with torch.no_grad():
        return (model.user_vectors().double() @ model.item_vectors().double().T).numpy()


def ref_sampled(S, users, targets, negatives, ks):
    out = {f"{n}@{k}": 0.0 for n in ("hr", "ndcg") for k in ks}
    for u, t, negs in zip(users, targets, negatives, strict=True):
        rank = sum(1 for j in negs if j != t and S[u, j] > S[u, t])
        for k in ks:
            if rank < k:
                out[f"hr@{k}"] += 1
                out[f"ndcg@{k}"] += 1 / math.log2(rank + 2)
    return {key: v / len(users) for key, v in out.items()}


def ref_full(S, train, test, ks):
    out = {f"{n}@{k}": 0.0 for n in ("recall", "precision", "hr", "ndcg") for k in ks}
    n = 0
    for u in range(test.n_users):
        truth = set(test.row(u).tolist())
        if not truth:
            continue
        n += 1
        seen = set(train.row(u).tolist())
        candidates = [i for i in range(S.shape[1]) if i not in seen]
        ranked = sorted(candidates, key=lambda i: (-S[u, i], i not in truth))  # ties: targets first
        for k in ks:
            top = ranked[:k]
            hits = [p for p, i in enumerate(top) if i in truth]
            out[f"recall@{k}"] += len(hits) / len(truth)
            out[f"precision@{k}"] += len(hits) / k
            out[f"hr@{k}"] += 1.0 if hits else 0.0
            idcg = sum(1 / math.log2(p + 2) for p in range(min(len(truth), k)))
            out[f"ndcg@{k}"] += sum(1 / math.log2(p + 2) for p in hits) / idcg
    return {key: v / n for key, v in out.items()}


def test_sampled_matches_numpy_reference():
    rng = np.random.default_rng(1)
    model = _random_gmf(60, 80)
    users = rng.integers(0, 60, 200)
    targets = rng.integers(0, 80, 200)
    negatives = rng.integers(0, 80, (200, 30))
    negatives[::7, 3] = targets[::7]  # some targets listed among their negatives
    ks = (1, 3, 10)
    got = evaluate_sampled(model, users, targets, negatives, ks=ks, batch_size=17)
    want = ref_sampled(_scores(model), users, targets, negatives, ks)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
    for k in ks:
        assert got[f"recall@{k}"] == got[f"hr@{k}"]


def _unseen(train, users, items):
    """The pairs ``(users[k], items[k])`` not in ``train``, as test data."""
    keep = ~train.contains(users, items)
    return Interactions.from_pairs(users[keep], items[keep], train.n_users, train.n_items)


@pytest.mark.parametrize("batch_size", [None, 7])
def test_full_matches_numpy_reference(batch_size):
    rng = np.random.default_rng(2)
    n_users, n_items = 40, 70
    model = _random_gmf(n_users, n_items)
    train = Interactions.from_pairs(
        rng.integers(0, n_users, 500), rng.integers(0, n_items, 500), n_users, n_items
    )
    test = _unseen(train, rng.integers(0, n_users - 5, 150), rng.integers(0, n_items, 150))
    ks = (1, 5, 20)
    got = evaluate_full(model, train, test, ks=ks, batch_size=batch_size)
    want = ref_full(_scores(model), train, test, ks)
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_full_callable_path_matches_vector_path():
    rng = np.random.default_rng(3)
    model = _random_gmf(30, 50)
    train = Interactions.from_pairs(rng.integers(0, 30, 300), rng.integers(0, 50, 300), 30, 50)
    test = _unseen(train, rng.integers(0, 30, 90), rng.integers(0, 50, 90))
    fast = evaluate_full(model, train, test, ks=(5, 10))
    slow = evaluate_full(lambda u, i: model(u, i), train, test, ks=(5, 10))
    assert fast == pytest.approx(slow, abs=1e-12)


# -- model handling and validation ----------------------------------------------------


def test_restores_training_mode_and_builds_no_graph():
    model = _random_gmf(4, 6)
    model.train()
    calls = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, users, items):
            calls.append((self.training, torch.is_grad_enabled()))
            return self.inner(users, items)

    probe = Probe().train()
    evaluate_sampled(probe, [0, 1], [0, 1], [[2, 3], [4, 5]], ks=(1,))
    assert calls == [(False, False)]
    assert probe.training and model.training
    model.eval()
    evaluate_full(
        model, Interactions.from_pairs([0], [1], 4, 6), Interactions.from_pairs([1], [2], 4, 6)
    )
    assert not model.training


def test_sampled_validation_errors():
    model = GMF(3, 5)
    with pytest.raises(IdOutOfRangeError, match=r"item id 5 .*negatives\[\(1, 0\)\]"):
        evaluate_sampled(model, [0, 1], [0, 1], [[1, 2], [5, 2]])
    with pytest.raises(IdOutOfRangeError, match="user id -1"):
        evaluate_sampled(model, [0, -1], [0, 1], [[1, 2], [3, 2]])
    with pytest.raises(ShapeError, match="same length"):
        evaluate_sampled(model, [0, 1], [0], [[1, 2], [3, 2]])
    with pytest.raises(ShapeError, match="negatives must be 2-dimensional"):
        evaluate_sampled(model, [0], [0], [1, 2])
    with pytest.raises(EmptyInputError):
        evaluate_sampled(model, [], [], np.zeros((0, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="k in ks must be >= 1"):
        evaluate_sampled(model, [0], [0], [[1]], ks=(0,))


def test_full_validation_errors():
    model = GMF(3, 5)
    train = Interactions.from_pairs([0], [1], 3, 5)
    with pytest.raises(ShapeError, match="same number of items"):
        evaluate_full(model, train, Interactions.from_pairs([0], [1], 3, 6))
    with pytest.raises(ShapeError, match="scores 5 items but the data has 4"):
        evaluate_full(
            model, Interactions.from_pairs([0], [1], 3, 4), Interactions.from_pairs([0], [2], 3, 4)
        )
    with pytest.raises(IdOutOfRangeError, match="user id 5"):
        evaluate_full(model, train, Interactions.from_pairs([5], [2], 6, 5))
    with pytest.raises(EmptyInputError):
        evaluate_full(model, train, Interactions.from_pairs([], [], 3, 5))


def test_non_finite_scores_are_an_error():
    nan_scores = [[0.0, float("nan"), 1.0]]
    with pytest.raises(NonFiniteError):
        evaluate_sampled(table_model(nan_scores), [0], [0], [[1, 2]])
    with pytest.raises(NonFiniteError):
        evaluate_full(
            table_model(nan_scores),
            Interactions.from_pairs([0], [0], 1, 3),
            Interactions.from_pairs([0], [2], 1, 3),
        )
    model = GMF(2, 3)
    with torch.no_grad():
        model.item_embedding.weight[1, 0] = float("inf")
    with pytest.raises(NonFiniteError, match="item_vectors"):
        evaluate_full(
            model, Interactions.from_pairs([0], [0], 2, 3), Interactions.from_pairs([0], [2], 2, 3)
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(4)
    model = _random_gmf(30, 50)
    train = Interactions.from_pairs(rng.integers(0, 30, 300), rng.integers(0, 50, 300), 30, 50)
    test = _unseen(train, rng.integers(0, 30, 90), rng.integers(0, 50, 90))
    negatives = rng.integers(0, 50, (30, 20))
    cpu_full = evaluate_full(model, train, test, ks=(5,))
    cpu_sampled = evaluate_sampled(model, np.arange(30), np.arange(30), negatives)
    model.cuda()
    assert evaluate_full(model, train, test, ks=(5,)) == pytest.approx(cpu_full, abs=1e-9)
    users = torch.arange(30, device="cuda")
    got = evaluate_sampled(model, users, users, torch.as_tensor(negatives, device="cuda"))
    assert got == pytest.approx(cpu_sampled, abs=1e-9)
