"""SRNS and gain memory updates and criteria, step by step against numpy."""

from __future__ import annotations

import numpy as np
import torch

import gnno


class Vectors(torch.nn.Module):
    def __init__(self, U, V):
        super().__init__()
        self.U = torch.nn.Parameter(torch.as_tensor(U))
        self.V = torch.nn.Parameter(torch.as_tensor(V))

    def forward(self, users, items):
        return (self.U[users] * self.V[items]).sum(-1)

    def user_vectors(self):
        return self.U

    def item_vectors(self):
        return self.V


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_srns_memory_history_and_criterion_match_numpy():
    rng = np.random.default_rng(0)
    n_users, n_items, d = 30, 120, 6
    train = gnno.datasets.synthetic(
        n_users=n_users, n_items=n_items, mean_activity=10, seed=2
    ).train
    s1, history, alpha, warmup = 3, 2, 5.0, 2
    sampler = gnno.SRNSSampler(
        train,
        memory=s1,
        fresh=6,
        variance_weight=alpha,
        warmup=warmup,
        retain_temperature=1e-4,
        history=history,
        step_memory=False,  # the draw below must see the memory as refreshed
        seed=1,
    )
    users_of_pairs, items_of_pairs = train.to_pairs()
    models = [
        Vectors(
            rng.normal(size=(n_users, d)).astype(np.float32),
            rng.normal(size=(n_items, d)).astype(np.float32),
        )
        for _ in range(3)
    ]
    prev_items = None
    for epoch, model in enumerate(models):
        sampler.set_epoch(epoch)
        sampler.refresh(model)
        scores = (model.U @ model.V.T).detach().numpy()
        items = sampler.diagnostics()["items"]
        assert (items >= 0).all()
        assert not train.contains(np.repeat(np.arange(n_users), s1), items.ravel()).any()
        if prev_items is not None:
            # Retention with a tiny temperature keeps the highest scores: a
            # dropped memory item never outscores a kept one.
            for u in range(n_users):
                dropped = np.setdiff1d(prev_items[u], items[u])
                if len(dropped):
                    assert scores[u, dropped].max() <= scores[u, items[u]].min() + 1e-5
        prev_items = items.copy()

    state = sampler.state_dict()["memory"]
    hist = state["history"].reshape(n_users, s1, history)
    pos_hist = state["positive_history"].reshape(train.nnz, history)
    obs = state["observations"].reshape(n_users, s1)
    all_scores = [(m.U @ m.V.T).detach().numpy() for m in models]
    # Positive history: the last two refreshes, oldest first.
    for p, (u, i) in enumerate(zip(users_of_pairs, items_of_pairs, strict=True)):
        assert np.allclose(pos_hist[p], [all_scores[1][u, i], all_scores[2][u, i]], atol=1e-5)
    # Slot history: the item's score at each refresh it was observed in.
    for u in range(n_users):
        for s in range(s1):
            j = items[u, s]
            n = min(int(obs[u, s]), history)
            expect = [all_scores[t][u, j] for t in range(3)][-n:]
            assert np.allclose(hist[u, s, history - n :], expect, atol=1e-5)

    # The criterion: argmax over the memory of σ(s_j − s_i) + α·ramp·std_j.
    cur = all_scores[2]
    ramp = min(1.0, 2 / warmup)
    neg = sampler.sample_for_pairs(users_of_pairs, items_of_pairs, k=1)[:, 0]
    for p, (u, i) in enumerate(zip(users_of_pairs, items_of_pairs, strict=True)):
        crit = []
        for s in range(s1):
            j = items[u, s]
            n = min(int(obs[u, s]), history)
            xs = sigmoid(hist[u, s, history - n :] - pos_hist[p, history - n :])
            crit.append(sigmoid(cur[u, j] - cur[u, i]) + alpha * ramp * xs.std())
        crit = np.array(crit)
        best = set(items[u][np.isclose(crit, crit.max(), atol=1e-5)])
        assert neg[p] in best


def test_gain_memory_h_and_g_match_numpy():
    rng = np.random.default_rng(1)
    n_users, n_items, d = 25, 90, 5
    train = gnno.datasets.synthetic(n_users=n_users, n_items=n_items, mean_activity=8, seed=3).train
    sampler = gnno.GainSampler(
        train, memory=4, fresh=8, retain="top", gain_alpha=0.2, eps=1e-6, seed=0
    )
    models = [
        Vectors(
            rng.normal(size=(n_users, d)).astype(np.float32),
            rng.normal(size=(n_items, d)).astype(np.float32),
        )
        for _ in range(2)
    ]

    def expectation(scores, u, j):
        pos = scores[u, train.row(u)].astype(np.float64)
        return sigmoid(scores[u, j] - pos).mean()

    before = None
    for model in models:
        sampler.refresh(model)
        scores = (model.U @ model.V.T).detach().numpy().astype(np.float64)
        diag = sampler.diagnostics()
        for u in range(n_users):
            h = diag["h"][u]
            assert (np.diff(h) <= 1e-7).all()  # top retention: hardest first
            for s, j in enumerate(diag["items"][u]):
                assert abs(h[s] - expectation(scores, u, j)) < 1e-5
                prev = None if before is None else before.get((u, j))
                if prev is None:
                    assert diag["g"][u, s] == 0.5 and diag["observations"][u, s] == 1
                else:
                    step = sigmoid((prev - h[s]) / (h[s] + 1e-6))
                    assert abs(diag["g"][u, s] - (0.2 * 0.5 + 0.8 * step)) < 1e-5
                    assert diag["observations"][u, s] == 2
        before = {
            (u, int(j)): float(diag["h"][u, s])
            for u in range(n_users)
            for s, j in enumerate(diag["items"][u])
        }


def test_srns_step_updates_the_batch_users_memory_by_score():
    rng = np.random.default_rng(5)
    n_users, n_items, d = 20, 100, 4
    train = gnno.datasets.synthetic(n_users=n_users, n_items=n_items, mean_activity=8, seed=6).train
    model = Vectors(
        rng.normal(size=(n_users, d)).astype(np.float32),
        rng.normal(size=(n_items, d)).astype(np.float32),
    )
    scores = (model.U @ model.V.T).detach().numpy()
    sampler = gnno.SRNSSampler(train, memory=3, fresh=10, retain_temperature=1e-4, seed=0)
    sampler.refresh(model)
    before = sampler.diagnostics()["items"].copy()
    batch = np.array([2, 5, 5, 7])
    sampler.sample(batch, k=1)
    after = sampler.diagnostics()["items"]
    others = np.setdiff1d(np.arange(n_users), batch)
    assert np.array_equal(after[others], before[others])  # only the batch's users move
    for u in np.unique(batch):
        kept = after[u]
        assert not train.contains(np.full(3, u), kept).any()
        # Greedy retention (tiny temperature): no earlier memory item that
        # was dropped outscores a kept one.
        dropped = np.setdiff1d(before[u], kept)
        if len(dropped):
            assert scores[u, dropped].max() <= scores[u, kept].min() + 1e-5
