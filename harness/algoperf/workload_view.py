"""A suite `Workload` seen through AlgoPerf's Workload API, as AlgoPerf submissions call it.

What a view provides: `param_shapes`, `model_params_types`, `step_hint`, `loss_type`,
`model_fn(params, batch, model_state, mode, rng, update_batch_norm, dropout_rate)`,
`loss_fn(label_batch, logits_batch, mask_batch, label_smoothing)` returning AlgoPerf's dict
(`summed`, `n_valid_examples`, `per_example`), `init_model_fn`, `is_output_params`,
`output_activation_fn`, `has_reached_validation_target`, the target, `eval_batch_size`,
`metrics_logger` (None; `attach_metrics_logger`), and the dataset's sizes
(`num_train_examples`, `num_validation_examples`, `num_test_examples`: the sizes of the
splits of the dataset the trial trains on, given by the runner through the adapter).

Every other attribute of AlgoPerf's `spec.Workload` the suite cannot answer raises
`UnsupportedAttribute` (an AttributeError: `hasattr` is False) with one line naming it and why:
`num_eval_train_examples`, `has_reached_test_target`/`test_target_value` (the suite evaluates
the target split only), `eval_period_time_sec`/`max_allowed_runtime_sec` (the suite evaluates
every `eval_every` steps and budgets steps, not seconds); so does any attribute of an AlgoPerf
workload's own class (`use_resnet`, ...).

What a suite workload cannot honour, and raises `Unsupported` for when asked:
- a `dropout_rate` its model does not train with (`names.dropout_problem`): a workload with a
  `dropout` knob (ogbg_molpcba) honours the rate equal to its knob; where AlgoPerf's own model
  has none (mnist, cifar: their `model_fn` deletes the rate, `names.IGNORES_DROPOUT`) any rate
  is ignored, as there; elsewhere only 0 (a traced rate cannot be checked here;
  `AlgoPerfSubmission` checks the hyperparameters and records what it ignored);
- `mode=TRAIN` with `update_batch_norm=False` on a model with batch statistics: the suite's
  `apply` updates them whenever it trains;
- `label_smoothing` other than 0 on a loss that is not a cross-entropy;
- AlgoPerf's input pipeline and evaluation (`_build_input_queue`, `eval_model`): the suite's runner
  feeds batches and evaluates.

Batches a submission sees are AlgoPerf's: `inputs`, `targets`, and `weights` (1.0 for a real
example, 0.0 for padding: the suite's `mask`). On graph workloads (ogbg_molpcba) `inputs` is
the padded `jraph.GraphsTuple` and `weights` is AlgoPerf ogbg's per-label mask (graphs x
tasks: the suite's `label_mask` times its graph `mask`); `loss_fn` then returns the same
`summed` and `n_valid_examples` as AlgoPerf's, with `per_example` per graph (summed over its
tasks) where AlgoPerf's is per label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from harness.algoperf.api import param_utils, spec
from harness.algoperf.names import LOSS_TYPES, algoperf_name, dropout_problem
from harness.errors import Unsupported, UnsupportedAttribute
from harness.spec import Workload

#: attributes of AlgoPerf's spec.Workload the suite cannot answer, and why
_UNANSWERED = {
    "num_eval_train_examples": "the suite evaluates the target split only, not the training set",
    "test_target_value": "the suite's workloads have one target, on their target split",
    "has_reached_test_target": "the suite's workloads have one target, on their target split",
    "eval_period_time_sec": "the suite evaluates every eval_every steps, not every so many "
                            "seconds",
    "max_allowed_runtime_sec": "the suite budgets steps (max_steps; step_hint), not seconds",
    "_eval_model_on_split": "the suite's runner evaluates; eval_results are passed to submissions",
}


def to_suite_batch(batch: Mapping[str, Any]) -> dict[str, Any]:
    """AlgoPerf batch (`weights`) -> suite batch (`mask`); other keys unchanged. Per-label
    weights (ogbg: graphs x tasks) become the suite's `label_mask`, and a graph is real
    (`mask`) when any of its labels is weighted (a graph with none adds nothing to the loss)."""
    out = {k: v for k, v in batch.items() if k != "weights"}
    weights = batch.get("weights")
    if weights is not None and jnp.ndim(weights) == 2:
        out["label_mask"] = weights
        out["mask"] = (jnp.sum(weights, axis=-1) > 0).astype(jnp.float32)
    elif weights is not None:
        out["mask"] = weights
    elif "mask" not in out:
        out["mask"] = jnp.ones(jax.tree_util.tree_leaves(batch["targets"])[0].shape[:1], jnp.float32)
    return out


def to_algoperf_batch(batch: Mapping[str, Any]) -> dict[str, Any]:
    """Suite batch (`mask`) -> AlgoPerf batch (`weights`); other keys unchanged. A graph batch's
    per-label mask (`label_mask`, graphs x tasks) times its graph mask is AlgoPerf ogbg's
    `weights` (0 for a missing label and for every label of a padding graph)."""
    out = {k: v for k, v in batch.items() if k not in ("mask", "label_mask")}
    if "label_mask" in batch:
        out["weights"] = batch["label_mask"] * batch["mask"][:, None]
    elif "mask" in batch:
        out["weights"] = batch["mask"]
    return out


def _concrete_float(x: Any) -> float | None:
    """The value of a Python or concrete number; None when it is traced."""
    try:
        return float(x)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError, TypeError):
        return None


class AlgoPerfWorkload(spec.Workload):
    """AlgoPerf's Workload API over one suite workload variant (see the module docstring)."""

    def __init__(self, workload: Workload, split_sizes: Mapping[str, int] | None = None):
        self.workload = workload
        self.metrics_logger = None
        self._shapes = None
        self._sizes = dict(split_sizes or {})

    def __getattr__(self, name: str) -> Any:
        """Attributes of AlgoPerf's Workload API (or an AlgoPerf workload's class) the view has
        not: one line naming it (an AttributeError, so hasattr() is False)."""
        if name.startswith("__") or name in ("workload", "_sizes", "_shapes"):
            raise AttributeError(name)
        prop = getattr(type(self), name, None)
        if isinstance(prop, property):  # the property raised AttributeError: its own message
            return prop.fget(self)
        why = _UNANSWERED.get(name, "AlgoPerf's Workload API attribute the suite's view does not "
                                    "offer (harness/algoperf/workload_view.py lists what it does)")
        raise UnsupportedAttribute(f"workload.{name} on {self.workload.spec}: {why}")

    def attach_metrics_logger(self, metrics_logger: Any) -> None:
        self.metrics_logger = metrics_logger

    # -- identity ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """AlgoPerf's name for this workload (what `get_batch_size` is asked about)."""
        return algoperf_name(self.workload.name)

    def __repr__(self) -> str:
        return f"AlgoPerfWorkload({self.workload.spec})"

    # -- parameters -------------------------------------------------------------------------

    def _param_shape_tree(self) -> Any:
        if self._shapes is None:
            params, _ = jax.eval_shape(self.workload.init, jax.random.PRNGKey(0))
            self._shapes = param_utils.jax_param_shapes(params)
        return self._shapes

    @property
    def param_shapes(self) -> Any:
        return self._param_shape_tree()

    @property
    def model_params_types(self) -> Any:
        return param_utils.jax_param_types(self._param_shape_tree())

    def init_model_fn(self, rng: jax.Array) -> tuple[Any, Any]:
        """(params, model_state) of the suite workload."""
        return self.workload.init(rng)

    def is_output_params(self, param_key: str) -> bool:
        """True for the last top-level module of the parameter tree (the output layer)."""
        keys = list(self._param_shape_tree())
        return bool(keys) and param_key == keys[-1]

    # -- schedule, target, data sizes -------------------------------------------------------

    @property
    def step_hint(self) -> int:
        """The workload's `step_hint` where it defines one (algoperf_mnist: AlgoPerf's 7813),
        else its step budget `max_steps`."""
        return int(getattr(self.workload, "step_hint", self.workload.max_steps))

    @property
    def loss_type(self) -> spec.LossType:
        if self.workload.name not in LOSS_TYPES:
            raise Unsupported(f"{self.workload.name} has no AlgoPerf loss type")
        return LOSS_TYPES[self.workload.name]

    @property
    def target_metric_name(self) -> str:
        return self.workload.target.metric

    @property
    def validation_target_value(self) -> float:
        return self.workload.target.value

    def has_reached_validation_target(self, eval_result: Mapping[str, float]) -> bool:
        """The suite's target on `eval_result` (AlgoPerf's `validation/` prefix allowed)."""
        prefix = f"{self.workload.target.split}/"
        metrics = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in eval_result.items()}
        return self.workload.target.reached(metrics)

    @property
    def eval_batch_size(self) -> int:
        return self.workload.eval_batch_size

    def _size(self, split: str, attribute: str) -> int:
        if split not in self._sizes:
            raise UnsupportedAttribute(
                f"workload.{attribute} on {self.workload.spec}: the dataset has no {split!r} split"
                if self._sizes else f"workload.{attribute} on {self.workload.spec}: asked "
                "before the runner gave the dataset's sizes")
        return int(self._sizes[split])

    @property
    def num_train_examples(self) -> int:
        return self._size("train", "num_train_examples")

    @property
    def num_validation_examples(self) -> int:
        return self._size("validation", "num_validation_examples")

    @property
    def num_test_examples(self) -> int | None:
        """The test split's size; None without one (AlgoPerf's value for 'no test set')."""
        return self._size("test", "num_test_examples") if "test" in self._sizes else None

    @property
    def train_mean(self) -> Any:
        return getattr(self.workload, "train_mean", 0.0)

    @property
    def train_stddev(self) -> Any:
        return getattr(self.workload, "train_stddev", 1.0)

    # -- model and loss ---------------------------------------------------------------------

    def model_fn(self, params: Any, augmented_and_preprocessed_input_batch: Mapping[str, Any],
                 model_state: Any, mode: spec.ForwardPassMode, rng: Any, update_batch_norm: bool,
                 dropout_rate: float | None = None, *, use_running_average_bn: bool | None = None
                 ) -> tuple[jax.Array, Any]:
        """(logits, new model state): the suite workload's `apply`, train=(mode is TRAIN).
        `use_running_average_bn` (AlgoPerf's CIFAR ResNet's keyword) is accepted where it
        agrees with the suite's apply: batch statistics in training, averages in evaluation."""
        rate = None if dropout_rate is None else _concrete_float(dropout_rate)
        problem = None if rate is None else dropout_problem(self.workload, "dropout_rate", rate)
        if problem is not None:
            raise Unsupported(problem)
        train = getattr(mode, "name", mode) == "TRAIN"
        has_state = bool(jax.tree_util.tree_leaves(model_state))
        if train and has_state and (not update_batch_norm or use_running_average_bn):
            raise Unsupported(f"{self.workload.spec}: training without updating batch statistics "
                              "(update_batch_norm=False) is not available")
        state = {} if model_state is None else model_state
        outputs, new_state = self.workload.apply(params, state, augmented_and_preprocessed_input_batch["inputs"],
                                                 train=train, rng=rng)
        if model_state is None and not jax.tree_util.tree_leaves(new_state):
            new_state = None
        return outputs, new_state

    def loss_fn(self, label_batch: Any, logits_batch: jax.Array, mask_batch: Any = None,
                label_smoothing: float = 0.0) -> dict[str, jax.Array]:
        """AlgoPerf's loss dict: `summed` (masked sum), `n_valid_examples`, `per_example`.

        The per-example loss is the suite workload's own (`loss_per_example`); label smoothing
        uses `optax.smooth_labels` and is available for softmax cross-entropy only.
        """
        kind = self.loss_type
        if mask_batch is None:
            shape = jnp.shape(label_batch) if kind is spec.LossType.SIGMOID_CROSS_ENTROPY else \
                logits_batch.shape[:1]
            mask_batch = jnp.ones(shape, logits_batch.dtype)
        batch = to_suite_batch({"targets": label_batch, "weights": mask_batch})
        smoothing = _concrete_float(label_smoothing)
        if smoothing is not None and smoothing == 0.0:
            per_example = self.workload.loss_per_example(logits_batch, batch)
        elif kind is spec.LossType.SOFTMAX_CROSS_ENTROPY:
            onehot = jax.nn.one_hot(label_batch, logits_batch.shape[-1])
            targets = optax.smooth_labels(onehot, label_smoothing)
            per_example = optax.softmax_cross_entropy(logits_batch, targets) * (batch["mask"] > 0)
        elif kind is spec.LossType.SIGMOID_CROSS_ENTROPY:
            # AlgoPerf ogbg's: optax.smooth_labels over the task axis, then the masked loss
            smoothed = optax.smooth_labels(jnp.asarray(label_batch, logits_batch.dtype),
                                           label_smoothing)
            per_example = self.workload.loss_per_example(logits_batch, {**batch, "targets": smoothed})
        else:
            raise Unsupported(f"{self.workload.spec}: label smoothing needs a cross-entropy "
                              f"loss, not {kind.name}")
        return {"summed": per_example.sum(), "n_valid_examples": self.workload.loss_normalizer(batch),
                "per_example": per_example}

    def output_activation_fn(self, logits_batch: jax.Array, framework: str = "jax") -> jax.Array:
        """Logits to probabilities as the loss type says (JAX only)."""
        if framework != "jax":
            raise Unsupported("only the JAX framework is supported")
        kind = self.loss_type
        if kind in (spec.LossType.SOFTMAX_CROSS_ENTROPY, spec.LossType.CTC_LOSS):
            return jax.nn.softmax(logits_batch)
        if kind is spec.LossType.SIGMOID_CROSS_ENTROPY:
            return jax.nn.sigmoid(logits_batch)
        return logits_batch

    # -- what the suite does itself ---------------------------------------------------------

    def _build_input_queue(self, *args: Any, **kwargs: Any) -> Any:
        raise Unsupported("the suite's runner feeds the batches; AlgoPerf forbids submissions to "
                          "build input queues too")

    def eval_model(self, *args: Any, **kwargs: Any) -> Any:
        raise Unsupported("the suite's runner evaluates; eval_results are passed to submissions")
