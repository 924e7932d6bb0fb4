"""Where an analysis's verdicts live: a JSON document under the key "analysis" in its sweep's
spec (the runs themselves are the sweep's rows), so no migration is needed and
`curvebench report --sweep ID` can rebuild the analysis's section from the database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.db import Database, Sweep

KEY = "analysis"


def store_result(db: Database, sweep_id: str, document: Mapping[str, Any]) -> None:
    """Attach an analysis's result document to its sweep."""
    with db.session() as s:
        sweep = s.get(Sweep, sweep_id)
        if sweep is None:
            raise ValueError(f"no sweep {sweep_id!r} in {db.url}")
        sweep.spec = {**sweep.spec, KEY: dict(document)}


def stored_result(db: Database, sweep_id: str) -> dict[str, Any] | None:
    """The analysis document of a sweep (None: not an analysis sweep, or not finished)."""
    with db.session() as s:
        sweep = s.get(Sweep, sweep_id)
        return None if sweep is None else (sweep.spec or {}).get(KEY)
