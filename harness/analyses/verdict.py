"""The shared record of an analysis: one verdict per claim of a paper, with its reason.

An analysis runs a small grid, then judges each claim it names as HOLDS, FAILS or
UNDECIDABLE; an undecidable verdict always says what would decide it (too few seeds, a grid
too coarse, a curvature estimate that did not converge, ...). The records are plain
dataclasses so they round-trip through JSON (stored in the analysis sweep's spec).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from typing import Any


class Outcome(str, enum.Enum):
    """What the grid says about a claim."""

    HOLDS = "holds"
    FAILS = "fails"
    UNDECIDABLE = "undecidable"


@dataclasses.dataclass(frozen=True)
class Claim:
    """A paper's claim as an analysis states it, its outcome and why (the measured numbers)."""

    name: str
    statement: str
    outcome: Outcome
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "statement": self.statement, "outcome": self.outcome.value,
                "reason": self.reason}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Claim:
        return cls(data["name"], data["statement"], Outcome(data["outcome"]), data["reason"])


def claims_table(claims: Sequence[Claim]):
    """The claims as a report table (claim, verdict, reason)."""
    from harness.report import Table

    return Table(("claim", "verdict", "reason"),
                 tuple((f"{c.name}: {c.statement}", c.outcome.value, c.reason) for c in claims))


def some_runs(run_ids: Sequence[str], shown: int = 3) -> str:
    """A few run ids (8 characters) and how many there are, for a one-line message."""
    ids = [i[:8] for i in run_ids]
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return f"{len(ids)} run(s) ({', '.join(ids[:shown])}{more})"
