"""The shared sampler interface, for every sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gnno
from gnno.exceptions import GnnoError, IdOutOfRangeError, SaturatedUserError, ShapeError


def make_train(seed=0, n_users=120, n_items=80):
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        k = int(rng.integers(1, 30))
        # Skewed item choice so popularity differs across items.
        chosen = rng.choice(
            n_items,
            size=k,
            replace=False,
            p=np.arange(n_items, 0, -1) / (n_items * (n_items + 1) / 2),
        )
        users += [u] * k
        items += chosen.tolist()
    return gnno.Interactions.from_pairs(users, items, n_users=n_users, n_items=n_items)


class DotModel(torch.nn.Module):
    """A dot-product model with fixed random vectors."""

    def __init__(self, n_users, n_items, dim=8, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.u = torch.nn.Parameter(torch.randn(n_users, dim, generator=g))
        self.i = torch.nn.Parameter(torch.randn(n_items, dim, generator=g))

    def forward(self, users, items):
        uv = self.u[users]
        if items.dim() > users.dim():
            uv = uv.view(*users.shape, *([1] * (items.dim() - users.dim())), -1)
        return (uv * self.i[items]).sum(-1)

    def user_vectors(self):
        return self.u

    def item_vectors(self):
        return self.i


class TableModel:
    """A generic scorer (no vectors): score = table[user, item]."""

    def __init__(self, table):
        self.table = torch.as_tensor(table, dtype=torch.float32)

    def __call__(self, users, items):
        return self.table[users, items]


ALL = ["uniform", "popularity", "dns", "srns", "gain"]


def build(name, train, seed=0, model=None):
    s = gnno.build_sampler(name, train, seed=seed)
    if s.needs_scores:
        s.refresh(model if model is not None else DotModel(train.n_users, train.n_items))
    return s


@pytest.mark.parametrize("name", ALL)
def test_never_returns_a_positive(name):
    train = make_train()
    s = build(name, train)
    users = np.repeat(np.arange(train.n_users), 5)
    for epoch in range(2):
        s.set_epoch(epoch)
        if s.needs_scores:
            s.refresh(DotModel(train.n_users, train.n_items, seed=epoch))
        neg = s.sample(users, k=3)
        assert neg.shape == (len(users), 3) and neg.dtype == np.int64
        assert not train.contains(np.repeat(users, 3), neg.ravel()).any()
        pos = np.array([train.row(u)[0] for u in users])
        neg2 = s.sample_for_pairs(users, pos, k=2)
        assert neg2.shape == (len(users), 2)
        assert not train.contains(np.repeat(users, 2), neg2.ravel()).any()
        assert ((neg2 >= 0) & (neg2 < train.n_items)).all()


@pytest.mark.parametrize("name", ALL)
def test_torch_in_torch_out(name):
    train = make_train()
    s = build(name, train)
    users = torch.arange(10)
    neg = s.sample(users, 2)
    assert isinstance(neg, torch.Tensor) and neg.dtype == torch.long and neg.device == users.device
    assert neg.shape == (10, 2)


@pytest.mark.parametrize("name", ALL)
def test_state_dict_round_trip_continues_bit_identically(name):
    train = make_train()
    users = np.arange(train.n_users)
    a = build(name, train, seed=3)
    a.set_epoch(1)
    a.sample(users, 2)
    state = a.state_dict()
    expect = [a.sample(users, 2) for _ in range(3)]
    if a.needs_scores:
        a.refresh(DotModel(train.n_users, train.n_items, seed=5))
        expect.append(a.sample(users, 2))
    b = gnno.build_sampler(name, train, seed=99)
    b.load_state_dict(state)
    got = [b.sample(users, 2) for _ in range(3)]
    if b.needs_scores:
        b.refresh(DotModel(train.n_users, train.n_items, seed=5))
        got.append(b.sample(users, 2))
    for x, y in zip(expect, got, strict=True):
        assert np.array_equal(x, y)


def test_state_dict_survives_torch_save(tmp_path):
    train = make_train()
    a = build("gain", train)
    a.refresh(DotModel(train.n_users, train.n_items, seed=1))
    torch.save(a.state_dict(), tmp_path / "s.pt")
    b = gnno.GainSampler(train)
    b.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=False))
    assert np.array_equal(a.sample(np.arange(20), 3), b.sample(np.arange(20), 3))


def test_state_dict_mismatches_are_errors():
    train = make_train()
    s = gnno.UniformSampler(train)
    with pytest.raises(GnnoError, match="PopularitySampler"):
        s.load_state_dict(gnno.PopularitySampler(train).state_dict())
    other = gnno.UniformSampler(make_train(n_items=81))
    with pytest.raises(GnnoError, match="shape"):
        s.load_state_dict(other.state_dict())
    g = gnno.GainSampler(train, memory=4)
    with pytest.raises(GnnoError, match="config"):
        g.load_state_dict(gnno.GainSampler(train, memory=5).state_dict())


@pytest.mark.parametrize("name", ALL)
def test_bad_users_and_saturated_users(name):
    users = [0, 0, 0, 1]
    items = [0, 1, 2, 0]
    train = gnno.Interactions.from_pairs(users, items, n_items=3)
    s = build(name, train)
    with pytest.raises(SaturatedUserError, match="user 0"):
        s.sample([1, 0], 1)
    with pytest.raises(IdOutOfRangeError, match="user id 2"):
        s.sample([1, 2], 1)
    with pytest.raises(IdOutOfRangeError):
        s.sample([-1], 1)
    with pytest.raises(ShapeError):
        s.sample([[1]], 1)
    with pytest.raises(ShapeError):
        s.sample([1.0], 1)
    with pytest.raises(GnnoError, match="k must be"):
        s.sample([1], 0)
    with pytest.raises(ShapeError, match="same length"):
        s.sample_for_pairs([1, 1], [0], 1)
    with pytest.raises(IdOutOfRangeError, match="positives"):
        s.sample_for_pairs([1], [7], 1)


def test_empty_batch_gives_empty_negatives():
    train = make_train()
    for name in ALL:
        s = build(name, train)
        assert s.sample(np.zeros(0, np.int64), 2).shape == (0, 2)


def test_popularity_frequencies_follow_count_power_beta():
    # One user with a single positive: negatives cover all other items.
    rng = np.random.default_rng(0)
    n_items = 12
    counts = rng.integers(1, 40, n_items)
    users = [0]
    items = [0]
    u = 1
    for i, c in enumerate(counts):
        for _ in range(c):
            users.append(u)
            items.append(i)
            u += 1
    train = gnno.Interactions.from_pairs(users, items, n_items=n_items)
    beta = 0.75
    s = gnno.PopularitySampler(train, popularity_beta=beta, seed=0)
    n = 200_000
    neg = s.sample(np.zeros(n, np.int64), 1)[:, 0]
    assert (neg != 0).all()
    weights = train.item_counts.astype(np.float64) ** beta
    weights[0] = 0.0
    expected = weights / weights.sum()
    observed = np.bincount(neg, minlength=n_items) / n
    # Chi-square statistic over 11 free cells; 40 is far beyond the 0.999 quantile (31.3).
    chi2 = n * ((observed - expected)[1:] ** 2 / expected[1:]).sum()
    assert chi2 < 40, chi2


def test_dns_returns_argmax_of_its_candidates():
    train = make_train()
    s = gnno.DNSSampler(train, fresh_candidates=5, seed=1)
    table = np.random.default_rng(3).normal(size=train.shape).astype(np.float32)
    users = np.repeat(np.arange(train.n_users), 3)
    items, anchors = s._core.propose(users, None, 2)
    scores = table[np.repeat(users, 10), items]
    chosen = s._core.select(users, items, anchors, 2, scores, np.zeros(len(users), np.float32))
    cands = items.reshape(len(users), 2, 5)
    cand_scores = scores.reshape(len(users), 2, 5)
    best = np.take_along_axis(cands, cand_scores.argmax(-1)[..., None], -1)[..., 0]
    assert np.array_equal(chosen, best)


def test_dns_with_a_generic_model_prefers_high_scores():
    train = make_train()
    # Score = item id: DNS's pick is the max of 5 uniform candidates.
    table = np.tile(np.arange(train.n_items, dtype=np.float32), (train.n_users, 1))
    dns = gnno.DNSSampler(train, fresh_candidates=5, seed=0)
    dns.refresh(TableModel(table))
    uni = gnno.UniformSampler(train, seed=0)
    users = np.repeat(np.arange(train.n_users), 50)
    assert dns.sample(users).mean() > uni.sample(users).mean() + 10


def test_sampling_before_refresh_is_a_clear_error():
    s = gnno.GainSampler(make_train())
    with pytest.raises(GnnoError, match=r"refresh\(model\)"):
        s.sample([0], 1)


def test_refresh_rejects_non_finite_scores():
    train = make_train()
    table = np.zeros(train.shape, np.float32)
    table[:, 3] = np.nan
    with pytest.raises(gnno.exceptions.NonFiniteError):
        gnno.GainSampler(train).refresh(TableModel(table))


def test_gain_veto_and_warmup_are_settings_of_the_gain_sampler():
    import gnno

    train = gnno.datasets.synthetic(n_users=60, n_items=40, seed=2).train
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(train.n_users), 3)
    positives = np.array([train.row(u)[0] for u in users])
    for options in (
        {"criterion": "gain_veto", "veto_threshold": 0.5, "fresh_candidates": 16},
        {"criterion": "gain", "gain_warmup": 5.0, "gain_beta": 3.0},
        {"criterion": "gain_normalized", "gain_beta": 1.0, "fresh_candidates": 8},
        {"criterion": "gain", "gain_window": 3, "gain_beta": 3.0, "memory_candidates": 2},
    ):
        s = gnno.GainSampler(train, seed=1, **options)
        for epoch in range(3):
            s.set_epoch(epoch)
            s.refresh_embeddings(
                rng.normal(size=(train.n_users, 4)).astype(np.float32),
                rng.normal(size=(train.n_items, 4)).astype(np.float32),
            )
            neg = s.sample_for_pairs(users, positives, 2)
            assert not train.contains(np.repeat(users, 2), neg.reshape(-1)).any()
        # The state round-trips the new options.
        clone = gnno.GainSampler(train, seed=1, **options)
        clone.load_state_dict(s.state_dict())
        assert np.array_equal(clone.sample(users, 2), s.sample(users, 2))
    with pytest.raises(GnnoError, match="draw_temperature"):
        gnno.GainSampler(train, criterion="gain_veto", draw_temperature=0.5)
    with pytest.raises(GnnoError, match="gain_warmup"):
        gnno.GainSampler(train, gain_warmup=-1.0)
    with pytest.raises(GnnoError, match="veto_threshold"):
        gnno.GainSampler(train, criterion="gain_veto", veto_threshold=float("nan"))
    for bad in (0, -2, 2.5, "3"):
        with pytest.raises(GnnoError, match="gain_window"):
            gnno.GainSampler(train, gain_window=bad)


def test_gain_window_changes_the_memory_gains_only_past_one_step():
    """``gain_window=1`` is the one-step gain; a wider window gives other
    gains once slots span more than one refresh, and stays reproducible."""
    train = gnno.datasets.synthetic(n_users=60, n_items=40, seed=2).train
    snapshots = [
        (
            np.random.default_rng(k).normal(size=(train.n_users, 4)).astype(np.float32),
            np.random.default_rng(k + 100).normal(size=(train.n_items, 4)).astype(np.float32),
        )
        for k in range(5)
    ]

    def gains(**options):
        s = gnno.GainSampler(train, seed=3, memory=8, fresh=8, **options)
        for uv, iv in snapshots:
            s.refresh_embeddings(uv, iv)
        state = s.state_dict()
        return state["memory"]["items"], state["memory"]["g"]

    items, one = gains()
    items_1, explicit = gains(gain_window=1)
    items_4, four = gains(gain_window=4)
    assert np.array_equal(items, items_1) and np.array_equal(one, explicit, equal_nan=True)
    assert np.array_equal(items, items_4)  # retention is by H, not G
    assert not np.allclose(one, four, equal_nan=True)
    assert np.array_equal(four, gains(gain_window=4)[1], equal_nan=True)
    # The sampler keeps the last gain_window snapshots for the draw-time gain.
    s = gnno.GainSampler(train, seed=3, gain_window=3)
    for uv, iv in snapshots:
        s.refresh_embeddings(uv, iv)
    past = s.state_dict()["embeddings"]["past"]
    assert [p[1].tolist() for p in past] == [iv.tolist() for _, iv in snapshots[1:4]]
    # A state saved before the setting existed loads as the one-step gain.
    s = gnno.GainSampler(train, seed=3)
    s.refresh_embeddings(*snapshots[0])
    s.refresh_embeddings(*snapshots[1])
    old = s.state_dict()
    del old["config"]["gain_window"]
    past = old["embeddings"].pop("past")
    assert len(past) == 1
    old["embeddings"]["previous"] = past[0]
    users = np.arange(train.n_users)
    clone = gnno.GainSampler(train, seed=3)
    clone.load_state_dict(old)
    assert np.array_equal(clone.sample(users, 2), s.sample(users, 2))
    with pytest.raises(GnnoError, match="config"):
        gnno.GainSampler(train, seed=3, gain_window=2).load_state_dict(old)
