"""The suite's native submission format: submission.py defines the four functions the engine
traces (`harness.spec.SubmissionModule`) and hparams.json their defaults. The module is called
as it is and needs nothing beyond compiled chunks (all `Capabilities` off)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import ModuleType

from harness.records.submission import Capabilities


class NativeFormat:
    """The native format as a `harness.records.submission.SubmissionFormat`: every folder
    not in another format is native."""

    label = "submission"
    search_space = None

    def recognises(self, folder: Path) -> bool:
        return True

    def check_source(self, source: Path) -> None:
        return None

    def executing(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def import_hint(self, error: Exception) -> str:
        return ""

    def adapt(self, module: ModuleType, folder: Path, search_point: tuple[int, int] | None
              ) -> tuple[ModuleType, Capabilities]:
        return module, Capabilities()


NATIVE = NativeFormat()
