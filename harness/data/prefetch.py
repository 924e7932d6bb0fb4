"""Run a host batch iterator in a background thread, a few batches ahead of its consumer.

Host-side batching (graph packing) then overlaps with the device's work instead of
starving it. Items come out in the producer's order; a producer error is re-raised
in the consumer at the point where the failed item would have arrived.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

_END = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class Prefetcher(Iterator):
    """Iterator over `source`, produced by a daemon thread at most `depth` items ahead."""

    def __init__(self, source: Iterator[Any], depth: int):
        if depth < 1:
            raise ValueError(f"prefetch depth must be >= 1, got {depth}")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._produce, args=(iter(source),), daemon=True,
                                        name="prefetch")
        self._thread.start()

    def _produce(self, source: Iterator[Any]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
        except BaseException as e:  # handed to the consumer, which re-raises it
            self._put(_Failure(e))
            return
        self._put(_END)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, _Failure):
            self._done = True
            raise item.error
        return item

    def close(self) -> None:
        """Stop the producer thread (it exits after its current item)."""
        self._done = True
        self._stop.set()
        self._thread.join(timeout=5.0)

    def __del__(self):
        self._stop.set()
