"""What a user chose in place of an analysis's defaults (`curvebench analyze NAME --workload
... --submission ... --hparam ... --seeds ... --max-steps ... --lanczos-order ...`), and the
one rule every analysis applies to it: an option the analysis sets itself (catapult's η is
c/λ_H^0, so `--hparam learning_rate` cannot apply) is a one-line error naming the options it
takes, never silently dropped. Each analysis module's `configure(config, setting)` maps the
setting onto its own config record."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from harness.errors import AnalysisSettingError


@dataclasses.dataclass(frozen=True)
class AnalysisSetting:
    """The options given (empty / None: the analysis's own). `workloads` are variants as a
    sweep expands them; `hparams` the grid's points; `curvature` the curvature options given,
    by their command-line parameter name (lanczos_order, curvature_batch, ...: harness.cli.options)."""

    workloads: tuple[str, ...] = ()
    submission: str | None = None
    hparams: tuple[Mapping[str, Any], ...] = ()
    seeds: tuple[int, ...] = ()
    max_steps: int | None = None
    curvature: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def given(self) -> list[str]:
        """The options given, as the command line names them."""
        names = [flag for flag, value in (("--workload", self.workloads), ("--submission", self.submission),
                                          ("--hparam", self.hparams), ("--seeds", self.seeds),
                                          ("--max-steps", self.max_steps)) if value]
        return names + [f"--{k.replace('_', '-')}" for k in self.curvature]

    def fixed_hparams(self, analysis: str, *, owned: Iterable[str] = ()) -> dict[str, Any]:
        """The one hparam point given (the analysis makes its own grid), none of `owned`."""
        if len(self.hparams) > 1:
            raise AnalysisSettingError(f"analyze {analysis}: --hparam takes one value per name here "
                                       f"(the analysis makes its own grid); got {len(self.hparams)} points")
        point = dict(self.hparams[0]) if self.hparams else {}
        clash = sorted(set(point) & set(owned))
        if clash:
            raise AnalysisSettingError(f"analyze {analysis}: --hparam {', '.join(clash)} is set by the "
                                       f"analysis itself; drop it")
        return point

    def refuse_others(self, analysis: str, takes: Iterable[str]) -> None:
        """AnalysisSettingError if an option outside `takes` (command-line names) was given."""
        takes = list(takes)
        extra = [n for n in self.given() if n not in takes]
        if extra:
            raise AnalysisSettingError(f"analyze {analysis}: {', '.join(extra)} does not apply "
                                       f"(it takes {', '.join(takes)})")

