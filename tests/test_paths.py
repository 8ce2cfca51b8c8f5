"""The two scoring paths and exact resume, for every sampler.

A score-based sampler scores a dot-product model (``user_vectors()`` /
``item_vectors()``) in Rust from a copy of its vectors, and any other model
by calling it. Both must draw the same negatives for the same scores. And a
sampler restored from its ``state_dict`` (or a pickle) must draw exactly
what the original draws next.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import gnno
from gnno.samplers import SAMPLERS, ShardedSampler, build_sampler


def make_train(seed=0, n_users=30, n_items=40, per_user=5):
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    return gnno.Interactions.from_pairs(users, items, n_users=n_users, n_items=n_items)


def small_int_vectors(train, seed, dim=4):
    """Vectors of small integers: every dot product is exact in float32, so
    both paths see bit-identical scores."""
    rng = np.random.default_rng(seed)
    uv = rng.integers(-3, 4, size=(train.n_users, dim)).astype(np.float32)
    iv = rng.integers(-3, 4, size=(train.n_items, dim)).astype(np.float32)
    return uv, iv


class Dot(torch.nn.Module):
    def __init__(self, uv, iv):
        super().__init__()
        self.u = torch.nn.Parameter(torch.from_numpy(uv))
        self.i = torch.nn.Parameter(torch.from_numpy(iv))

    def forward(self, users, items):
        return (self.u[users] * self.i[items]).sum(-1)

    def user_vectors(self):
        return self.u

    def item_vectors(self):
        return self.i


class Table(torch.nn.Module):
    """The same scores with no vectors: the generic path."""

    def __init__(self, uv, iv):
        super().__init__()
        self.table = torch.nn.Parameter(torch.from_numpy(uv @ iv.T))

    def forward(self, users, items):
        return self.table[users, items]


# The one-step gain of a candidate outside the memory needs the previous
# refresh's scores, which only the vector path keeps (the generic path uses
# g0 there); with gain_positives=0 both use g0, and every other part of the
# draw (proposal, memory gain, criterion, selection) must agree.
_GAIN = {"memory": 6, "fresh": 8, "gain_positives": 0}
CONFIGS = {
    "dns": ("dns", {}),
    "gain": ("gain", _GAIN),
    "gain-hardness": ("gain", {**_GAIN, "criterion": "hardness", "gain_positives": 32}),
    "gain-score": ("gain", {**_GAIN, "criterion": "score", "gain_positives": 32}),
    "gain-from-memory": ("gain", {**_GAIN, "memory_candidates": 3}),
    "gain-additive": ("gain", {**_GAIN, "criterion": "gain_additive"}),
    "gain-only": ("gain", {**_GAIN, "criterion": "gain_only", "memory_candidates": 4}),
    "gain-softmax-draw": ("gain", {**_GAIN, "draw_temperature": 0.5}),
    "gain-softmax-retain": ("gain", {**_GAIN, "retain": "softmax", "memory_candidates": 2}),
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_generic_model_draws_what_the_vector_path_draws(config):
    name, options = CONFIGS[config]
    train = make_train()
    users = np.repeat(np.arange(train.n_users), 3)
    positives = np.array([train.row(u)[u % 5] for u in users])
    by_vectors = build_sampler(name, train, seed=4, **options)
    by_calls = build_sampler(name, train, seed=4, **options)
    for epoch in range(3):
        uv, iv = small_int_vectors(train, seed=epoch)
        by_vectors.set_epoch(epoch)
        by_calls.set_epoch(epoch)
        by_vectors.refresh(Dot(uv, iv))
        by_calls.refresh(Table(uv, iv))
        assert by_vectors.draws_from_snapshot and not by_calls.draws_from_snapshot
        a = by_vectors.sample_for_pairs(users, positives, 2)
        b = by_calls.sample_for_pairs(users, positives, 2)
        assert np.array_equal(a, b), f"epoch {epoch}"
        assert np.array_equal(by_vectors.sample(users, 1), by_calls.sample(users, 1))
        assert not train.contains(np.repeat(users, 2), a.ravel()).any()
    if hasattr(by_vectors, "diagnostics"):
        da, db = by_vectors.diagnostics(), by_calls.diagnostics()
        assert np.array_equal(da["items"], db["items"])


def _samplers(train):
    out = {name: build_sampler(name, train, seed=5) for name in SAMPLERS}
    out["srns-refresh-only"] = gnno.SRNSSampler(train, memory=4, step_memory=False, seed=5)
    out["gain-popularity"] = gnno.GainSampler(train, memory=4, popularity_beta=0.5, seed=5)
    out["sharded-gain"] = ShardedSampler("gain", train, num_replicas=3, rank=2, seed=5, memory=4)
    out["sharded-uniform"] = ShardedSampler("uniform", train, num_replicas=2, rank=0, seed=5)
    return out


def _run(sampler, train, epochs, model_kind):
    """A little training loop's worth of draws: per epoch a refresh (score
    samplers) and three calls."""
    out = []
    users = (
        np.repeat(sampler.local_users, 2)
        if isinstance(sampler, ShardedSampler)
        else np.repeat(np.arange(train.n_users), 2)
    )
    for epoch in epochs:
        sampler.set_epoch(epoch)
        if sampler.needs_scores:
            uv, iv = small_int_vectors(train, seed=10 + epoch)
            sampler.refresh(Dot(uv, iv) if model_kind == "vectors" else Table(uv, iv))
        for k in (1, 2, 3):
            out.append(sampler.sample(users, k))
    return out


@pytest.mark.parametrize("model_kind", ["vectors", "generic"])
@pytest.mark.parametrize("how", ["state_dict", "pickle"])
def test_exact_resume_with_every_sampler(how, model_kind):
    train = make_train()
    originals = _samplers(train)
    for name, original in originals.items():
        if model_kind == "generic" and name.startswith("srns") and name != "srns-refresh-only":
            continue  # SRNS's per-step memory update needs a dot-product model
        _run(original, train, [0, 1], model_kind)
        if how == "state_dict":
            restored = _samplers(train)[name]
            restored.load_state_dict(original.state_dict())
        else:
            restored = pickle.loads(pickle.dumps(original))
        want = _run(original, train, [1, 2, 3], model_kind)
        got = _run(restored, train, [1, 2, 3], model_kind)
        for k, (a, b) in enumerate(zip(want, got, strict=True)):
            assert np.array_equal(a, b), f"{name}: call {k} after resuming differs"
