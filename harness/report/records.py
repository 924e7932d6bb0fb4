"""The typed records a report is made of: figures with provenance, sections, tables.

A `Figure` is one plot (a matplotlib figure) with its title, what it shows, and where its
numbers came from (`Provenance`); a `Section` groups figures, text and tables under a heading.
The HTML writer (`harness.report.html`) takes a list of sections and nothing else, so any
producer (the standard figures in `harness.report.figures`, or an analysis judging a paper's
claim) adds to a report by handing over sections.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure as PlotFigure

    from harness.db import Run

#: artists whose gid is this are data (lines, bands, points); the writer makes their ids unique
#: and the browser test checks every figure has at least one rendered.
DATA_GID = "data"


@dataclasses.dataclass(frozen=True)
class Environment:
    """Where runs were made: the fields that change numbers (backend, device, versions, commit)."""

    backend: str
    device_kind: str
    jax_version: str
    jaxlib_version: str
    cpu: str
    git_commit: str | None

    @classmethod
    def of(cls, run: Run) -> Environment:
        env = run.environment or {}
        return cls(run.backend, run.device_kind, run.jax_version, run.jaxlib_version,
                   str(env.get("cpu", "?")), run.git_commit)

    def describe(self) -> str:
        commit = self.git_commit[:12] if self.git_commit else "no git commit"
        return (f"{self.backend} / {self.device_kind} ({self.cpu}), jax {self.jax_version}, "
                f"jaxlib {self.jaxlib_version}, curvebench {commit}")


@dataclasses.dataclass(frozen=True)
class Provenance:
    """The runs a figure was drawn from, their workload versions and environments, and which
    stored rows (and which command made them) the numbers are."""

    run_ids: tuple[str, ...]
    #: workload variant -> the workload versions of its runs in this figure
    workload_versions: tuple[tuple[str, tuple[str, ...]], ...]
    #: each distinct environment with the number of the figure's runs made in it
    environments: tuple[tuple[Environment, int], ...]
    #: which tables / commands the plotted numbers come from
    source: str

    @classmethod
    def of(cls, runs: Iterable[Run], source: str) -> Provenance:
        runs = list(runs)
        versions: dict[str, set[str]] = {}
        envs: dict[Environment, int] = {}
        for run in runs:
            versions.setdefault(run.variant, set()).add(run.workload_version)
            env = Environment.of(run)
            envs[env] = envs.get(env, 0) + 1
        return cls(run_ids=tuple(r.id for r in runs),
                   workload_versions=tuple((v, tuple(sorted(s))) for v, s in sorted(versions.items())),
                   environments=tuple(envs.items()), source=source)


@dataclasses.dataclass
class Figure:
    """One plot of a report. `plot` is a matplotlib figure whose data artists carry
    gid `DATA_GID` (see `records.mark_data`); `slug` names its file (made unique by the writer);
    `table`, if any, is shown collapsed under it (e.g. every stored value the plot leaves out)."""

    title: str
    description: str
    provenance: Provenance
    plot: PlotFigure
    slug: str = "figure"
    table: Table | None = None


@dataclasses.dataclass(frozen=True)
class Table:
    """A small table of text cells (e.g. an analysis's verdict per claim)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclasses.dataclass
class Section:
    """A heading with paragraphs of text (blank-line separated), tables and figures, in that order.
    `replaces`: the title of a standard section this one draws the same numbers for (an
    analysis's figure of a seed's paper, e.g. the ablation's steps to target): in a report
    holding both, the standard section's figures give way to a line pointing here."""

    title: str
    text: str = ""
    figures: list[Figure] = dataclasses.field(default_factory=list)
    tables: list[Table] = dataclasses.field(default_factory=list)
    replaces: str | None = None


def mark_data(*artists: Any) -> None:
    """Tag plotted data (Line2D, collections, patches) so the page can be checked for it."""
    for artist in artists:
        if isinstance(artist, (list, tuple)):
            mark_data(*artist)
        else:
            artist.set_gid(DATA_GID)
