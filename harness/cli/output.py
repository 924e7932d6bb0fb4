"""How the commands print: rich tables, numbers with their misses, JSON without infinities."""

from __future__ import annotations

import json
import math
from typing import Any

from harness.cli.app import emit, out


def make_table(title: str, columns: tuple[str, ...] | list[str]):
    """A rich table whose columns fold long cells."""
    from rich.table import Table

    result = Table(title=title)
    for col in columns:
        result.add_column(col, overflow="fold")
    return result


def fmt_s(x: float | None) -> str:
    """Seconds to two decimals; '-' for a miss (None or infinite)."""
    return "-" if x is None or math.isinf(x) else f"{x:.2f}"


def fmt_steps(x: float | None) -> str:
    """A step count; '-' for a miss (None or infinite)."""
    return "-" if x is None or math.isinf(x) else f"{x:g}"


def num(x: Any) -> str:
    """A number to read: ints as they are, floats to 3 significant digits, '—' if missing."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return str(x)
    return "inf" if math.isinf(x) else f"{x:.3g}"


def finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def jsonable(obj):
    """Replace non-finite floats (misses as infinity) by null: JSON has no Infinity."""
    if isinstance(obj, float):
        return finite_or_none(obj)
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def print_json(obj, **kwargs) -> None:
    """`obj` as indented JSON on stdout, non-finite floats as null."""
    emit(json.dumps(jsonable(obj), indent=2, **kwargs))


def split_ids(values: list[str]) -> list[str]:
    """Repeated and comma-separated option values as one list."""
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def time_note(trials) -> None:
    """Say what a grouped trial's time to target means, when any trial ran in a group."""
    if any((t.group_size or 1) > 1 for t in trials):
        out.print("time to target of a trial in a group > 1 is its group's training time "
                  "(score counts only trials timed alone)", highlight=False)
