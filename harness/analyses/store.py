"""Where an analysis's verdicts live: JSON documents under the key "analyses" (analysis name
-> its document) in the spec of the sweep whose runs it judged (the runs themselves are the
sweep's rows), so no migration is needed and `curvebench report --sweep ID` can rebuild every
analysis's section from the database. The sweep is the analysis's own (`analyze NAME`) or any
sweep it was asked to judge (`analyze NAME --sweep S`); several analyses may judge one sweep.
Databases written before this layout kept one document under "analysis"; it is still read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.db import Database, Sweep

KEY = "analyses"
#: the one-document key of databases written before several analyses could judge one sweep
LEGACY_KEY = "analysis"


def store_result(db: Database, sweep_id: str, document: Mapping[str, Any]) -> None:
    """Attach an analysis's result document (it names its analysis) to the sweep it judged,
    replacing that analysis's earlier verdicts on the sweep."""
    with db.session() as s:
        sweep = s.get(Sweep, sweep_id)
        if sweep is None:
            raise ValueError(f"no sweep {sweep_id!r} in {db.url}")
        spec = dict(sweep.spec or {})
        docs = dict(spec.get(KEY) or {})
        docs[document["name"]] = dict(document)
        spec[KEY] = docs
        sweep.spec = spec


def stored_results(db: Database, sweep_id: str) -> dict[str, dict[str, Any]]:
    """Every analysis document of a sweep, by analysis name ({}: none judged it)."""
    with db.session() as s:
        sweep = s.get(Sweep, sweep_id)
        spec = {} if sweep is None else (sweep.spec or {})
    docs = dict(spec.get(KEY) or {})
    legacy = spec.get(LEGACY_KEY)
    if isinstance(legacy, Mapping) and legacy.get("name") and legacy["name"] not in docs:
        docs[legacy["name"]] = dict(legacy)
    return docs


def stored_result(db: Database, sweep_id: str, name: str | None = None) -> dict[str, Any] | None:
    """The document of analysis `name` on a sweep (None: not judged by it); without a name,
    the sweep's only or first document (an analysis's own sweep holds just its own)."""
    docs = stored_results(db, sweep_id)
    if name is not None:
        return docs.get(name)
    return next(iter(docs.values()), None)
