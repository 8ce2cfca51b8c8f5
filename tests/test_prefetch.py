"""Drawing negatives ahead of training in a background thread: exact, never
across a refresh, errors propagate, no thread outlives its epoch."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from gnno import GMF, Trainer, build_sampler
from gnno._arrays import staged, to_device
from gnno._prefetch import Prefetcher
from gnno.samplers import GainSampler, UniformSampler
from test_training import N_ITEMS, N_USERS, RecordingSampler, block_data, make


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("gnno-prefetch")]


@pytest.fixture(autouse=True)
def no_thread_left():
    yield
    deadline = time.monotonic() + 2.0
    while prefetch_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert prefetch_threads() == []


# -- the prefetcher itself ------------------------------------------------------


def test_prefetcher_keeps_order_and_ends():
    with Prefetcher(iter(range(100)), depth=3) as p:
        assert list(p) == list(range(100))
        assert next(p, "end") == "end"


def test_prefetcher_runs_at_most_depth_plus_one_ahead():
    made = []

    def source():
        for i in range(50):
            made.append(i)
            yield i

    with Prefetcher(source(), depth=2) as p:
        assert next(p) == 0
        # One taken, two queued, one made and waiting for room; no more.
        deadline = time.monotonic() + 5.0
        while len(made) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert len(made) == 4
    assert len(made) == 4  # closing stopped it


def test_prefetcher_raises_the_producers_error_after_its_items():
    def source():
        yield 1
        yield 2
        raise KeyError("boom")

    with Prefetcher(source(), depth=8) as p:
        assert next(p) == 1 and next(p) == 2
        with pytest.raises(KeyError, match="boom"):
            next(p)


def test_prefetcher_close_stops_a_blocked_producer_and_closes_the_source():
    closed = threading.Event()

    def source():
        try:
            yield from range(10**9)
        finally:
            closed.set()

    p = Prefetcher(source(), depth=1)
    assert next(p) == 0
    p.close()
    assert not p.alive and closed.is_set()
    assert next(p, "end") == "end"
    p.close()  # idempotent


# -- the Trainer ------------------------------------------------------------------


class LinearScorer(torch.nn.Module):
    """A model without user_vectors()/item_vectors(): samplers must call it."""

    def __init__(self):
        super().__init__()
        self.gmf = GMF(N_USERS, N_ITEMS, 8)

    def forward(self, users, items):
        return self.gmf(users, items)


def run(sampler_name, loss, prefetch, model_cls=None, **options):
    train_data, _ = block_data()
    torch.manual_seed(0)
    model = GMF(N_USERS, N_ITEMS, 8) if model_cls is None else model_cls()
    sampler = build_sampler(sampler_name, train_data, seed=3)
    trainer = Trainer(
        model,
        train_data,
        sampler,
        loss=loss,
        epochs=3,
        lr=0.05,
        batch_size=16,
        positives_per_group=3,
        progress=False,
        prefetch=prefetch,
        **options,
    )
    result = trainer.fit()
    history = [{k: v for k, v in h.items() if k != "seconds"} for h in result.history]
    return model.state_dict(), history, sampler.state_dict()


def assert_same_state(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_state(a[key], b[key])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_state(x, y)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b, equal_nan=True)
    else:
        assert a == b


@pytest.mark.parametrize("name", ["uniform", "popularity", "dns", "srns", "gain"])
@pytest.mark.parametrize("loss", ["bpr", "group"])
def test_prefetch_is_bit_identical(name, loss):
    serial = run(name, loss, prefetch=0, refresh_every=5)
    for depth in (1, 3):
        assert_same_state(serial, run(name, loss, prefetch=depth, refresh_every=5))


def test_models_called_per_draw_stay_in_the_loop():
    train_data, _ = block_data()
    sampler = GainSampler(train_data, memory=4, fresh=4)
    assert sampler.draws_from_snapshot  # nothing bound yet
    sampler.refresh(LinearScorer())
    assert not sampler.draws_from_snapshot
    sampler.refresh(GMF(N_USERS, N_ITEMS, 8))
    assert sampler.draws_from_snapshot
    serial = run("gain", "bpr", prefetch=0, model_cls=LinearScorer, refresh_every=5)
    assert_same_state(
        serial, run("gain", "bpr", prefetch=2, model_cls=LinearScorer, refresh_every=5)
    )


class ThreadRecordingSampler(RecordingSampler):
    def sample_for_pairs(self, users, positives, k=1):
        self.events.append(("thread", threading.current_thread().name))
        return super().sample_for_pairs(users, positives, k)


def test_draws_run_in_the_thread_and_never_cross_a_refresh():
    trainer, *_ = make("bpr", sampler_cls=ThreadRecordingSampler, epochs=2, refresh_every=3)
    trainer.fit()
    events = trainer.sampler.events
    threads = {e[1] for e in events if e[0] == "thread"}
    assert threads == {"gnno-prefetch"}
    calls = [e for e in events if e[0] != "thread"]
    # The serial loop's order: a refresh at every third step, draws between.
    serial, *_ = make(
        "bpr", sampler_cls=ThreadRecordingSampler, epochs=2, refresh_every=3, prefetch=0
    )
    serial.fit()
    assert {e[1] for e in serial.sampler.events if e[0] == "thread"} == {"MainThread"}
    assert calls == [e for e in serial.sampler.events if e[0] != "thread"]


class FailingSampler(UniformSampler):
    def __init__(self, train, seed=0, fail_at=3, error=RuntimeError):
        super().__init__(train, seed=seed)
        self.calls = 0
        self.fail_at = fail_at
        self.error = error

    def sample_for_pairs(self, users, positives, k=1):
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.error("sampler failed")
        return super().sample_for_pairs(users, positives, k)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_errors_in_the_thread_reach_the_caller(error):
    train_data, _ = block_data()
    sampler = FailingSampler(train_data, fail_at=3, error=error)
    model = GMF(N_USERS, N_ITEMS, 8)
    trainer = Trainer(model, train_data, sampler, batch_size=16, epochs=1, progress=False)
    with pytest.raises(error, match="sampler failed"):
        trainer.fit()
    # Trained on the two batches drawn before the failure, no more.
    assert sampler.calls == 3


class InterruptedModel(GMF):
    def __init__(self, at, error):
        super().__init__(N_USERS, N_ITEMS, 8)
        self.at, self.error, self.calls = at, error, 0

    def forward(self, users, items):
        self.calls += 1
        if self.calls == self.at:
            raise self.error("stop")
        return super().forward(users, items)


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_no_thread_outlives_an_interrupted_epoch(error):
    train_data, _ = block_data()
    sampler = RecordingSampler(train_data)
    model = InterruptedModel(at=4, error=error)
    trainer = Trainer(
        model, train_data, sampler, batch_size=16, epochs=1, progress=False, prefetch=3
    )
    with pytest.raises(error, match="stop"):
        trainer.fit()
    # Only the thread's lead was drawn beyond the failed step.
    draws = sum(e[0] == "pairs" for e in sampler.events)
    assert 4 <= draws <= 4 + 3 + 1


def test_staging_shares_memory_on_the_cpu():
    arr = np.arange(5, dtype=np.int64)
    t = staged(arr, "cpu")
    assert t.dtype == torch.long and t.data_ptr() == arr.ctypes.data
    assert to_device(t, torch.device("cpu")) is t


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_come_through_pinned_memory_and_prefetch_is_exact():
    arr = np.arange(5, dtype=np.int64)
    t = staged(arr, "cuda")
    assert t.is_pinned() and t.device.type == "cpu"
    moved = to_device(t, torch.device("cuda"))
    assert moved.is_cuda and moved.dtype == torch.long and moved.tolist() == arr.tolist()
    train_data, _ = block_data()
    out = GainSampler(train_data).sample(torch.arange(4, device="cuda"), 2)
    assert out.is_cuda and out.dtype == torch.long

    serial = run("gain", "bpr", prefetch=0, device="cuda", refresh_every=5)
    ahead = run("gain", "bpr", prefetch=2, device="cuda", refresh_every=5)
    for name, tensor in serial[0].items():
        torch.testing.assert_close(tensor, ahead[0][name], rtol=0, atol=1e-6)
    assert_same_state(serial[2], ahead[2])
