"""Running an iterator ahead of its consumer in a background thread.

The sampler's calls release the GIL, so a thread that draws the next
batches' negatives runs while the caller's thread does torch's work. The
iterator runs in one thread, in order, exactly as a plain loop would run it;
only *when* each item is computed changes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_ITEM, _END, _ERROR = 0, 1, 2
# How often a producer waiting on a full queue checks whether it was stopped.
_POLL_S = 0.05


class Prefetcher(Generic[T]):
    """Iterates ``source`` in a daemon thread, at most ``depth`` items ahead
    of the consumer.

    Items come out in ``source``'s order. An exception raised by ``source``
    is raised by the consumer's ``next()`` once the items before it are
    consumed. ``close()`` (also on leaving a ``with`` block) stops the
    producer at its next item boundary and waits for it, so no thread
    outlives the prefetcher; the item being computed when it is stopped is
    finished and dropped.
    """

    def __init__(self, source: Iterator[T], depth: int, name: str = "gnno-prefetch") -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._queue: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._run, args=(source,), name=name, daemon=True)
        self._thread.start()

    # -- producer side ------------------------------------------------------
    def _run(self, source: Iterator[T]) -> None:
        try:
            for item in source:
                if not self._put((_ITEM, item)):
                    return
            self._put((_END, None))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            self._put((_ERROR, err))
        finally:
            close = getattr(source, "close", None)
            if callable(close):
                close()

    def _put(self, message: tuple[int, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    # -- consumer side --------------------------------------------------------
    def __iter__(self) -> Prefetcher[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        while True:
            try:
                kind, value = self._queue.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self._finished = True
                    raise RuntimeError("the prefetch thread ended without a result") from None
        if kind == _ITEM:
            return value
        self._finished = True
        self._thread.join()
        if kind == _ERROR:
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stops the producer and waits for it; idempotent."""
        self._stop.set()
        self._thread.join()
        self._finished = True
        # Drop what was produced ahead (it may hold pinned buffers).
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break

    @property
    def alive(self) -> bool:
        """Whether the producer thread is still running."""
        return self._thread.is_alive()

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
