"""The suite's native submission format: submission.py defines the four functions the engine
traces (`harness.spec.SubmissionModule`) and hparams.json their defaults. The module is called
as it is and needs nothing beyond compiled chunks (all `Capabilities` off)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from harness.records.submission import Capabilities


class NativeFormat:
    """The native format as a `harness.records.submission.SubmissionFormat`: every folder
    not in another format is native."""

    label = "submission"
    search_space = None
    hyperparameter_free = False

    def recognises(self, folder: Path) -> bool:
        return True

    def check_source(self, source: Path) -> None:
        return None

    def executing(self, folder: Path) -> contextlib.AbstractContextManager[list[Path]]:
        return contextlib.nullcontext([])

    def import_hint(self, error: Exception) -> str:
        return ""

    def adapt(self, module: ModuleType, folder: Path, search_point: tuple[int, int] | None,
              files: Sequence[Path] = ()) -> tuple[ModuleType, Capabilities]:
        return module, Capabilities()


NATIVE = NativeFormat()
