"""Hostile input at the public entries: every refusal is a gnno error naming
the value, a state never loads into a sampler of other data, samplers and
errors pickle, files with odd line endings or huge ids parse right or fail
clearly, and the two evaluation protocols break ties the same way."""

from __future__ import annotations

import math
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import gnno
from gnno import evaluate_full, evaluate_sampled, kernels
from gnno.datasets import load_csv, load_lightgcn, load_ncf
from gnno.exceptions import (
    DataFormatError,
    EmptyInputError,
    GnnoError,
    IdOutOfRangeError,
    NonFiniteError,
    NotInShardError,
    SaturatedUserError,
    ShapeError,
)
from gnno.samplers import SAMPLERS, ShardedSampler, build_sampler

ALL = list(SAMPLERS)


def make_train(seed=0, n_users=40, n_items=50, per_user=6):
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    return gnno.Interactions.from_pairs(users, items, n_users=n_users, n_items=n_items)


def vectors(train, seed=1, dim=6):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(train.n_users, dim)).astype(np.float32),
        rng.normal(size=(train.n_items, dim)).astype(np.float32),
    )


def ready(sampler, train):
    if sampler.needs_scores:
        sampler.refresh_embeddings(*vectors(train))
    return sampler


def all_samplers(train, seed=3):
    """One of each sampler (and a sharded one) on ``train``, ready to draw."""
    out = {name: ready(build_sampler(name, train, seed=seed), train) for name in ALL}
    sharded = ShardedSampler("gain", train, num_replicas=2, rank=1, seed=seed, memory=4)
    sharded.refresh_embeddings(*vectors(train))
    out["sharded"] = sharded
    return out


def users_of(sampler):
    if isinstance(sampler, ShardedSampler):
        return np.repeat(sampler.local_users, 2)
    return np.repeat(np.arange(sampler.train.n_users), 2)


# -- 1: a state carries its data's fingerprint -----------------------------------


def test_fingerprint_identifies_the_data():
    a = make_train(seed=0)
    b = make_train(seed=0)
    c = make_train(seed=1)  # same shape, other interactions
    assert a.fingerprint == b.fingerprint
    assert a.shape == c.shape and a.fingerprint != c.fingerprint
    assert a.fingerprint is a.fingerprint  # cached
    assert pickle.loads(pickle.dumps(a)).fingerprint == a.fingerprint
    # Same pairs, other declared size: other data.
    d = gnno.Interactions.from_pairs(*a.to_pairs(), n_users=a.n_users, n_items=a.n_items + 1)
    assert d.fingerprint != a.fingerprint


@pytest.mark.parametrize("name", [*ALL, "sharded"])
def test_state_of_other_data_with_the_same_shape_is_refused(name):
    mine, theirs = make_train(seed=0), make_train(seed=1)
    a = all_samplers(mine)[name]
    state = all_samplers(theirs)[name].state_dict()
    before = a.state_dict()
    with pytest.raises(GnnoError, match="fingerprint") as info:
        a.load_state_dict(state)
    # The message names both fingerprints.
    whole = name == "sharded"
    mine_fp = mine.fingerprint if whole else a.train.fingerprint
    theirs_fp = state["fingerprint"]
    assert mine_fp in str(info.value) and theirs_fp in str(info.value)
    # Nothing changed: the sampler draws on as before.
    after = a.state_dict()
    assert after["fingerprint"] == before["fingerprint"]
    assert (after.get("calls"), after.get("epoch")) == (before.get("calls"), before.get("epoch"))


@pytest.mark.parametrize("name", ALL)
def test_garbled_state_dicts_are_gnno_errors(name):
    train = make_train()
    s = ready(build_sampler(name, train), train)
    good = s.state_dict()
    cases = {
        "calls='x'": dict(good, calls="x"),
        "seed=-1": dict(good, seed=-1),
        "epoch=2**64": dict(good, epoch=2**64),
        "seed=[1]": dict(good, seed=[1]),
        "calls=1.5": dict(good, calls=1.5),
        "shape=3": dict(good, shape=3),
        "not a dict": [("seed", 1)],
    }
    for key in ("seed", "epoch", "calls", "fingerprint", "shape", "sampler"):
        cases[f"missing {key}"] = {k: v for k, v in good.items() if k != key}
    if s.needs_scores:
        cases["memory='x'"] = dict(good, memory="x")
        cases["memory items wrong type"] = dict(good, memory=dict(good["memory"], items="x"))
        cases["memory without items"] = {
            **good,
            "memory": {k: v for k, v in good["memory"].items() if k != "items"},
        }
        cases["embeddings=None"] = dict(good, embeddings=None)
    for what, state in cases.items():
        with pytest.raises(GnnoError):
            s.load_state_dict(state)
        assert s.state_dict()["calls"] == good["calls"], what
    # The sampler still works and still loads its own state.
    s.load_state_dict(good)
    s.sample([0, 1], 2)


def test_popularity_state_with_another_exponent_is_refused():
    train = make_train()
    a = gnno.PopularitySampler(train, popularity_beta=0.5)
    b = gnno.PopularitySampler(train, popularity_beta=1.0)
    with pytest.raises(GnnoError, match=r"popularity_beta=1\.0.*popularity_beta=0\.5"):
        a.load_state_dict(b.state_dict())


# -- 4: line endings and id width in files -------------------------------------


def test_lightgcn_with_cr_only_line_endings(tmp_path):
    (tmp_path / "train.txt").write_bytes(b"0 0 1 2\r1 3\r2 4 5\r")
    (tmp_path / "test.txt").write_bytes(b"0 3\r\n1 0\r\n")
    train, test = load_lightgcn(tmp_path)
    assert train.n_users == 3 and train.nnz == 6
    assert train.row(0).tolist() == [0, 1, 2]
    assert train.row(1).tolist() == [3]
    assert train.row(2).tolist() == [4, 5]
    assert test.row(1).tolist() == [0]


def test_csv_with_cr_only_line_endings(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(b"user,item,rating\r7,a,4\r7,b,5\r9,a,3\r")
    log = load_csv(path, "user", "item", rating_col="rating")
    assert len(log.users) == 3
    assert log.ratings.tolist() == [4.0, 5.0, 3.0]
    assert log.user_ids.tolist() == [7, 9]


def test_ncf_with_cr_only_line_endings(tmp_path):
    prefix = tmp_path / "d"
    Path(f"{prefix}.train.rating").write_bytes(b"0\t1\t5\t0\r1\t2\t4\t0\r")
    Path(f"{prefix}.test.rating").write_bytes(b"0\t3\t5\t0\r1\t0\t4\t0\r")
    Path(f"{prefix}.test.negative").write_bytes(b"(0,3)\t2\t4\r(1,0)\t3\t4\r")
    data = load_ncf(prefix)
    assert data.train.nnz == 2 and data.negatives.tolist() == [[2, 4], [3, 4]]


@pytest.mark.parametrize("big", [2**31, 4_000_000_000, 2**63 - 1])
def test_ids_beyond_the_id_width_in_files_name_file_and_line(tmp_path, big):
    (tmp_path / "train.txt").write_text(f"0 1 2\n1 {big}\n")
    (tmp_path / "test.txt").write_text("0 3\n")
    with pytest.raises(DataFormatError, match=r"train\.txt line 2") as info:
        load_lightgcn(tmp_path)
    assert str(big) in str(info.value)
    (tmp_path / "train.txt").write_text(f"0 1 2\n{big} 1\n")
    with pytest.raises(DataFormatError, match=r"train\.txt line 2"):
        load_lightgcn(tmp_path)
    prefix = tmp_path / "d"
    Path(f"{prefix}.train.rating").write_text(f"0\t1\t5\t0\n{big}\t2\t4\t0\n")
    Path(f"{prefix}.test.rating").write_text("0\t3\t5\t0\n")
    Path(f"{prefix}.test.negative").write_text("(0,3)\t2\t4\n")
    with pytest.raises(DataFormatError, match=r"train\.rating line 2"):
        load_ncf(prefix)


def test_the_largest_id_is_accepted_in_memory_and_beyond_it_is_refused():
    with pytest.raises(IdOutOfRangeError, match=str(2**31)):
        gnno.Interactions.from_pairs([0], [2**31])
    with pytest.raises(IdOutOfRangeError, match=str(2**63 - 1)):
        gnno.Interactions.from_pairs([2**63 - 1], [0])
    with pytest.raises(IdOutOfRangeError):
        gnno.Interactions.from_pairs(np.array([2**64 - 1], np.uint64), [0])
    with pytest.raises(ShapeError, match="n_items"):
        gnno.Interactions.from_pairs([0], [0], n_items=2**31 + 1)


# -- 8: pickling ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls",
    [
        GnnoError,
        IdOutOfRangeError,
        NotInShardError,
        ShapeError,
        NonFiniteError,
        EmptyInputError,
        SaturatedUserError,
        DataFormatError,
    ],
)
def test_every_gnno_error_pickles(cls):
    err = cls("user id 7 out of range")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and str(back) == str(err)
    assert isinstance(back, ValueError)


def test_errors_raised_by_the_core_pickle():
    train = make_train()
    with pytest.raises(IdOutOfRangeError) as info:
        gnno.UniformSampler(train).sample([train.n_users], 1)
    back = pickle.loads(pickle.dumps(info.value))
    assert type(back) is IdOutOfRangeError and str(back) == str(info.value)


@pytest.mark.parametrize("name", [*ALL, "sharded"])
def test_pickled_sampler_draws_what_the_original_draws(name):
    train = make_train()
    s = all_samplers(train)[name]
    s.set_epoch(2)
    users = users_of(s)
    s.sample(users, 2)  # move the stream
    copy = pickle.loads(pickle.dumps(s))
    assert type(copy) is type(s)
    for k in (1, 3):
        assert np.array_equal(copy.sample(users, k), s.sample(users, k))
    positives = np.array(
        [s.train.row(u)[0] for u in (s.to_local(users) if name == "sharded" else users)]
    )
    assert np.array_equal(
        copy.sample_for_pairs(users, positives, 2), s.sample_for_pairs(users, positives, 2)
    )
    copy.set_epoch(5)
    s.set_epoch(5)
    assert np.array_equal(copy.sample(users, 2), s.sample(users, 2))


class ScoreTable(torch.nn.Module):
    """A generic model (no vectors): ``score = table[user, item]``."""

    def __init__(self, table):
        super().__init__()
        self.table = torch.nn.Parameter(torch.as_tensor(table, dtype=torch.float32))

    def forward(self, users, items):
        return self.table[users, items]


def test_pickled_sampler_bound_to_a_generic_model_keeps_it():
    train = make_train()
    uv, iv = vectors(train)
    s = gnno.GainSampler(train, memory=4, fresh=6, seed=1)
    s.refresh(ScoreTable(uv @ iv.T))
    assert not s.draws_from_snapshot
    copy = pickle.loads(pickle.dumps(s))
    users = np.arange(train.n_users)
    assert np.array_equal(copy.sample(users, 2), s.sample(users, 2))


@pytest.mark.parametrize("name", ["dns", "srns", "gain"])
def test_scores_that_are_not_finite_are_refused_naming_where(name):
    train = make_train()
    uv, iv = vectors(train)
    s = build_sampler(name, train, seed=1)
    before = s.state_dict()
    # Finite vectors whose scores overflow float32 (norms 4e19 each).
    big_u, big_i = uv.copy(), iv.copy()
    big_u[7] = 2e19
    big_i[3] = 2e19
    with pytest.raises(NonFiniteError, match="user 7.*item 3.*scale the vectors down"):
        s.refresh_embeddings(big_u, big_i)
    # Values beyond float32 in a float64 input: named, with no numpy warning.
    wide = uv.astype(np.float64)
    wide[2, 1] = 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(NonFiniteError, match=r"user_vectors.*\(2, 1\)"):
            s.refresh_embeddings(wide, iv)
    # A generic model that scores one pair NaN: the pair is named.
    table = uv @ iv.T
    u0, i0 = 5, int(train.row(5)[0])
    table[u0, i0] = np.nan
    with pytest.raises(NonFiniteError, match=f"user {u0} and item {i0}"):
        s.refresh(ScoreTable(table))
    # Nothing changed: the sampler is as it was.
    assert pickle.dumps(s.state_dict()) == pickle.dumps(before)
    # A draw that meets a NaN score of a bound model fails the same way.
    model = ScoreTable(uv @ iv.T)
    s.refresh(model)
    before = s.state_dict()
    with torch.no_grad():
        model.table[u0] = float("nan")
    with pytest.raises(NonFiniteError, match=f"user {u0} and item"):
        s.sample_for_pairs([u0], [i0], 2)
    assert pickle.dumps(s.state_dict()) == pickle.dumps(before)


@pytest.mark.parametrize("name", ["dns", "srns", "gain"])
@pytest.mark.parametrize("bound", ["vectors", "generic model"])
def test_a_positive_that_is_not_a_training_item_is_refused(name, bound):
    """Score-based samplers compare candidates with the pair's positive (and
    SRNS reads its score history), so another item is refused, naming it,
    before the stream moves; score-free samplers ignore the positive."""
    train = make_train()
    uv, iv = vectors(train)
    s = build_sampler(name, train, seed=3)
    if bound == "generic model":
        s.refresh(ScoreTable(uv @ iv.T))
    else:
        s.refresh_embeddings(uv, iv)
    u = 7
    own = int(train.row(u)[0])
    other = next(i for i in range(train.n_items) if i not in set(train.row(u).tolist()))
    before = pickle.dumps(s.state_dict())
    with pytest.raises(
        GnnoError, match=rf"positives\[1\] is item {other}, .* user {u} \(users\[1\]\)"
    ):
        s.sample_for_pairs([u, u], [own, other], 2)
    assert pickle.dumps(s.state_dict()) == before
    s.sample_for_pairs([u, u], [own, own], 2)
    for free in ("uniform", "popularity"):
        assert build_sampler(free, train, seed=3).sample_for_pairs([u], [other], 2).shape == (1, 2)


class _Pairs(torch.utils.data.Dataset):
    """A dataset whose items are drawn by a sampler inside it."""

    def __init__(self, sampler, n):
        self.sampler = sampler
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.as_tensor(self.sampler.sample(np.array([i % 8]), 3)[0])


def test_dataloader_with_spawned_workers_uses_a_pickled_sampler():
    train = make_train()
    sampler = gnno.GainSampler(train, memory=4, fresh=6, seed=2)
    sampler.refresh_embeddings(*vectors(train))
    sampler.sample(np.arange(8), 2)  # move the stream before it is pickled
    loader = torch.utils.data.DataLoader(
        _Pairs(sampler, 4), batch_size=1, num_workers=1, multiprocessing_context="spawn"
    )
    got = [batch[0].numpy() for batch in loader]
    # The worker's copy continues the stream exactly where the original was.
    want = [sampler.sample(np.array([i % 8]), 3)[0] for i in range(4)]
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    for user, negs in enumerate(got):
        assert not train.contains(np.full(3, user % 8), negs).any()


# -- 9: one tie rule ----------------------------------------------------------------------


class Constant(torch.nn.Module):
    """Every score 0: everything ties."""

    def __init__(self, n_users, n_items):
        super().__init__()
        self.u = torch.nn.Parameter(torch.zeros(n_users, 2))
        self.i = torch.nn.Parameter(torch.zeros(n_items, 2))

    def forward(self, users, items):
        return (self.u[users] * self.i[items]).sum(-1)


class ConstantCallable:
    def __call__(self, users, items):
        return torch.zeros(items.shape)


@pytest.mark.parametrize("model_kind", ["module", "callable"])
def test_a_constant_model_puts_every_target_first_in_both_protocols(model_kind):
    train = make_train(n_users=12, n_items=30, per_user=4)
    rng = np.random.default_rng(5)
    # 1 to 5 test items per user, none of them a training item.
    test_u, test_i = [], []
    for u in range(train.n_users):
        free = np.setdiff1d(np.arange(train.n_items), train.row(u))
        for i in rng.choice(free, int(rng.integers(1, 6)), replace=False):
            test_u.append(u)
            test_i.append(int(i))
    test = gnno.Interactions.from_pairs(test_u, test_i, *train.shape)
    model = Constant(*train.shape) if model_kind == "module" else ConstantCallable()
    ks = (1, 3, 10)
    full = evaluate_full(model, train, test, ks=ks)
    n_test = test.user_counts[test.user_counts > 0]
    for k in ks:
        # Ties favour the targets: a user's test items take the first places.
        assert full[f"hr@{k}"] == 1.0
        assert full[f"ndcg@{k}"] == pytest.approx(1.0)
        assert full[f"recall@{k}"] == pytest.approx(np.mean(np.minimum(n_test, k) / n_test))
        assert full[f"precision@{k}"] == pytest.approx(np.mean(np.minimum(n_test, k) / k))
    # hr@1 = 1 and recall@k is full (1.0) once k >= the largest test row.
    assert full["recall@10"] == 1.0
    negatives = rng.integers(0, train.n_items, size=(len(test_u), 20))
    sampled = evaluate_sampled(model, test_u, test_i, negatives, ks=ks)
    assert sampled == {f"{m}@{k}": 1.0 for k in ks for m in ("hr", "ndcg", "recall")}


def test_full_ranking_ties_between_targets_and_others_by_hand():
    # User 0: items 0..4 score [3, 2, 2, 2, 1]; test = {3}; train = {}.
    # Ties favour the target: item 3 ranks second (after item 0).
    table = torch.tensor([[3.0, 2.0, 2.0, 2.0, 1.0]])
    train = gnno.Interactions.from_pairs([], [], n_users=1, n_items=5)
    test = gnno.Interactions.from_pairs([0], [3], n_users=1, n_items=5)
    m = evaluate_full(lambda u, i: table[u, i], train, test, ks=(1, 2))
    assert m["hr@1"] == 0.0 and m["hr@2"] == 1.0
    assert m["ndcg@2"] == pytest.approx(1 / math.log2(3))


# -- 11: raw Python errors become gnno errors ---------------------------------------------


def test_library_edges_raise_gnno_errors_naming_the_value():
    train = make_train()
    values = np.zeros((3, 4), np.float32)
    cases = [
        (lambda: kernels.gumbel_topk(values, 1, seed=-1), "-1"),
        (lambda: kernels.gumbel_topk(values, 1, seed=2**64), str(2**64)),
        (lambda: kernels.sigmoid_expectation([0, 1], [0.5], [[0.2]], seed=-3), "-3"),
        (lambda: kernels.topk(values, 2**62), str(2**62)),
        (lambda: kernels.gumbel_topk(values, 1, temperature=0.0), "temperature"),
        (lambda: gnno.UniformSampler(train).set_epoch(2**64), str(2**64)),
        (lambda: gnno.UniformSampler(train).set_epoch(-1), "-1"),
        (lambda: gnno.UniformSampler(train).sample([0], 2**62), str(2**62)),
        (lambda: gnno.Interactions.from_csr([0, 1], [0], -1, 2), "-1"),
        (lambda: gnno.Interactions.from_csr([0, 1], [0], 1, -2), "-2"),
        (lambda: gnno.Interactions.from_csr([0, 5, 3], [0, 1, 2], 2, 10), "indptr"),
        (lambda: gnno.Interactions.from_csr([0, 1, 2], [0, 1, 2], 2, 10), "indptr"),
        (lambda: gnno.Interactions.from_csr([0, 1], [11], 1, 10), "11"),
        (lambda: gnno.set_num_threads(-1), "-1"),
        (lambda: gnno.bpr_loss(torch.zeros(0), torch.zeros(0)), "(0,)"),
        (lambda: gnno.bpr_loss(torch.zeros(2), torch.zeros(2, 0)), "(2, 0)"),
        (lambda: gnno.group_hinge_loss(torch.zeros(2, 0), torch.zeros(2, 3)), "(2, 0)"),
        (lambda: gnno.group_hinge_loss(torch.zeros(2), torch.zeros(2), margin=-5), "-5"),
        (lambda: gnno.GainSampler(train, gain_positives=2**62), str(2**62)),
        (lambda: gnno.GainSampler(train, memory=2**62), str(2**62)),
        (lambda: gnno.SRNSSampler(train, history=2**40), str(2**40)),
        (lambda: gnno.DNSSampler(train, fresh_candidates=2**62), str(2**62)),
        (lambda: gnno.PopularitySampler(train, popularity_beta=-1), "-1"),
        (lambda: gnno.GainSampler(train, criterion="best"), "best"),
        (lambda: gnno.GainSampler(train, retain="all"), "all"),
        (lambda: build_sampler("gain", train, beta=2.0), "gain_beta"),
        (lambda: build_sampler("popularity", train, beta=2.0), "popularity_beta"),
        (lambda: build_sampler("srns", train, memory=4, s1=5), "s1"),
    ]
    for k, (call, needle) in enumerate(cases):
        try:
            call()
        except GnnoError as err:
            assert needle in str(err), (k, needle, str(err))
        else:
            pytest.fail(f"case {k} (expecting {needle!r}) raised nothing")


def test_bpr_loss_is_finite_on_nonempty_input():
    loss = gnno.bpr_loss(torch.zeros(3), torch.zeros(3, 2))
    assert torch.isfinite(loss) and loss.item() == pytest.approx(math.log(2))
