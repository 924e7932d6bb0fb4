"""AlgoPerf tuning search spaces (`tuning_search_space.json`) and the points drawn from them.

A search space is either a list of points (JSON objects of hyperparameters, used in order), or
an object mapping each hyperparameter to `{"feasible_points": [...]}` (discrete) or
`{"min": a, "max": b, "scaling": "linear" | "log"}` (a range). Ranges are sampled quasi-randomly
as AlgoPerf does, with a scrambled Halton sequence (scipy.stats.qmc.Halton) under a recorded seed:
point k is row k of the sequence, one dimension per hyperparameter in file order; a discrete
hyperparameter takes feasible_points[floor(u * len)], a range min + u (max - min), or on a log
scale min * (max / min) ** u. AlgoPerf's own generator (a shuffled Halton sequence seeded by its
primes) draws other points from the same space; the distribution is the same.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from harness.spec import SpecError

#: the default seed of the quasi-random sequence; the seed a run used is recorded with it
SEARCH_SEED = 0


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One hyperparameter of a search space: discrete points, or a linear/log range."""

    name: str
    feasible_points: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False

    def value(self, u: float) -> Any:
        """The value at quasi-random coordinate u in [0, 1)."""
        if self.feasible_points is not None:
            return self.feasible_points[min(int(math.floor(u * len(self.feasible_points))),
                                            len(self.feasible_points) - 1)]
        if self.log:
            return float(self.low * math.exp(u * math.log(self.high / self.low)))
        return float(self.low + u * (self.high - self.low))


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A list of fixed points, or dimensions sampled quasi-randomly (module docstring)."""

    points: tuple[dict[str, Any], ...] = ()
    dimensions: tuple[Dimension, ...] = ()

    @classmethod
    def from_json(cls, data: Any, where: str = "search space") -> SearchSpace:
        if isinstance(data, list):
            if not data or not all(isinstance(p, dict) for p in data):
                raise SpecError(f"{where}: a list search space must hold one or more JSON objects")
            keys = set(data[0])
            for i, p in enumerate(data):
                if set(p) != keys:
                    raise SpecError(f"{where}: point {i} has keys {sorted(p)}, point 0 has {sorted(keys)}")
            return cls(points=tuple(dict(p) for p in data))
        if not isinstance(data, dict) or not data:
            raise SpecError(f"{where}: must be a JSON list of points or an object of hyperparameters")
        return cls(dimensions=tuple(_dimension(name, spec, where) for name, spec in data.items()))

    @property
    def is_list(self) -> bool:
        return bool(self.points)

    def __len__(self) -> int:
        """Number of distinct points: the list's length, or unbounded (0) for ranges."""
        return len(self.points)

    def sample(self, n: int, seed: int = SEARCH_SEED) -> list[dict[str, Any]]:
        """The first n points: the list's (n at most its length), or n quasi-random ones."""
        if n < 1:
            raise SpecError(f"number of points must be >= 1, not {n}")
        if self.points:
            if n > len(self.points):
                raise SpecError(f"the search space lists {len(self.points)} points; asked for {n}")
            return [dict(p) for p in self.points[:n]]
        from scipy.stats import qmc

        unit = qmc.Halton(d=len(self.dimensions), scramble=True, seed=seed).random(n)
        return [{d.name: d.value(float(u[i])) for i, d in enumerate(self.dimensions)} for u in unit]

    def point(self, k: int, seed: int = SEARCH_SEED) -> dict[str, Any]:
        """Point k (0-based) of `sample`."""
        if k < 0:
            raise SpecError(f"search point must be >= 0, not {k}")
        if self.points and k >= len(self.points):
            raise SpecError(f"search point {k}: the search space lists {len(self.points)} points "
                            f"(0..{len(self.points) - 1})")
        return self.sample(k + 1, seed)[k]


def _dimension(name: str, spec: Any, where: str) -> Dimension:
    if not isinstance(spec, Mapping):
        raise SpecError(f"{where}: {name!r} must be an object with feasible_points or min/max/scaling")
    if "feasible_points" in spec:
        points = spec["feasible_points"]
        if not isinstance(points, Sequence) or isinstance(points, str) or not points:
            raise SpecError(f"{where}: {name!r} feasible_points must be a non-empty list")
        return Dimension(name, feasible_points=tuple(points))
    try:
        low, high, scaling = float(spec["min"]), float(spec["max"]), spec.get("scaling", "linear")
    except (KeyError, TypeError, ValueError):
        raise SpecError(f"{where}: {name!r} needs numeric min and max (or feasible_points)") from None
    if scaling not in ("linear", "log"):
        raise SpecError(f"{where}: {name!r} scaling {scaling!r} is not linear or log")
    if low > high or (scaling == "log" and low <= 0):
        raise SpecError(f"{where}: {name!r} needs min <= max{' and min > 0 on a log scale' if scaling == 'log' else ''}")
    return Dimension(name, low=low, high=high, log=scaling == "log")


def trial_requests(workload: str, submission: str, space: SearchSpace, n: int, seeds: Sequence[int],
                   seed: int = SEARCH_SEED) -> list:
    """n points x seeds as sweep-engine requests (`harness.experiment.TrialRequest`)."""
    from harness.records.sweep import TrialRequest

    return [TrialRequest(workload=workload, submission=submission, hparams=point, seed=s)
            for point in space.sample(n, seed) for s in seeds]
