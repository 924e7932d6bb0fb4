"""Snapshot schedules: which training steps get a curvature snapshot.

A SPEC is a comma-separated list of items, unioned:

* ``init``           step 0 (the initial parameters, before any update)
* ``every:N``        N, 2N, 3N, … up to the step budget
* ``log:K:END``      K steps log-spaced between 1 and END (rounded, duplicates merged)
* ``at:S1/S2/…``     these steps

e.g. ``init,log:4:1000,every:1000`` (the default: 0, 1, 10, 100, 1000, 2000, …): dense early, when curvature changes fastest
(Jastrzębski et al. 2020; Kalra & Barkeshli 2023), then every 1000 steps. A step s means "after s updates".
"""

from __future__ import annotations

import numpy as np

from harness.errors import ScheduleError

DEFAULT_SCHEDULE = "init,log:4:1000,every:1000"


_GRAMMAR = "expected comma-separated items: init | every:N | log:K:END | at:S1/S2/..."


def _int(text: str, item: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ScheduleError(f"{item!r}: {text!r} is not an integer; {_GRAMMAR}") from None
    if value < minimum:
        raise ScheduleError(f"{item!r}: {value} is below {minimum}; {_GRAMMAR}")
    return value


def _item_steps(item: str, max_steps: int) -> set[int]:
    kind, _, rest = item.partition(":")
    if kind == "init" and not rest:
        return {0}
    if kind == "every":
        n = _int(rest, item, 1)
        return set(range(n, max_steps + 1, n))
    if kind == "log":
        count, sep, end = rest.partition(":")
        if not sep:
            raise ScheduleError(f"{item!r}: log needs K and END; {_GRAMMAR}")
        k, stop = _int(count, item, 1), _int(end, item, 1)
        return {int(s) for s in np.unique(np.rint(np.geomspace(1, stop, k)))}
    if kind == "at" and rest:
        return {_int(s, item, 0) for s in rest.split("/")}
    raise ScheduleError(f"bad schedule item {item!r}; {_GRAMMAR}")


def snapshot_steps(spec: str, max_steps: int) -> tuple[int, ...]:
    """The sorted steps in [0, max_steps] that SPEC selects."""
    items = [p.strip() for p in spec.split(",") if p.strip()]
    if not items:
        raise ScheduleError(f"empty schedule {spec!r}; {_GRAMMAR}")
    steps: set[int] = set()
    for item in items:
        steps |= _item_steps(item, max_steps)
    return tuple(sorted(s for s in steps if s <= max_steps))
