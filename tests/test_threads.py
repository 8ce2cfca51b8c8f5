"""The owned thread pool: settable, fork-safe, never changing results."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys

import numpy as np
import pytest

import gnno
from gnno.exceptions import GnnoError


def _train():
    return gnno.datasets.synthetic(n_users=300, n_items=200, seed=4).train


def _child_sample(queue):
    train = _train()
    s = gnno.UniformSampler(train, seed=5)
    queue.put(s.sample(np.arange(train.n_users).repeat(20), 2))


# These tests never change the pool of the test process: a thread count is
# set only in a child process (GNNO_NUM_THREADS or set_num_threads there),
# and invalid values are refused before anything changes.

_DRAWS = """
import sys
import numpy as np
import gnno
from gnno.samplers import SAMPLERS

threads = int(sys.argv[1])
if threads:
    gnno.set_num_threads(threads)
    assert gnno.get_num_threads() == threads, gnno.get_num_threads()
train = gnno.datasets.synthetic(n_users=300, n_items=200, seed=4).train
users = np.tile(np.arange(train.n_users), 40)  # enough work for the parallel path
rng = np.random.default_rng(0)
user_vectors = rng.normal(size=(train.n_users, 8)).astype(np.float32)
item_vectors = rng.normal(size=(train.n_items, 8)).astype(np.float32)
out = {}
for name in SAMPLERS:
    s = gnno.build_sampler(name, train, seed=7)
    s.set_epoch(3)
    if s.needs_scores:
        s.refresh_embeddings(user_vectors, item_vectors)
    out[name + "_2"] = s.sample(users, 2)
    out[name + "_1"] = s.sample(users, 1)
np.savez(sys.argv[2], **out)
"""


def _draws_in_child(tmp_path, threads, env_threads=None):
    path = tmp_path / f"draws-{threads}-{env_threads}.npz"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("GNNO_NUM_THREADS", None)
    if env_threads is not None:
        env["GNNO_NUM_THREADS"] = str(env_threads)
    done = subprocess.run(
        [sys.executable, "-c", _DRAWS, str(threads), str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def test_set_num_threads_refuses_bad_values_without_changing_the_pool():
    before = gnno.get_num_threads()
    for bad, needle in ((0, "num_threads"), (-1, "-1"), (10**5, "100000")):
        with pytest.raises(GnnoError, match=needle):
            gnno.set_num_threads(bad)
    for bad in (2.0, "3", None, True):
        with pytest.raises(GnnoError, match="num_threads must be an integer"):
            gnno.set_num_threads(bad)
    assert gnno.get_num_threads() == before


def test_same_seed_same_negatives_whatever_the_thread_count(tmp_path):
    """Every sampler draws the same with 1, 2 and 3 threads (each in its own
    process; 3 set through GNNO_NUM_THREADS, 1 and 2 through
    set_num_threads, which the child checks round-trips)."""
    runs = [
        _draws_in_child(tmp_path, 1),
        _draws_in_child(tmp_path, 2),
        _draws_in_child(tmp_path, 0, env_threads=3),
    ]
    for other in runs[1:]:
        assert other.keys() == runs[0].keys()
        for key in runs[0]:
            assert np.array_equal(other[key], runs[0][key]), key
    # Another seed gives other negatives (the comparison can fail).
    train = _train()
    users = np.tile(np.arange(train.n_users), 40)
    s = gnno.UniformSampler(train, seed=8)
    s.set_epoch(3)
    assert not np.array_equal(s.sample(users, 2), runs[0]["uniform_2"])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_sampling_works_in_a_forked_child_after_the_parent_used_the_pool():
    train = _train()
    users = np.arange(train.n_users).repeat(20)
    parent = gnno.UniformSampler(train, seed=5).sample(users, 2)  # pool now running
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_sample, args=(queue,))
    proc.start()
    try:
        child = queue.get(timeout=60)
    finally:
        proc.join(timeout=60)
        if proc.is_alive():
            proc.kill()
    assert proc.exitcode == 0
    assert np.array_equal(child, parent)
