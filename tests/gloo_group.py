"""The two-process gloo tests' plumbing: the test process hosts the TCP
store and spawns the ranks (``spawn_ranks``); each rank joins the group
through that store and leaves it together with its peer
(``process_group``)."""

from __future__ import annotations

import datetime
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

TIMEOUT = datetime.timedelta(seconds=30)


@contextmanager
def process_group(rank: int, port: int, world: int) -> Iterator[None]:
    """Joins the gloo group as ``rank`` for the body. A clean finish meets the
    peer at a barrier, destroys the group and leaves the process at once:
    a rank destroying the group while its peer still talks, and the
    interpreter's teardown of gloo's and the store's C++ threads, have both
    aborted a finished rank (SIGABRT, "terminate called without an active
    exception"). An exception in the body still propagates, and the spawn
    wrapper reports it."""
    import torch.distributed as dist

    # The test process hosts the store, so no port is chosen twice.
    store = dist.TCPStore("127.0.0.1", port, world, is_master=False, timeout=TIMEOUT)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world, timeout=TIMEOUT)
    try:
        yield
        dist.barrier()
    finally:
        dist.destroy_process_group()
    os._exit(0)


def spawn_ranks(
    worker: Callable[..., None], args: tuple, world: int, seconds: float, monkeypatch
) -> None:
    """Runs ``worker(rank, store_port, *args)`` on ``world`` spawned processes
    over the loopback interface and waits for them; fails the test (and
    kills them) after ``seconds`` instead of hanging."""
    import torch.distributed as dist
    import torch.multiprocessing as mp

    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    if sys.platform.startswith("linux") and "GLOO_SOCKET_IFNAME" not in os.environ:
        monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")  # loopback only, whatever the host
    # The test process hosts the store, so no port is chosen twice.
    store = dist.TCPStore(
        "127.0.0.1", 0, world + 1, is_master=True, timeout=TIMEOUT, wait_for_workers=False
    )
    ctx = mp.start_processes(
        worker, args=(store.port, *args), nprocs=world, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + seconds
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline:
                pytest.fail(f"the {world}-process run did not finish in {seconds:.0f} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.terminate()
                p.join(5)
