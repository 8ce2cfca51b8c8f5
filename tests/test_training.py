"""Trainer: learning, batching, sampler calls, early stopping, logs, exact resume."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from gnno import GMF, Interactions, Trainer, TrainResult, evaluate_full, train
from gnno.exceptions import GnnoError, NonFiniteError
from gnno.samplers import UniformSampler
from gnno.training import CHECKPOINT_NAME

N_USERS, N_ITEMS = 40, 30


def block_data(seed=0):
    """Two user communities, each liking its own half of the items; a random
    part of each user's liked items is training, the rest test."""
    rng = np.random.default_rng(seed)
    train_u, train_i, test_u, test_i = [], [], [], []
    for u in range(N_USERS):
        half = np.arange(N_ITEMS // 2) + (N_ITEMS // 2) * (u % 2)
        liked = rng.choice(half, 10, replace=False)
        train_u += [u] * 7
        train_i += liked[:7].tolist()
        test_u += [u] * 3
        test_i += liked[7:].tolist()
    train_data = Interactions.from_pairs(train_u, train_i, N_USERS, N_ITEMS)
    test_data = Interactions.from_pairs(test_u, test_i, N_USERS, N_ITEMS)
    return train_data, test_data


def make(loss="bpr", seed=0, sampler_cls=UniformSampler, sparse=False, **options):
    train_data, test_data = block_data()
    torch.manual_seed(seed)
    model = GMF(N_USERS, N_ITEMS, dim=8, sparse=sparse)
    sampler = sampler_cls(train_data, seed=seed)
    options.setdefault("progress", False)
    options.setdefault("lr", 0.05)
    options.setdefault("batch_size", 32)
    options.setdefault("evaluator", lambda m: evaluate_full(m, train_data, test_data, ks=(5,)))
    trainer = Trainer(model, train_data, sampler, loss=loss, seed=seed, **options)
    return trainer, model, train_data, test_data


@pytest.mark.parametrize(
    ("loss", "options"),
    [
        ("bpr", {}),
        ("group", {}),
        ("bpr", {"sparse": True, "l2": 1e-3, "negatives_per_pair": 4}),
        ("softmax", {"sparse": True, "temperature": 0.5, "negatives_per_pair": 4}),
        ("group", {"sparse": True, "l2": 1e-3}),
        ("group_softmax", {"sparse": True, "temperature": 0.5, "negatives_per_user": 12}),
    ],
)
def test_training_learns(loss, options):
    trainer, model, train_data, test_data = make(loss, epochs=6, positives_per_group=4, **options)
    before = evaluate_full(model, train_data, test_data, ks=(5,))["recall@5"]
    result = trainer.fit()
    assert isinstance(result, TrainResult)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert result.best_metrics["recall@5"] > before + 0.2
    assert result.metric == "recall@5"  # the evaluator's first metric
    # The model ends holding the best epoch's state.
    assert evaluate_full(model, train_data, test_data, ks=(5,)) == result.best_metrics


class RecordingSampler(UniformSampler):
    def __init__(self, train, seed=0):
        super().__init__(train, seed=seed)
        self.events = []

    def set_epoch(self, epoch):
        self.events.append(("epoch", epoch))
        super().set_epoch(epoch)

    def refresh(self, model=None):
        assert isinstance(model, GMF) and not torch.is_grad_enabled()
        self.events.append(("refresh",))

    def sample(self, users, k=1):
        self.events.append(("sample", len(users), k))
        return super().sample(users, k)

    def sample_for_pairs(self, users, positives, k=1):
        self.events.append(("pairs", len(users), k))
        return super().sample_for_pairs(users, positives, k)


def test_bpr_calls_the_sampler_per_batch_and_refreshes():
    trainer, *_ = make(
        "bpr", sampler_cls=RecordingSampler, epochs=2, refresh_every=3, negatives_per_pair=2
    )
    trainer.fit()
    events = trainer.sampler.events
    n_pairs = N_USERS * 7
    per_epoch = [("epoch", 0), ("refresh",)]
    steps = -(-n_pairs // 32)
    for s in range(steps):
        if s and s % 3 == 0:
            per_epoch.append(("refresh",))
        per_epoch.append(("pairs", min(32, n_pairs - 32 * s), 2))
    second = [("epoch", 1)] + per_epoch[1:]
    assert events == per_epoch + second


def test_group_loss_draws_per_group_of_users():
    trainer, *_ = make(
        "group",
        sampler_cls=RecordingSampler,
        epochs=1,
        positives_per_group=3,
        negatives_per_user=5,
        batch_size=16,
    )
    trainer.fit()
    draws = [e for e in trainer.sampler.events if e[0] == "sample"]
    # 7 positives per user -> groups of 3, 3, 1 -> 120 groups -> 8 batches of 16 rows.
    assert [e[1] for e in draws] == [16] * 7 + [8]
    assert all(e[2] == 5 for e in draws)


def test_group_batches_cover_every_pair_once():
    trainer, _, train_data, _ = make("group", epochs=1, positives_per_group=3, batch_size=7)
    seen = []
    sizes = []
    for users, grid, mask in trainer.plan.batches(epoch=0):
        mask = np.ones_like(grid, dtype=bool) if mask is None else mask
        for u, row, m in zip(users, grid, mask, strict=True):
            assert m[0]  # groups are left-aligned
            sizes.append(int(m.sum()))
            seen += [(int(u), int(i)) for i in row[m]]
    assert sorted(seen) == sorted(zip(*(a.tolist() for a in train_data.to_pairs()), strict=True))
    assert max(sizes) == 3
    # Another epoch groups differently, the same epoch the same way.
    first = [g.tolist() for _, g, _ in trainer.plan.batches(epoch=0)]
    again = [g.tolist() for _, g, _ in trainer.plan.batches(epoch=0)]
    other = [g.tolist() for _, g, _ in trainer.plan.batches(epoch=1)]
    assert first == again != other


def test_bpr_batches_are_a_seeded_permutation_per_epoch():
    trainer, _, train_data, _ = make("bpr", epochs=1)
    pairs = sorted(zip(*(a.tolist() for a in train_data.to_pairs()), strict=True))

    def epoch_pairs(e):
        return [
            (int(u), int(i))
            for us, its, _ in trainer.plan.batches(e)
            for u, i in zip(us, its, strict=True)
        ]

    assert sorted(epoch_pairs(0)) == pairs
    assert epoch_pairs(0) == epoch_pairs(0) != epoch_pairs(1)


def test_early_stopping_keeps_the_best_state():
    values = iter([0.1, 0.5, 0.3, 0.2, 0.9, 0.9])
    snapshots = []

    def evaluator(model):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"score": next(values), "other": 0.0}

    trainer, model, *_ = make("bpr", epochs=6, evaluator=evaluator, patience=2)
    result = trainer.fit()
    assert result.epochs_run == 4 and result.stopped_early
    assert result.best_epoch == 1 and result.best_metrics["score"] == 0.5
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, snapshots[1][name]), name


def test_metric_option_and_unknown_metric():
    trainer, *_ = make("bpr", epochs=2, metric="ndcg@5")
    assert trainer.fit().metric == "ndcg@5"
    trainer, *_ = make("bpr", epochs=1, metric="auc")
    with pytest.raises(GnnoError, match="metric 'auc'"):
        trainer.fit()


def test_selection_without_evaluator_or_on_nan_is_an_error():
    for option in ({"patience": 3}, {"metric": "ndcg@5"}):
        with pytest.raises(GnnoError, match=f"{next(iter(option))} selects epochs"):
            make("bpr", epochs=1, evaluator=None, **option)
    values = iter([0.2, float("nan")])
    trainer, *_ = make("bpr", epochs=3, evaluator=lambda m: {"score": next(values)})
    with pytest.raises(NonFiniteError, match="score=nan after epoch 2"):
        trainer.fit()


def test_log_lines_and_false_negative_rate(tmp_path):
    train_data, _ = block_data()
    users, items = np.meshgrid(np.arange(N_USERS), np.arange(N_ITEMS), indexing="ij")
    everything = Interactions.from_pairs(users.ravel(), items.ravel(), N_USERS, N_ITEMS)
    log = tmp_path / "sub" / "log.jsonl"
    trainer, *_ = make("bpr", epochs=2, log_path=log, ground_truth=everything)
    trainer.fit()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1]
    for r in lines:
        # Every negative is a liked item under this ground truth.
        assert r["false_negative_rate"] == 1.0
        assert set(r["seconds"]) >= {"sampling", "training", "evaluation"}
        assert all(v >= 0 for v in r["seconds"].values())
        assert "recall@5" in r["metrics"] and np.isfinite(r["loss"])
    # Negatives are never training positives.
    trainer, *_ = make("group", epochs=1, ground_truth=train_data)
    assert trainer.fit().history[0]["false_negative_rate"] == 0.0


def test_no_evaluator_keeps_the_last_state():
    trainer, model, *_ = make("bpr", epochs=2, evaluator=None)
    result = trainer.fit()
    assert result.best_epoch is None and result.best_metrics == {}
    assert result.history[-1]["metrics"] == {}


def _strip_times(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


@pytest.mark.parametrize(
    ("loss", "sparse"), [("bpr", False), ("group", False), ("softmax", True), ("group", True)]
)
def test_resume_continues_exactly(tmp_path, loss, sparse):
    options = {"positives_per_group": 3, "refresh_every": 4, "sparse": sparse}
    if sparse:
        options.update(l2=1e-3, negatives_per_pair=3)
    straight, model_a, *_ = make(loss, epochs=4, checkpoint_dir=tmp_path / "a", **options)
    res_a = straight.fit()

    first, _, *_ = make(loss, epochs=2, checkpoint_dir=tmp_path / "b", **options)
    first.fit()
    torch.manual_seed(12345)  # the resumed run must not depend on the global RNG
    resumed, model_b, *_ = make(loss, seed=0, epochs=4, checkpoint_dir=tmp_path / "b", **options)
    res_b = resumed.fit(resume=True)

    assert _strip_times(res_a.history) == _strip_times(res_b.history)
    assert res_a.best_epoch == res_b.best_epoch and res_a.best_metrics == res_b.best_metrics
    for name, tensor in model_a.state_dict().items():
        assert torch.equal(tensor, model_b.state_dict()[name]), name
    # The last (not the best) state is what the checkpoints hold.
    ck_a = torch.load(tmp_path / "a" / CHECKPOINT_NAME, weights_only=False)
    ck_b = torch.load(tmp_path / "b" / CHECKPOINT_NAME, weights_only=False)
    for name, tensor in ck_a["model"].items():
        assert torch.equal(tensor, ck_b["model"][name]), name
    assert ck_a["sampler"] == ck_b["sampler"]


def test_resume_refuses_other_settings(tmp_path):
    first, *_ = make("bpr", epochs=1, checkpoint_dir=tmp_path)
    first.fit()
    other, *_ = make("bpr", epochs=2, checkpoint_dir=tmp_path, lr=0.01)
    with pytest.raises(GnnoError, match="lr=0.05"):
        other.fit(resume=True)
    missing, *_ = make("bpr", epochs=2, checkpoint_dir=tmp_path / "none")
    with pytest.raises(GnnoError, match="no checkpoint"):
        missing.fit(resume=True)


def test_function_form():
    train_data, test_data = block_data()
    torch.manual_seed(0)
    model = GMF(N_USERS, N_ITEMS, 8)
    result = train(model, train_data, UniformSampler(train_data), epochs=1, progress=False)
    assert result.epochs_run == 1 and len(result.history) == 1


def test_argument_checks():
    train_data, _ = block_data()
    model = GMF(N_USERS, N_ITEMS, 8)
    sampler = UniformSampler(train_data)
    with pytest.raises(GnnoError, match="loss"):
        Trainer(model, train_data, sampler, loss="hinge")
    with pytest.raises(GnnoError, match="batch_size"):
        Trainer(model, train_data, sampler, batch_size=0)
    with pytest.raises(GnnoError, match="shape"):
        small = Interactions.from_pairs([0], [0], 2, 2)
        Trainer(model, train_data, UniformSampler(small))
    with pytest.raises(GnnoError, match="model"):
        Trainer(lambda u, i: u, train_data, sampler)


def test_non_finite_loss_is_an_error():
    trainer, model, *_ = make("bpr", epochs=1)
    with torch.no_grad():
        model.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteError, match="loss"):
        trainer.fit()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("loss", ["bpr", "group"])
def test_cuda_training_and_resume(tmp_path, loss):
    straight, model_a, *_ = make(loss, epochs=3, device="cuda", checkpoint_dir=tmp_path / "a")
    straight.fit()
    assert next(model_a.parameters()).is_cuda
    first, *_ = make(loss, epochs=1, device="cuda", checkpoint_dir=tmp_path / "b")
    first.fit()
    resumed, model_b, *_ = make(loss, epochs=3, device="cuda", checkpoint_dir=tmp_path / "b")
    resumed.fit(resume=True)
    for name, tensor in model_a.state_dict().items():
        torch.testing.assert_close(tensor, model_b.state_dict()[name], rtol=0, atol=1e-6)


def test_on_epoch_end_sees_each_epoch_and_can_extend_the_log():
    import gnno

    train_data = gnno.Interactions.from_pairs([0, 0, 1, 1, 2], [0, 1, 1, 2, 3], n_items=6)
    seen = []

    def hook(trainer, record):
        seen.append(trainer.epoch)
        record["memory_items"] = int((trainer.sampler.diagnostics()["items"] >= 0).sum())

    model = gnno.GMF(3, 6, dim=4)
    sampler = gnno.GainSampler(train_data, memory=2, fresh=2)
    result = gnno.Trainer(
        model, train_data, sampler, epochs=3, progress=False, on_epoch_end=hook
    ).fit()
    assert seen == [1, 2, 3]
    assert all("memory_items" in h for h in result.history)


def test_sparse_steps_touch_only_the_batch_rows():
    trainer, model, train_data, _ = make("bpr", epochs=1, sparse=True, batch_size=4, l2=1e-2)
    kinds = [type(o).__name__ for o in trainer.optimizer.optimizers]
    assert kinds == ["RowAdam", "Adam"]
    before = model.item_embedding.weight.detach().clone()
    users_before = model.user_embedding.weight.detach().clone()
    batch = next(trainer._batches_with_negatives(0, 1))
    trainer._step(*batch.tensors)
    users, items = (
        batch.users,
        np.concatenate([batch.tensors[1].numpy()[:, None], batch.negatives], 1),
    )
    changed_items = np.flatnonzero((model.item_embedding.weight != before).any(1).numpy())
    changed_users = np.flatnonzero((model.user_embedding.weight != users_before).any(1).numpy())
    assert set(changed_items) == set(np.unique(items))
    assert set(changed_users) == set(np.unique(users))


def test_weight_decay_is_refused_with_sparse_embeddings():
    with pytest.raises(GnnoError, match="weight_decay"):
        make("bpr", sparse=True, weight_decay=1e-4)


def test_refuses_samplers_and_models_that_cannot_train_exactly():
    train_data, _ = block_data()
    model = GMF(N_USERS, N_ITEMS, 8)

    class NoState:
        def sample(self, users, k=1): ...
        def sample_for_pairs(self, users, positives, k=1): ...
        def set_epoch(self, epoch): ...
        def refresh(self, model=None): ...
        def state_dict(self): ...

    with pytest.raises(GnnoError, match="load_state_dict"):
        Trainer(model, train_data, NoState())
    # Same shape, other interactions: its negatives could be train's positives.
    other, _ = block_data(seed=1)
    with pytest.raises(GnnoError, match=r"other data than train: it lacks \d+ .*user \d+, item"):
        Trainer(model, train_data, UniformSampler(other))
    # More than train (items kept out of the negatives) is accepted.
    users, items = train_data.to_pairs()
    more = Interactions.from_pairs(
        np.concatenate([users, other.to_pairs()[0]]),
        np.concatenate([items, other.to_pairs()[1]]),
        N_USERS,
        N_ITEMS,
    )
    Trainer(model, train_data, UniformSampler(more))
    with pytest.raises(GnnoError, match="n_items=10"):
        Trainer(GMF(N_USERS, 10, 8), train_data, UniformSampler(train_data))
    with pytest.raises(GnnoError, match="margin"):
        Trainer(model, train_data, UniformSampler(train_data), margin=-5)
    with pytest.raises(GnnoError, match="temperature"):
        Trainer(model, train_data, UniformSampler(train_data), temperature=0)


def test_resume_refuses_other_data_and_other_versions(tmp_path):
    first, *_ = make("bpr", epochs=1, checkpoint_dir=tmp_path)
    first.fit()
    other, _ = block_data(seed=1)
    model = GMF(N_USERS, N_ITEMS, 8)
    moved = Trainer(
        model,
        other,
        UniformSampler(other),
        lr=0.05,
        batch_size=32,
        epochs=2,
        progress=False,
        checkpoint_dir=tmp_path,
        evaluator=lambda m: {"x": 0.0},
        metric="recall@5",
    )
    with pytest.raises(GnnoError, match="other data"):
        moved.fit(resume=True)
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=False)
    again, *_ = make("bpr", epochs=2, checkpoint_dir=tmp_path)
    for bad, needle in (
        ({**state, "version": 1}, "version 1"),
        ({**state, "format": "x"}, "not a gnno training checkpoint"),
        ({k: v for k, v in state.items() if k != "history"}, "damaged"),
        ([1, 2], "not a gnno training checkpoint"),
    ):
        torch.save(bad, tmp_path / "bad.pt")
        with pytest.raises(GnnoError, match=needle):
            again.fit(resume=tmp_path / "bad.pt")


def _damaged(state, change):
    bad = copy.deepcopy(state)
    change(bad)
    return bad


def test_a_damaged_checkpoint_is_refused_and_leaves_the_trainer_as_it_was(tmp_path):
    """Each damage is named before anything runs (a bad history or best
    state once failed only after training, in the summary or at restore),
    and the refusing trainer's model, optimizer and sampler are unchanged:
    it then resumes the intact checkpoint exactly like a fresh trainer."""
    first, *_ = make("bpr", epochs=2, checkpoint_dir=tmp_path / "run")
    first.fit()
    state = torch.load(tmp_path / "run" / CHECKPOINT_NAME, weights_only=False)
    item_rows = state["best"]["state"]["item_embedding.weight"].shape[0]

    def set_key(key, value):
        return lambda s: s.__setitem__(key, value)

    damages = [
        (set_key("epoch", -1), "epoch is -1"),
        (lambda s: s["history"].pop(), r"1 epoch record\(s\) for 2 epoch"),
        (lambda s: s["history"][1].pop("seconds"), r"history\[1\] has no seconds"),
        (lambda s: s["history"][0].__setitem__("epoch", 5), r"history\[0\] is for epoch 5"),
        (lambda s: s["rng"].__setitem__("torch", torch.zeros(3)), "RNG state is damaged"),
        (set_key("rng", {}), "no 'torch' state"),
        (
            lambda s: s["best"]["state"].__setitem__("item_embedding.weight", torch.zeros(2, 8)),
            rf"item_embedding.weight is \(2, 8\), the model's \({item_rows}, 8\)",
        ),
        (lambda s: s["best"].__setitem__("state", None), "all present or all absent"),
        # Refused by the sampler after the model and optimizer were loaded.
        (lambda s: s["sampler"].__setitem__("fingerprint", "x"), "sampler"),
    ]
    trainer, model, *_ = make("bpr", epochs=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sampler_before = copy.deepcopy(trainer.sampler.state_dict())
    for change, needle in damages:
        torch.save(_damaged(state, change), tmp_path / "bad.pt")
        with pytest.raises(GnnoError, match=needle):
            trainer.fit(resume=tmp_path / "bad.pt")
        assert trainer.epoch == 0 and trainer.history == []
        for name, value in model.state_dict().items():
            assert torch.equal(value, before[name]), name
        assert trainer.optimizer.state_dict() == make("bpr")[0].optimizer.state_dict()
        assert json.dumps(trainer.sampler.state_dict(), default=str) == json.dumps(
            sampler_before, default=str
        )
    resumed = trainer.fit(resume=tmp_path / "run" / CHECKPOINT_NAME)
    fresh, *_ = make("bpr", epochs=3)
    expected = fresh.fit(resume=tmp_path / "run" / CHECKPOINT_NAME)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in expected.history]
    assert resumed.best_metrics == expected.best_metrics


def _sparse_grad(rows, d, n, seed):
    g = torch.Generator().manual_seed(seed)
    index = torch.randint(0, rows, (n,), generator=g)  # with repeats
    return torch.sparse_coo_tensor(index[None], torch.randn(n, d, generator=g), (rows, d))


@pytest.mark.parametrize("maximize", [False, True])
def test_row_adam_is_sparse_adam(maximize):
    """RowAdam takes SparseAdam's steps (rows with repeated indices summed,
    untouched rows and their moments left alone) and loads its state."""
    from gnno.training.optim import RowAdam

    torch.manual_seed(0)
    start = torch.randn(40, 6)
    a = torch.nn.Parameter(start.clone())
    b = torch.nn.Parameter(start.clone())
    opt_a = torch.optim.SparseAdam([a], lr=0.05, maximize=maximize)
    opt_b = RowAdam([b], lr=0.05, maximize=maximize)
    for step in range(8):
        grad = _sparse_grad(40, 6, 25, step)
        a.grad, b.grad = grad.clone(), grad.clone()
        opt_a.step()
        opt_b.step()
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    untouched = torch.ones(40, dtype=torch.bool)
    for step in range(8):
        untouched[_sparse_grad(40, 6, 25, step)._indices()[0]] = False
    assert torch.equal(b.detach()[untouched], start[untouched])
    assert torch.equal(opt_b.state[b]["exp_avg"][untouched], torch.zeros(int(untouched.sum()), 6))
    # Each loads the other's state and both continue alike.
    c = torch.nn.Parameter(a.detach().clone())
    opt_c = RowAdam([c], lr=0.05, maximize=maximize)
    opt_c.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # not shared tensors
    grad = _sparse_grad(40, 6, 25, 99)
    a.grad, c.grad = grad.clone(), grad.clone()
    opt_a.step()
    opt_c.step()
    torch.testing.assert_close(c, a, rtol=1e-5, atol=1e-6)
    assert opt_c.state[c]["step"] == 9


def test_row_adam_refuses_dense_gradients():
    from gnno.training.optim import RowAdam

    p = torch.nn.Parameter(torch.zeros(3, 2))
    opt = RowAdam([p])
    p.grad = torch.ones(3, 2)
    with pytest.raises(GnnoError, match="sparse gradients"):
        opt.step()
