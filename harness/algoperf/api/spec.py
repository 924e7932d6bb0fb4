"""AlgoPerf's `algoperf.spec` names for JAX submissions: the enums, `ShapeTuple`,
`TrainingCompleteError`, the type aliases, and the `Workload` interface the suite's view implements.

Written from AlgoPerf's documented API (the enum members keep AlgoPerf's values so that code
comparing them, or their `.value`, behaves the same).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any


class LossType(enum.Enum):
    """The loss a workload trains with (decides `output_activation_fn`)."""

    SOFTMAX_CROSS_ENTROPY = 0
    SIGMOID_CROSS_ENTROPY = 1
    MEAN_SQUARED_ERROR = 2
    CTC_LOSS = 3
    MEAN_ABSOLUTE_ERROR = 4


class ForwardPassMode(enum.Enum):
    """Whether `model_fn` runs the model for training (dropout on) or evaluation."""

    TRAIN = 0
    EVAL = 1


class ParameterType(enum.Enum):
    """What a parameter leaf is, for optimizers that treat kinds of parameters differently."""

    WEIGHT = 0
    BIAS = 1
    CONV_WEIGHT = 2
    BATCH_NORM_SCALE = 3
    BATCH_NORM_BIAS = 4
    LAYER_NORM_SCALE = 5
    LAYER_NORM_BIAS = 6
    EMBEDDING = 7
    ATTENTION_Q = 8
    ATTENTION_K = 9
    ATTENTION_V = 10
    ATTENTION_OUT = 11
    ATTENTION_QKV = 12
    ATTENTION_KV = 13
    ATTENTION_BIAS = 14


class ShapeTuple:
    """A parameter's shape as one pytree leaf (a plain tuple would be flattened into ints)."""

    def __init__(self, shape_tuple: tuple[int, ...]):
        self.shape_tuple = tuple(shape_tuple)

    def __repr__(self) -> str:
        return f"ShapeTuple({self.shape_tuple})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShapeTuple) and self.shape_tuple == other.shape_tuple

    def __hash__(self) -> int:
        return hash(self.shape_tuple)


class TrainingCompleteError(Exception):
    """Raised by `update_params` to end training early; the trial then gets a final eval."""


Tensor = Any
Shape = Any
ParameterShapeTree = Any
ParameterKey = str
ParameterContainer = Any
ParameterTypeTree = Any
RandomState = Any
OptimizerState = Any
Hyperparameters = Any
Timing = int
Steps = int
ModelAuxiliaryState = Any
ModelInitState = tuple[Any, Any]
UpdateReturn = tuple[Any, Any, Any]
InitOptimizerFn = Callable[..., Any]
UpdateParamsFn = Callable[..., UpdateReturn]
PrepareForEvalFn = Callable[..., UpdateReturn]
DataSelectionFn = Callable[..., Any]


class Workload:
    """AlgoPerf's workload interface as submissions use it (see `harness.algoperf.workload_view`,
    which implements it over a suite workload). Only the members a submission may touch."""

    metrics_logger: Any = None

    @property
    def param_shapes(self) -> ParameterShapeTree:
        raise NotImplementedError

    @property
    def model_params_types(self) -> ParameterTypeTree:
        raise NotImplementedError

    @property
    def step_hint(self) -> int:
        raise NotImplementedError

    @property
    def loss_type(self) -> LossType:
        raise NotImplementedError

    def model_fn(self, params, augmented_and_preprocessed_input_batch, model_state, mode, rng,
                 update_batch_norm, dropout_rate=None):
        raise NotImplementedError

    def loss_fn(self, label_batch, logits_batch, mask_batch=None, label_smoothing=0.0):
        raise NotImplementedError
