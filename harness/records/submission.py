"""What a loaded submission is: the record the loader (harness.submissions) builds and the
engine trains with, the capabilities its format declares, and what a format is to the loader.

The engine branches on `Capabilities`, never on a submission's format: a format adapter
(native, AlgoPerf) says once, at load time, what its submissions need from the engine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from harness.errors import SpecError


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a submission needs from the engine beyond the suite's four functions traced into
    compiled chunks (all False: a native submission)."""

    #: every hyperparameter is a Python value while tracing: a compiled program holds seeds of
    #: one full hyperparameter point (trials grouped by their full hparams, none vmapped)
    static_hparams: bool = False
    #: a compiled program trains one workload variant: trials that differ in runtime knobs run
    #: variant by variant, never switched per trial inside one program
    one_variant_per_program: bool = False
    #: tracing the initial state or a step may raise `NeedsConcreteStep` (or fail where Python
    #: reads a traced value): the engine traces them before any row is written and, if so,
    #: trains in concrete-step mode (a Python int step per call, as AlgoPerf's runner calls)
    may_need_concrete_step: bool = False
    #: a `prepare_for_eval` hook runs on the host (timed) before each eval: the trials train in
    #: concrete-step mode with host evaluation
    prepare_for_eval: bool = False
    #: AlgoPerf's runner hooks: the submission sees the eval results (`record_eval` after each
    #: eval, reset at a trial's start), and its runs record prepare_for_eval's key derivation;
    #: the runner tells it the dataset's split sizes before a group trains
    #: (`module.use_dataset(sizes)`: AlgoPerf's num_train_examples, ...) and records on each
    #: run the hyperparameters `module.ignored_hparams(workload, hparams)` says it ignores
    eval_hooks: bool = False


@dataclasses.dataclass(frozen=True)
class Submission:
    """A loaded submission: the object the engine calls (`module`: the suite's four functions,
    `harness.spec.SubmissionModule`; a format adapter's wrapper where the file is in another
    format), its hyperparameters after overrides, its code hash (of the code with docstrings
    and comments removed, like a workload's version) and its format's capabilities.
    Records built from one file share its executed module (harness.submissions)."""

    name: str
    path: Path
    module: Any
    hparams: dict[str, Any]
    code_hash: str
    capabilities: Capabilities = Capabilities()
    #: (k, seed) of the search-space point the hyperparameters came from; None: hparams.json
    search_point: tuple[int, int] | None = None
    #: hyperparameter -> the interval of values it declares valid ("(0, inf)", "[0, 1)"), from
    #: the folder's hparam_ranges.json (harness.submissions.check_ranges); {}: none declared
    ranges: dict[str, str] = dataclasses.field(default_factory=dict)

    def batch_size(self, workload_name: str, default: int) -> int:
        """hparams["batch_size"] (null: not set), else get_batch_size(workload), else the
        workload's default."""
        size = self.hparams.get("batch_size")
        where = "hparams batch_size"
        if size is None:
            size, where = self.module.get_batch_size(workload_name), "get_batch_size"
        if size is None:
            size, where = default, "the workload's default batch size"
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise SpecError(f"submission {self.name}: batch size {size!r} (from {where}) must be a "
                            "positive integer, e.g. --hparam batch_size=128")
        return int(size)


@dataclasses.dataclass(frozen=True)
class SearchSpaceFile:
    """A search-space file a folder may hold instead of hparams.json: its name, and
    `point(data, where, k)`: the hyperparameters of point k of the JSON `data` read from
    `where`, with (k, seed)."""

    name: str
    point: Callable[[Any, str, int], tuple[dict[str, Any], tuple[int, int]]]


class SubmissionFormat(Protocol):
    """A submission format, as `harness.submissions.load_submission` uses it."""

    #: how error messages name a file of this format ("submission", "AlgoPerf submission")
    label: str
    #: the search-space file of this format; None: hyperparameters come from hparams.json only
    search_space: SearchSpaceFile | None
    #: a folder with neither hparams.json nor a search space loads with no hyperparameters
    #: (AlgoPerf's self-tuning submissions); False: such a folder is refused
    hyperparameter_free: bool

    def recognises(self, folder: Path) -> bool:
        """Whether `folder` (holding a submission.py) is in this format."""

    def check_source(self, source: Path) -> None:
        """Refuse, with a SpecError, a submission.py this format cannot run, before it runs."""

    def executing(self, folder: Path) -> contextlib.AbstractContextManager[Sequence[Path]]:
        """The context the submission.py in `folder` is executed in (e.g. `algoperf`
        importable); it yields the places beyond `folder` where the file's helper modules
        were found (filled while it runs)."""

    def import_hint(self, error: Exception) -> str:
        """What to add to the one-line error of a submission.py that failed to import."""

    def adapt(self, module: ModuleType, folder: Path, search_point: tuple[int, int] | None,
              files: Sequence[Path] = ()) -> tuple[Any, Capabilities]:
        """The object the engine calls for this executed module (`files`: submission.py and
        the helper modules it imported), and what it needs."""
