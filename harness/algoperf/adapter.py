"""Run an AlgoPerf JAX submission, unmodified, through the suite's submission API.

`AlgoPerfSubmission` wraps the imported AlgoPerf module and offers the suite's four functions
(`init_optimizer_state`, `update_params`, `get_batch_size`, `data_selection`, see
`harness.spec.SubmissionModule`) plus `prepare_for_eval`, so the runner traces AlgoPerf's
`data_selection` + `update_params` into its compiled chunks like any suite submission:

- the workload is an `AlgoPerfWorkload` view (AlgoPerf's Workload API) of the suite workload,
  and `get_batch_size` is asked with AlgoPerf's workload name (mnist, cifar, ogbg, ...);
- hyperparameters are a namedtuple (attribute access, `hasattr`), as AlgoPerf passes them;
- `data_selection` gets an input queue: each `next()` draws one batch from the suite's sampler
  (the first with the step's data key itself, so batches match a native submission's), with
  AlgoPerf's `weights` key for the suite's `mask`;
- the optimizer state AlgoPerf submissions return usually holds Python objects (the optax update
  function): only its array leaves travel through the compiled chunk, the rest is kept here;
- pmap-era submissions (the source calls `pmap`) see parameters, model state and batches with a
  leading device axis of `jax.local_device_count()` (size 1 on one device; `pmap` inside the
  runner's `jit`/`lax.scan` works there and on several local devices); the suite keeps plain
  parameters, so evals and curvature snapshots see the model as usual;
- AlgoPerf's `update_params` returns no loss, so the batch loss the runner records is the suite
  workload's loss at the parameters before the update (one extra forward pass; measured in
  `benchmarks/algoperf_adapter.py`).

Inside a compiled chunk `global_step` is traced. A submission that needs it as a Python int
(branches on it, calls int() on it), reads `eval_results` or `train_state`, or raises
`TrainingCompleteError` while traced makes the adapter raise `NeedsConcreteStep` at trace time,
with the reason; the runner's concrete-step mode (see `harness.algoperf.hooks`) then calls the
same functions eagerly with a Python int step, as AlgoPerf's own runner does.
"""

from __future__ import annotations

import ast
import collections
import contextlib
import enum
import functools
import inspect
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType, ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from harness.algoperf.api import spec as ap_spec
from harness.algoperf.jax_compat import removed_api
from harness.algoperf.names import algoperf_name, dropout_problem, ignores_dropout
from harness.algoperf.own_files import OwnFiles
from harness.algoperf.shim import installed
from harness.algoperf.workload_view import (AlgoPerfWorkload, Unsupported, to_algoperf_batch,
                                            to_suite_batch)
from harness.spec import SpecError, Workload

#: the Python int steps a traced call that failed is probed with: a step-gated host read
#: (`if step % k == 0 and float(loss) < best`) passes at one of them
_PROBE_STEPS = (0, 1)
#: what tracing raises where Python needs an array's value
TRACER_ERRORS = (jax.errors.TracerBoolConversionError, jax.errors.ConcretizationTypeError,
                  jax.errors.TracerIntegerConversionError)


class Convention(enum.Enum):
    """How a submission lays out its arrays: plain (jit-era AlgoPerf) or with a leading device
    axis (pmap-era AlgoPerf)."""

    JIT = "jit"
    PMAP = "pmap"


class EagerReason(enum.Enum):
    """Why a submission cannot run inside a compiled chunk with a traced step."""

    GLOBAL_STEP = "uses global_step as a Python value (branches on it, int() of it)"
    EVAL_RESULTS = "reads eval_results"
    TRAIN_STATE = "reads train_state"
    TRAINING_COMPLETE = "raises TrainingCompleteError"
    HOST_VALUES = ("uses array values in Python (an `if` on an array in its state, float() of "
                   "a loss) as AlgoPerf's eager calls allow")
    INIT_VALUES = "needs the parameters' values in init_optimizer_state (saves or reads them)"
    STATE_STRUCTURE = "changes its optimizer state's structure between calls"
    HOST_STATE = "changes Python values in its optimizer state (a counter, an object) each step"
    HOST_ARRAYS = "converts traced values to NumPy (host arrays in its state or its step)"


class NeedsConcreteStep(SpecError):
    """Raised while tracing a compiled chunk: this submission needs a concrete Python int
    `global_step` (see `EagerReason`); the runner catches it and switches to concrete steps."""

    def __init__(self, reason: EagerReason, submission: str = ""):
        self.reason = reason
        who = f"submission {submission} " if submission else "the submission "
        super().__init__(f"{who}{reason.value}: it cannot run inside a compiled chunk and needs "
                         "the runner's concrete-step mode (a Python int global_step each step)")


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic))


def _same(new: Any, old: Any) -> bool:
    """Whether a kept (non-array) optimizer-state leaf is unchanged: the same object, or equal."""
    if new is old:
        return True
    try:
        return bool(new == old)
    except Exception:  # noqa: BLE001 - incomparable objects are taken as changed
        return False


class _TracedReadGuard:
    """Stands for eval_results / train_state inside a compiled chunk: reading it raises
    NeedsConcreteStep (its value would be frozen into the compiled program)."""

    def __init__(self, reason: EagerReason, name: str):
        self._reason, self._name = reason, name

    def _deny(self, *args: Any) -> Any:
        raise NeedsConcreteStep(self._reason, self._name)

    __getitem__ = __len__ = __iter__ = __contains__ = __bool__ = _deny
    keys = items = values = get = index = count = _deny


class _InputQueue(Iterator):
    """AlgoPerf's input queue over the suite's sampler: batch i drawn with fold_in(key, i) (batch
    0 with the key itself), in AlgoPerf's layout."""

    def __init__(self, next_batch: Callable[[jax.Array], Mapping[str, Any]], rng: jax.Array,
                 layout: Callable[[Any], Any]):
        self._next_batch, self._rng, self._layout, self._count = next_batch, rng, layout, 0

    def __next__(self) -> dict[str, Any]:
        key = self._rng if self._count == 0 else jax.random.fold_in(self._rng, self._count)
        self._count += 1
        return self._layout(to_algoperf_batch(self._next_batch(key)))


@functools.lru_cache(maxsize=64)
def _hyperparameters_class(names: tuple[str, ...]) -> type:
    try:
        return collections.namedtuple("Hyperparameters", names)
    except ValueError as e:
        raise SpecError(f"hyperparameter names must be Python identifiers: {e}") from None


def hyperparameters(hparams: Mapping[str, Any]) -> tuple:
    """The hyperparameters as AlgoPerf passes them: a namedtuple named Hyperparameters."""
    return _hyperparameters_class(tuple(hparams))(**hparams)


#: AlgoPerf's prepare_for_eval parameters: (optimizer_state, current_param_container,
#: model_state), what it returns, are its 7th, 2nd and 4th
_PREPARE_RETURNS = (6, 1, 3)


def returns_its_inputs(fn: Callable) -> bool:
    """Whether `fn` (a prepare_for_eval) provably returns (optimizer_state,
    current_param_container, model_state) unchanged: its body, besides a docstring, `del`
    and `pass`, is one `return` of those three parameters in that order. False when its source
    cannot be read or says anything else."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    args = [a.arg for a in node.args.posonlyargs + node.args.args]
    if len(args) <= max(_PREPARE_RETURNS):
        return False
    body = [n for n in node.body if not isinstance(n, (ast.Delete, ast.Pass)) and not (
        isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    if len(body) != 1 or not isinstance(body[0], ast.Return):
        return False
    value = body[0].value
    return (isinstance(value, ast.Tuple) and len(value.elts) == 3
            and all(isinstance(e, ast.Name) for e in value.elts)
            and [e.id for e in value.elts] == [args[i] for i in _PREPARE_RETURNS])


class AlgoPerfSubmission:
    """An AlgoPerf JAX submission module behind the suite's submission API (module docstring)."""

    def __init__(self, module: ModuleType, name: str, convention: Convention):
        self.module, self.name, self.convention = module, name, convention
        self.eval_results: list[tuple[int, dict[str, float]]] = []
        self.train_state: dict[str, Any] = {"validation_goal_reached": False, "training_complete": False,
                                            "accumulated_submission_time": 0.0,
                                            "accumulated_eval_time": 0.0, "last_eval_time": 0.0}
        #: (k, seed) of the search-space point the hyperparameters came from; None: hparams.json
        self.search_point: tuple[int, int] | None = None
        #: a self-tuning submission (no hparams.json, no search space): its functions get
        #: `hyperparameters=None`, as AlgoPerf's self-tuning ruleset passes them
        self.self_tuning = False
        self._views: dict[int, AlgoPerfWorkload] = {}
        #: the folder the files the submission writes itself (checkpoints) go to
        self.own_files = OwnFiles(name)
        #: sizes of the splits of the dataset the runner trains on (`use_dataset`)
        self.split_sizes: dict[str, int] = {}

        self._loss_fns: dict[int, Callable] = {}
        self._opt_treedef = None
        self._opt_static: list[tuple[int, Any]] = []
        self._wants_train_state = "train_state" in inspect.signature(module.update_params).parameters

    # -- layout -----------------------------------------------------------------------------

    @property
    def devices(self) -> int:
        """Size of the leading device axis a pmap-era submission sees (0 for jit-era)."""
        return jax.local_device_count() if self.convention is Convention.PMAP else 0

    def ignored_hparams(self, workload: Workload, hparams: Mapping[str, Any] | None
                        ) -> dict[str, Any]:
        """The hyperparameters `workload` ignores as AlgoPerf's counterpart does (a non-zero
        dropout rate, `dropout_rate`/`aux_dropout_rate`/..., on a model AlgoPerf gives no
        dropout: mnist, cifar); raises Unsupported for one it can neither honour nor ignore
        (`names.dropout_problem`; a rate equal to the workload's dropout knob is honoured)."""
        ignored = {}
        for key, value in (hparams or {}).items():
            if "dropout" not in key:
                continue
            problem = dropout_problem(workload, key, value)
            if problem is not None:
                raise Unsupported(problem)
            if value not in (None, 0, 0.0) and ignores_dropout(workload.name):
                ignored[key] = value
        return ignored

    def use_dataset(self, split_sizes: Mapping[str, int]) -> None:
        """The runner says which dataset the next trials train on (its splits' sizes: the
        view's num_train_examples, ...)."""
        if dict(split_sizes) != self.split_sizes:
            self.split_sizes = dict(split_sizes)
            self._views.clear()

    def view(self, workload: Workload) -> AlgoPerfWorkload:
        """The one AlgoPerf view of `workload` (pmap/jit static arguments hash by identity)."""
        if isinstance(workload, AlgoPerfWorkload):
            return workload
        view = self._views.get(id(workload))
        if view is None or view.workload is not workload:
            view = self._views[id(workload)] = AlgoPerfWorkload(workload, self.split_sizes)
        return view

    def _replicate(self, tree: Any) -> Any:
        n = self.devices
        if not n:
            return tree
        return jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x)), tree)

    def _unreplicate(self, tree: Any) -> Any:
        return tree if not self.devices else jax.tree_util.tree_map(lambda x: x[0], tree)

    def _shard_batch(self, batch: Any) -> Any:
        n = self.devices
        if not n:
            return batch
        if n > 1 and hasattr(batch.get("inputs"), "n_node"):
            raise Unsupported(f"submission {self.name} is pmap-era: a padded graph batch cannot "
                              f"be split across {n} local devices (run it on one device)")

        def shard(x):
            if x.shape[0] % n:
                raise SpecError(f"batch size {x.shape[0]} is not divisible by the {n} local devices")
            return x.reshape((n, x.shape[0] // n) + x.shape[1:])

        return jax.tree_util.tree_map(shard, batch)

    def _unshard_batch(self, batch: Any) -> Any:
        if not self.devices:
            return batch
        return jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), batch)

    def _batch_loss(self, workload: Workload) -> Callable:
        """The suite's training loss on a batch, compiled once (inlined inside a chunk)."""
        fn = self._loss_fns.get(id(workload))
        if fn is None:
            fn = self._loss_fns[id(workload)] = jax.jit(
                lambda p, s, b, r: workload.loss(p, s, b, train=True, rng=r)[0])
        return fn

    # -- optimizer state: arrays through the chunk, Python objects kept here ----------------

    def _split_opt_state(self, state: Any, traced: bool = False) -> list[Any]:
        """The optimizer state's array leaves (NumPy arrays included: they travel as arrays);
        its other leaves (Python objects, the leaves of an unregistered class) are kept here.
        A kept leaf the submission replaced (a Python counter it increments) is taken as the
        new value between concrete steps; inside a compiled chunk its new value would be
        frozen at trace time, so that raises NeedsConcreteStep; so does a state whose structure
        changes (a field None at one step, a tree at another), which concrete steps allow."""
        leaves, treedef = jax.tree_util.tree_flatten(state)
        if self._opt_treedef is not None and treedef != self._opt_treedef and traced:
            raise NeedsConcreteStep(EagerReason.STATE_STRUCTURE, self.name)
        if self._opt_treedef is None or treedef != self._opt_treedef:  # first, or new structure
            self._opt_treedef = treedef
            self._opt_static = [(i, x) for i, x in enumerate(leaves) if not _is_array(x)
                                and not isinstance(x, jax.core.Tracer)]
        changed = [(i, leaves[i]) for i, old in self._opt_static if not _same(leaves[i], old)]
        if changed and traced:
            raise NeedsConcreteStep(EagerReason.HOST_STATE, self.name)
        if changed:
            updated = dict(self._opt_static)
            updated.update(changed)
            self._opt_static = sorted(updated.items())
        static = {i for i, _ in self._opt_static}
        return [x for i, x in enumerate(leaves) if i not in static]

    def _join_opt_state(self, arrays: Sequence[Any]) -> Any:
        leaves: list[Any] = list(arrays)
        for i, x in self._opt_static:
            leaves.insert(i, x)
        return jax.tree_util.tree_unflatten(self._opt_treedef, leaves)

    # -- calls into the submission ----------------------------------------------------------

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        """While the submission's code runs: `algoperf` importable (the shim) and the files it
        writes itself kept in its own folder (`harness.algoperf.own_files`)."""
        with installed(), self.own_files.redirected(self.module):
            yield

    def _raise_if_removed_api(self, error: BaseException) -> None:
        """A call of a JAX API removed since the file was written: one line saying so."""
        removed = removed_api(error)
        if removed is not None:
            raise SpecError(f"submission {self.name}: {removed}") from error

    def _hyperparameters(self, hparams: Mapping[str, Any]) -> tuple | None:
        return None if self.self_tuning and not hparams else hyperparameters(hparams)

    def _guarded(self, value: Any, reason: EagerReason, traced: bool) -> Any:
        return _TracedReadGuard(reason, self.name) if traced else value

    def _call(self, fn: Callable, kwargs: dict[str, Any], step: Any) -> Any:
        """Call `fn(**kwargs, global_step=step)` with the shim installed; with a traced step,
        turn a need for a concrete step into NeedsConcreteStep (probing with the steps of
        `_PROBE_STEPS`: when none gets past the tracer error, the step is not to blame and the
        error stands)."""
        traced = isinstance(step, jax.core.Tracer)
        with self._running():
            try:
                return fn(**kwargs, global_step=step)
            except (AttributeError, ModuleNotFoundError) as error:
                self._raise_if_removed_api(error)
                raise
            except jax.errors.TracerArrayConversionError as error:
                if not traced:
                    raise
                raise NeedsConcreteStep(EagerReason.HOST_ARRAYS, self.name) from error
            except ap_spec.TrainingCompleteError:
                if traced:
                    raise NeedsConcreteStep(EagerReason.TRAINING_COMPLETE, self.name) from None
                raise
            except TRACER_ERRORS as error:
                if not traced:
                    raise
                if not any(self._probe(fn, kwargs, probe) for probe in _PROBE_STEPS):
                    raise error from None
                raise NeedsConcreteStep(EagerReason.GLOBAL_STEP, self.name) from error

    @staticmethod
    def _probe(fn: Callable, kwargs: dict[str, Any], step: int) -> bool:
        """Whether calling `fn` with the Python int `step` gets past the tracer errors (so the
        traced step was what stopped it)."""
        try:
            fn(**kwargs, global_step=step)
        except TRACER_ERRORS:
            return False
        except Exception:  # noqa: BLE001 - any other outcome means the step mattered
            pass
        return True

    def _common(self, workload: Workload, params: Any, model_state: Any, opt_state: Sequence[Any],
                hparams: Mapping[str, Any]) -> dict[str, Any]:
        return {"workload": self.view(workload),
                "current_param_container": self._replicate(params),
                "model_state": self._replicate(model_state),
                "hyperparameters": self._hyperparameters(hparams),
                "optimizer_state": self._join_opt_state(opt_state)}

    # -- the suite's submission API ---------------------------------------------------------

    def get_batch_size(self, workload_name: str) -> int:
        name = algoperf_name(workload_name)
        try:
            with self._running():
                return self.module.get_batch_size(name)
        except (KeyError, ValueError) as e:
            raise SpecError(f"submission {self.name} has no batch size for AlgoPerf workload "
                            f"{name!r} (suite workload {workload_name}): {type(e).__name__}: {e}") from None

    def init_optimizer_state(self, workload: Workload, params: Any, model_state: Any,
                             hparams: Mapping[str, Any], rng: jax.Array) -> list[Any]:
        self.ignored_hparams(workload, hparams)
        self._opt_treedef = None
        traced = any(isinstance(x, jax.core.Tracer)
                     for x in jax.tree_util.tree_leaves((params, model_state, rng)))
        with self._running():
            try:
                state = self.module.init_optimizer_state(
                    self.view(workload), self._replicate(params), self._replicate(model_state),
                    self._hyperparameters(hparams), rng)
            except (AttributeError, ModuleNotFoundError) as error:
                self._raise_if_removed_api(error)
                if traced:
                    raise NeedsConcreteStep(EagerReason.INIT_VALUES, self.name) from error
                raise
            except SpecError:
                raise
            except Exception as error:
                # AlgoPerf calls it eagerly: one that needs the values (saves a checkpoint of
                # the parameters, reads them on the host) is called so in concrete-step mode,
                # where a genuine error shows again, untraced
                if traced:
                    raise NeedsConcreteStep(EagerReason.INIT_VALUES, self.name) from error
                raise
        # the runner donates its state: an optimizer state holding the parameters themselves
        # (a copy to train, an average) must own its buffers
        given = {id(x) for x in jax.tree_util.tree_leaves((params, model_state))}
        return [jnp.copy(x) if id(x) in given else x for x in self._split_opt_state(state)]

    def data_selection(self, workload: Workload, next_batch: Callable[[jax.Array], Any],
                       opt_state: Sequence[Any], params: Any, model_state: Any,
                       hparams: Mapping[str, Any], step: Any, rng: jax.Array) -> dict[str, Any]:
        """A batch in AlgoPerf's layout (what `update_params` below takes)."""
        common = self._common(workload, params, model_state, opt_state, hparams)
        queue = _InputQueue(next_batch, rng, self._shard_batch)

        def select(global_step):
            return self.module.data_selection(common["workload"], queue, common["optimizer_state"],
                                              common["current_param_container"],
                                              common["model_state"], common["hyperparameters"],
                                              global_step, rng)

        return self._call(select, {}, step)

    def update_params(self, workload: Workload, params: Any, model_state: Any,
                      opt_state: Sequence[Any], batch: Mapping[str, Any],
                      hparams: Mapping[str, Any], step: Any, rng: jax.Array
                      ) -> tuple[Any, Any, list[Any], dict[str, jax.Array]]:
        traced = isinstance(step, jax.core.Tracer)
        loss = self._batch_loss(workload)(params, model_state,
                                          to_suite_batch(self._unshard_batch(batch)), rng)
        kwargs = self._common(workload, params, model_state, opt_state, hparams)
        view = kwargs["workload"]
        kwargs.update(current_params_types=view.model_params_types, batch=batch,
                      loss_type=view.loss_type, rng=rng,
                      eval_results=self._guarded(list(self.eval_results), EagerReason.EVAL_RESULTS, traced))
        if self._wants_train_state:
            kwargs["train_state"] = self._guarded(MappingProxyType(dict(self.train_state)),
                                                  EagerReason.TRAIN_STATE, traced)
        new_opt, new_params, new_state = self._call(self.module.update_params, kwargs, step)
        return (self._unreplicate(new_params), self._settle_state(new_state, model_state),
                self._split_opt_state(new_opt, traced), {"loss": loss})

    def prepare_for_eval(self, workload: Workload, params: Any, model_state: Any,
                         opt_state: Sequence[Any], hparams: Mapping[str, Any], step: int,
                         rng: jax.Array) -> tuple[Any, Any, list[Any]]:
        """AlgoPerf's prepare_for_eval (identity when the submission has none):
        (params, model_state, opt_state) to evaluate and to continue training from."""
        fn = getattr(self.module, "prepare_for_eval", None)
        if fn is None:
            return params, model_state, list(opt_state)
        kwargs = self._common(workload, params, model_state, opt_state, hparams)
        view = kwargs["workload"]
        kwargs.update(current_params_types=view.model_params_types, loss_type=view.loss_type,
                      rng=rng, eval_results=list(self.eval_results))
        new_opt, new_params, new_state = self._call(fn, kwargs, step)
        return (self._unreplicate(new_params), self._settle_state(new_state, model_state),
                self._split_opt_state(new_opt))

    @property
    def has_prepare_for_eval(self) -> bool:
        """A prepare_for_eval the runner must call: one that is not a no-op (`is_identity`:
        AlgoPerf's baselines define one that returns its inputs unchanged; calling it changes
        nothing, so such a submission trains in compiled chunks like one without it)."""
        fn = getattr(self.module, "prepare_for_eval", None)
        return callable(fn) and not returns_its_inputs(fn)

    def _settle_state(self, new_state: Any, old_state: Any) -> Any:
        """The model state back in the suite's form ({} where AlgoPerf uses None)."""
        return old_state if new_state is None else self._unreplicate(new_state)
