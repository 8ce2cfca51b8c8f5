"""A worker's side of the two-process gloo tests: join the group through the
test process's TCP store, leave it together with the peer."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from contextlib import contextmanager

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
