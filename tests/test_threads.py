"""The owned thread pool: settable, fork-safe, never changing results."""

from __future__ import annotations

import multiprocessing as mp
import os

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


def test_set_num_threads_validates_and_round_trips():
    before = gnno.get_num_threads()
    try:
        gnno.set_num_threads(3)
        assert gnno.get_num_threads() == 3
        with pytest.raises(GnnoError, match="at least 1"):
            gnno.set_num_threads(0)
        for bad in (-1, 10**5, 999_999_999_999, 10**30, 2.5, "4", True):
            with pytest.raises(GnnoError, match="num_threads"):
                gnno.set_num_threads(bad)
        assert gnno.get_num_threads() == 3
    finally:
        gnno.set_num_threads(before)


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
