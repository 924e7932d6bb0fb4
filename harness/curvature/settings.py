"""The curvature settings of a command line, as one typed record -> a SnapshotConfig.

`curvebench run` (and any other command that trains, e.g. a sweep) declares the
same options and passes their values here; this module owns their meaning, their
defaults and their one-line errors, so commands stay thin and agree.
"""

from __future__ import annotations

import dataclasses

from harness.curvature.schedule import DEFAULT_SCHEDULE, ScheduleError, snapshot_steps
from harness.curvature.snapshot import PAPER_COV_BATCH_SIZE, SnapshotConfig
from harness.curvature.trace import TraceMethod
from harness.spec import SpecError

#: --curvature-batch value meaning "the whole split".
WHOLE_SPLIT = "all"
#: --cov-batch-size value meaning "the training batch size".
TRAINING_BATCH = "train"


@dataclasses.dataclass(frozen=True)
class CurvatureOptions:
    """What the user typed: kinds (comma-separated, None: no snapshots) and every setting."""

    kinds: str | None = None
    every: str = DEFAULT_SCHEDULE
    batch: str = "2048"
    split: str = "train"
    #: an int (fixed order), or "auto" / "auto:CAP": chosen by convergence (SnapshotConfig).
    lanczos_order: int | str = 20
    probes: int = 1
    ritz_tol: float = 1e-3
    trace: str = TraceMethod.KRYLOV.value
    trace_probes: int = 10
    cov_batches: int = 25
    cov_batch_size: str = str(PAPER_COV_BATCH_SIZE)
    cov_centered: bool = False
    ritz_vectors: int = 0

    def config(self) -> SnapshotConfig | None:
        """The SnapshotConfig these options ask for (None without kinds); SpecError if invalid."""
        if not self.kinds:
            return None
        kinds = tuple(k.strip() for k in self.kinds.split(",") if k.strip())
        try:
            snapshot_steps(self.every, 1)
        except ScheduleError as e:
            raise SpecError(str(e)) from None
        try:
            method = TraceMethod(self.trace)
        except ValueError:
            raise SpecError(f"unknown trace estimator {self.trace!r}; valid: "
                            f"{', '.join(m.value for m in TraceMethod)}") from None
        order, max_order = lanczos_orders(self.lanczos_order)
        return SnapshotConfig(
            kinds=kinds, curvature_batch=_count(self.batch, "--curvature-batch", WHOLE_SPLIT),
            curvature_split=self.split, lanczos_order=order, lanczos_max_order=max_order,
            probes=self.probes, top_k=tuple(k for k in SnapshotConfig.top_k if k <= order),
            ritz_tol=self.ritz_tol, trace_method=method, trace_probes=self.trace_probes,
            cov_batches=self.cov_batches,
            cov_batch_size=_count(self.cov_batch_size, "--cov-batch-size", TRAINING_BATCH),
            cov_centered=self.cov_centered, ritz_vectors=self.ritz_vectors)


#: --lanczos-order auto: start at the default order, extend up to this cap.
AUTO_ORDER = "auto"
DEFAULT_AUTO_CAP = 80


def lanczos_orders(text: int | str) -> tuple[int, int | None]:
    """--lanczos-order: "N" -> (N, None), fixed; "auto" / "auto:CAP" -> (20, CAP), chosen by
    convergence of the top-K Ritz values (default cap 80)."""
    text = str(text).strip()
    word, _, cap = text.partition(":")
    try:
        if word == AUTO_ORDER:
            start = SnapshotConfig.lanczos_order
            limit = int(cap) if cap else DEFAULT_AUTO_CAP
            if limit < start:
                raise ValueError
            return start, limit
        if not cap:
            order = int(word)
            if order >= 2:
                return order, None
    except ValueError:
        pass
    raise SpecError(f"--lanczos-order must be an integer >= 2, 'auto' or 'auto:CAP' with CAP >= "
                    f"{SnapshotConfig.lanczos_order}, got {text!r}")


def _count(text: str, option: str, word: str) -> int | None:
    """A positive integer, or None for `word`."""
    text = str(text).strip()
    if text == word:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise SpecError(f"{option} must be a positive integer or {word!r}, got {text!r}")
    return value
