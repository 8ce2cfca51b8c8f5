"""ShardedSampler: one rank's users only, global ids in and out, per-rank
seeds and states; and a real two-process gloo run on the CPU."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from gloo_group import process_group, spawn_ranks
from gnno import GMF, Interactions
from gnno.exceptions import GnnoError, IdOutOfRangeError, NotInShardError
from gnno.samplers import GainSampler, ShardedSampler, UniformSampler, build_sampler
from gnno.samplers.sharded import rank_seed, shard_interactions

N_USERS, N_ITEMS = 61, 40


def dataset(seed=0):
    """Users with 3-12 positives each, item popularity skewed."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.7
    users, items = [], []
    for u in range(N_USERS):
        d = int(rng.integers(3, 13))
        users += [u] * d
        items += rng.choice(N_ITEMS, d, replace=False, p=pop / pop.sum()).tolist()
    return Interactions.from_pairs(users, items, N_USERS, N_ITEMS)


def model():
    """A GMF whose scores differ clearly between items and users."""
    torch.manual_seed(0)
    m = GMF(N_USERS, N_ITEMS, 8)
    with torch.no_grad():
        m.user_embedding.weight.normal_(0.0, 1.0)
        m.item_embedding.weight.normal_(0.0, 1.0)
        m.weight.fill_(1.0)
    return m


# -- one process ------------------------------------------------------------------


def test_shards_partition_the_rows():
    train = dataset()
    rows = []
    for rank in range(3):
        local = shard_interactions(train, 3, rank)
        assert local.n_items == N_ITEMS and local.n_users == len(range(rank, N_USERS, 3))
        for lu in range(local.n_users):
            assert np.array_equal(local.row(lu), train.row(lu * 3 + rank))
        rows.append(local.nnz)
    assert sum(rows) == train.nnz


def test_users_for_epoch_cover_everyone_once_and_are_seeded():
    train = dataset()
    samplers = [ShardedSampler("uniform", train, num_replicas=3, rank=r, seed=5) for r in range(3)]
    for epoch in range(3):
        everyone = np.concatenate([s.users_for_epoch(epoch) for s in samplers])
        assert np.array_equal(np.sort(everyone), np.arange(N_USERS))
    s = samplers[1]
    assert np.array_equal(s.users_for_epoch(2), s.users_for_epoch(2))
    assert not np.array_equal(s.users_for_epoch(1), s.users_for_epoch(2))
    assert np.array_equal(s.users_for_epoch(1, shuffle=False), np.arange(1, N_USERS, 3))


def test_rank_seeds_differ_and_are_fixed():
    seeds = [rank_seed(7, 4, r) for r in range(4)]
    assert len(set(seeds)) == 4 and seeds == [rank_seed(7, 4, r) for r in range(4)]
    assert all(0 <= s < 2**64 for s in seeds)
    assert rank_seed(7, 1, 0) == 7
    assert rank_seed(8, 4, 0) != seeds[0]


@pytest.mark.parametrize("name", ["uniform", "popularity", "dns", "srns", "gain"])
def test_one_replica_is_the_plain_sampler(name):
    train = dataset()
    plain = build_sampler(name, train, seed=3)
    sharded = ShardedSampler(name, train, num_replicas=1, rank=0, seed=3)
    m = model()
    users, items = train.to_pairs()
    for s in (plain, sharded):
        s.set_epoch(1)
        s.refresh(m)
    a = plain.sample_for_pairs(users, items, 3)
    b = sharded.sample_for_pairs(users, items, 3)
    assert np.array_equal(a, b)
    assert np.array_equal(plain.sample(users[:17], 2), sharded.sample(users[:17], 2))


@pytest.mark.parametrize("name", ["uniform", "gain", "srns"])
def test_global_ids_in_negatives_out(name):
    train = dataset()
    s = ShardedSampler(name, train, num_replicas=2, rank=1, seed=0)
    assert s.train.n_users == N_USERS // 2 and s.shape == train.shape
    s.refresh(model())
    users = torch.from_numpy(np.repeat(s.local_users, 5))
    neg = s.sample(users, 4)
    assert neg.dtype == torch.long and neg.shape == (len(users), 4)
    assert not train.contains(np.repeat(users.numpy(), 4), neg.numpy().ravel()).any()
    g_users, g_items = train.to_pairs()
    mine = g_users % 2 == 1
    neg = s.sample_for_pairs(g_users[mine], g_items[mine], 2)
    assert not train.contains(np.repeat(g_users[mine], 2), neg.ravel()).any()


def test_foreign_and_unknown_users_are_clear_errors():
    s = ShardedSampler("uniform", dataset(), num_replicas=3, rank=2)
    with pytest.raises(NotInShardError, match=r"user 4 \(users\[1\]\) belongs to rank 1 of 3"):
        s.sample([2, 4], 1)
    with pytest.raises(IdOutOfRangeError, match="user id 61 out of range"):
        s.sample([2, 61], 1)
    with pytest.raises(GnnoError, match="rank must be in"):
        ShardedSampler("uniform", dataset(), num_replicas=2, rank=2)
    with pytest.raises(GnnoError, match="holds no interactions"):
        ShardedSampler("uniform", Interactions.from_pairs([0], [1], 2, 3), num_replicas=2, rank=1)
    with pytest.raises(GnnoError, match="unknown sampler"):
        ShardedSampler("nope", dataset())


def test_defaults_without_torch_distributed_are_one_replica():
    s = ShardedSampler(UniformSampler, dataset(), seed=1)
    assert (s.num_replicas, s.rank) == (1, 0)


class NoVectors(torch.nn.Module):
    def __init__(self, gmf):
        super().__init__()
        self.gmf = gmf

    def forward(self, users, items):
        return self.gmf(users, items)


def test_scores_come_from_the_right_users():
    """Refreshing from the model, from global vectors, from local vectors
    and through a model without vectors all see the same scores."""
    train = dataset()
    m = model()
    make = lambda: ShardedSampler(  # noqa: E731
        GainSampler, train, num_replicas=3, rank=1, seed=2, memory=6, fresh=6, retain="top"
    )
    a, b, c, d = make(), make(), make(), make()
    a.refresh(m)
    with torch.no_grad():
        uv, iv = m.user_vectors(), m.item_vectors()
    b.refresh_embeddings(uv, iv)
    c.refresh_embeddings(uv[1::3], iv)
    d.refresh(NoVectors(m))
    ref = a.diagnostics()
    for other in (b, c, d):
        got = other.diagnostics()
        assert np.array_equal(ref["items"], got["items"])
        np.testing.assert_allclose(ref["h"], got["h"], rtol=1e-5, atol=1e-6)
    # H of each memory item is the global user's: mean over the user's
    # positives of sigmoid(r(u, j) - r(u, i)).
    scores = (uv @ iv.T).detach().numpy()
    for local, u in enumerate(a.local_users):
        pos = scores[u, train.row(u)]
        for j, h in zip(ref["items"][local], ref["h"][local], strict=True):
            if j >= 0:
                expected = np.mean(1.0 / (1.0 + np.exp(pos - scores[u, j])))
                assert h == pytest.approx(expected, rel=1e-4, abs=1e-5)
    with pytest.raises(GnnoError, match="rows"):
        b.refresh_embeddings(uv[:5], iv)


def test_ddp_wrapper_is_looked_through():
    from gnno.scoring import model_vectors, unwrap_parallel

    m = model()
    wrapped = torch.nn.DataParallel(m)
    assert unwrap_parallel(wrapped) is m
    u, i = model_vectors(wrapped)
    assert u.shape == (N_USERS, 8) and i.shape == (N_ITEMS, 8)


def test_state_dict_is_per_rank():
    train = dataset()
    s = ShardedSampler("gain", train, num_replicas=2, rank=0, seed=4, memory=4, fresh=4)
    s.set_epoch(1)
    s.refresh(model())
    users = s.local_users
    s.sample(users, 2)
    state = pickle.loads(pickle.dumps(s.state_dict()))
    after = s.sample(users, 2)

    again = ShardedSampler("gain", train, num_replicas=2, rank=0, seed=4, memory=4, fresh=4)
    again.load_state_dict(state)
    assert np.array_equal(again.sample(users, 2), after)
    other = ShardedSampler("gain", train, num_replicas=2, rank=1, seed=4, memory=4, fresh=4)
    with pytest.raises(GnnoError, match="rank 0 of 2, this sampler is rank 1 of 2"):
        other.load_state_dict(state)
    reseeded = ShardedSampler("gain", train, num_replicas=2, rank=0, seed=5, memory=4, fresh=4)
    with pytest.raises(GnnoError, match="seed"):
        reseeded.load_state_dict(state)


# -- two processes, gloo on the loopback ----------------------------------------------

WORLD = 2
EPOCHS = 2
K = 32
SAMPLERS = {"uniform": {}, "gain": {"memory": 8, "fresh": 8}}


def draw_epochs(sampler, train):
    """Per epoch: the users this rank walks and negatives for their pairs."""
    out = []
    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)
        users = sampler.users_for_epoch(epoch)
        rows = [train.row(u) for u in users]
        pair_users = np.repeat(users, [len(r) for r in rows])
        positives = np.concatenate(rows).astype(np.int64)
        neg = sampler.sample_for_pairs(torch.from_numpy(pair_users), torch.from_numpy(positives), K)
        out.append((users, pair_users, neg.numpy()))
    return out


def _worker(rank, port, path):
    import torch.distributed as dist

    with process_group(rank, port, WORLD):
        train = dataset()
        m = torch.nn.parallel.DistributedDataParallel(model())
        result = {}
        for name, options in SAMPLERS.items():
            sampler = ShardedSampler(name, train, seed=11, **options)
            assert (sampler.num_replicas, sampler.rank) == (WORLD, rank)
            sampler.refresh(m)
            mine = draw_epochs(sampler, train)
            gathered = [None] * WORLD
            dist.all_gather_object(gathered, mine)
            result[name] = gathered
        if rank == 0:
            with open(path, "wb") as f:
                pickle.dump(result, f)


def mean_score(users, neg):
    with torch.no_grad():
        m = model()
        return float(m(torch.from_numpy(users), torch.from_numpy(neg)).mean())


def frequencies(neg):
    return np.bincount(neg.ravel(), minlength=N_ITEMS) / neg.size


def test_two_ranks_cover_every_user_once_and_draw_like_one_process(tmp_path, monkeypatch):
    path = tmp_path / "result.pkl"
    spawn_ranks(_worker, (str(path),), WORLD, 90, monkeypatch)
    with open(path, "rb") as f:
        result = pickle.load(f)

    train = dataset()
    for name, options in SAMPLERS.items():
        per_rank = result[name]
        single = ShardedSampler(name, train, num_replicas=1, rank=0, seed=11, **options)
        single.refresh(model())
        control = ShardedSampler(name, train, num_replicas=1, rank=0, seed=12, **options)
        control.refresh(model())
        one, other = draw_epochs(single, train), draw_epochs(control, train)
        for epoch in range(EPOCHS):
            users = np.concatenate([per_rank[r][epoch][0] for r in range(WORLD)])
            assert np.array_equal(np.sort(users), np.arange(N_USERS))  # each user once
            for r in range(WORLD):
                assert np.all(per_rank[r][epoch][0] % WORLD == r)
            pair_users = np.concatenate([per_rank[r][epoch][1] for r in range(WORLD)])
            neg = np.concatenate([per_rank[r][epoch][2] for r in range(WORLD)])
            assert neg.shape == (train.nnz, K)
            # Never a positive.
            assert not train.contains(np.repeat(pair_users, K), neg.ravel()).any()
            # The same distribution as one process: per-item frequencies as
            # close as two single-process runs with different seeds are.
            f_sharded = frequencies(neg)
            f_one, f_other = frequencies(one[epoch][2]), frequencies(other[epoch][2])
            noise = np.abs(f_one - f_other).sum()
            assert np.abs(f_sharded - f_one).sum() < 2 * noise + 0.02, name
            # And as hard under the model, user by user (a rank that scored
            # with another user's vector would draw much easier negatives).
            s_sharded = mean_score(pair_users, neg)
            s_one, s_other = mean_score(*one[epoch][1:]), mean_score(*other[epoch][1:])
            assert abs(s_sharded - s_one) < 2 * abs(s_one - s_other) + 0.1, name
