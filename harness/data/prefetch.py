"""Run a host batch iterator in a background thread, a fixed number of items ahead."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator


def prefetch(iterator: Iterator, depth: int) -> Iterator:
    """Run a host batch iterator in a background thread, `depth` batches ahead of the device."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    sentinel = object()

    def produce():
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as e:  # surfaced in the consumer
            q.put(e)
        q.put(sentinel)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is sentinel:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
