"""JAX's persistent compilation cache, on by default: compile each program once across processes.

Where: `--compile-cache DIR`, else `$CURVEBENCH_COMPILE_CACHE`, else
`$XDG_CACHE_HOME/curvebench/jax` (`~/.cache/curvebench/jax`); the value `off` disables it.
Every program is cached however fast it compiled (JAX's default skips those under 1 s, which
is every MNIST program). A cached executable is the one XLA compiled before for the same
program, backend and flags, so results do not change (tests/test_compile_cache.py).

Hits are told by `jax.monitoring` events; `CacheCounter` counts them around a group of trials
(in the thread that runs it, and in the one that compiled its programs ahead, if any) so that
the run records can say whether their programs came from the cache.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

ENV_VAR = "CURVEBENCH_COMPILE_CACHE"
OFF = "off"
_HIT = "/jax/compilation_cache/cache_hits"
_MISS = "/jax/compilation_cache/cache_misses"


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "curvebench" / "jax"


def resolve(option: str | None = None) -> Path | None:
    """The cache directory an option (or the environment) asks for; None when it is off."""
    value = option if option is not None else os.environ.get(ENV_VAR)
    if value is None or value.strip() == "":
        return default_dir()
    if value.strip().lower() == OFF:
        return None
    return Path(value).expanduser()


_configured: list[Path | None] = []


def configure(option: str | None = None) -> Path | None:
    """Point this process's JAX at the cache `option` resolves to (or turn it off); idempotent."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    path = resolve(option)
    if _configured and _configured[0] == path:
        return path
    compilation_cache.reset_cache()
    if path is None:
        jax.config.update("jax_enable_compilation_cache", False)
    else:
        path.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_enable_compilation_cache", True)
        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    _configured[:] = [path]
    return path


class _Listener:
    """One process-wide jax.monitoring listener feeding every live counter."""

    lock = threading.Lock()
    counters: list[CacheCounter] = []
    installed = False

    @classmethod
    def attach(cls, counter: CacheCounter) -> None:
        import jax

        with cls.lock:
            if not cls.installed:
                jax.monitoring.register_event_listener(cls.on_event)
                cls.installed = True
            cls.counters.append(counter)

    @classmethod
    def detach(cls, counter: CacheCounter) -> None:
        with cls.lock:
            cls.counters.remove(counter)

    @classmethod
    def on_event(cls, event: str, **_kwargs) -> None:
        if event in (_HIT, _MISS):
            thread = threading.get_ident()
            with cls.lock:
                for c in cls.counters:
                    if c.thread == thread:
                        c.hits += event == _HIT
                        c.misses += event == _MISS


class CacheCounter:
    """Persistent-cache hits and misses while the context is open, in the thread that opened
    it (a program compiled ahead in another thread is counted by that thread's counter, and
    `add`ed to the group's)."""

    def __init__(self) -> None:
        self.hits = self.misses = 0
        self.thread: int | None = None

    def add(self, other: CacheCounter) -> None:
        self.hits += other.hits
        self.misses += other.misses

    def __enter__(self) -> CacheCounter:
        self.thread = threading.get_ident()
        _Listener.attach(self)
        return self

    def __exit__(self, *exc) -> None:
        _Listener.detach(self)

    def verdict(self, enabled: bool) -> bool | None:
        """True: every program compiled came from the cache; False: some were compiled;
        None: the cache is off (or nothing was compiled at all)."""
        if not enabled or self.hits + self.misses == 0:
            return None
        return self.misses == 0
