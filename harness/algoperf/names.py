"""How the suite's workloads are named and what loss they train with, in AlgoPerf's terms."""

from __future__ import annotations

from typing import Any

from harness.algoperf.api.spec import LossType

#: suite workload -> the AlgoPerf workload name a submission's `get_batch_size` is asked about.
#: fashion_mnist_mlp has no AlgoPerf counterpart; it is asked as "mnist" (same shapes and size).
ALGOPERF_NAMES: dict[str, str] = {
    "algoperf_mnist": "mnist",
    "mnist_mlp": "mnist",
    "fashion_mnist_mlp": "mnist",
    "cifar_simplecnn": "cifar",
    "cifar_resnet_ln": "cifar",
    "cifar_resnet18": "cifar",
    "ogbg_molpcba": "ogbg",
}

#: suite workload -> AlgoPerf's LossType of its training loss
LOSS_TYPES: dict[str, LossType] = {
    "algoperf_mnist": LossType.SOFTMAX_CROSS_ENTROPY,
    "mnist_mlp": LossType.SOFTMAX_CROSS_ENTROPY,
    "fashion_mnist_mlp": LossType.SOFTMAX_CROSS_ENTROPY,
    "cifar_simplecnn": LossType.SOFTMAX_CROSS_ENTROPY,
    "cifar_resnet_ln": LossType.SOFTMAX_CROSS_ENTROPY,
    "cifar_resnet18": LossType.SOFTMAX_CROSS_ENTROPY,
    "ogbg_molpcba": LossType.SIGMOID_CROSS_ENTROPY,
    "lowrank": LossType.MEAN_SQUARED_ERROR,
    "uv": LossType.MEAN_SQUARED_ERROR,
    "noisy_quadratic": LossType.MEAN_SQUARED_ERROR,
}


def algoperf_name(suite_name: str) -> str:
    """The AlgoPerf name of a suite workload; the suite's own name where AlgoPerf has none."""
    return ALGOPERF_NAMES.get(suite_name, suite_name)


#: AlgoPerf workloads whose model has no dropout: their `model_fn` deletes `dropout_rate`
#: (and `aux_dropout_rate` is never read), so any value a submission passes is ignored there.
#: On other workloads a non-zero rate the suite's model cannot apply is refused.
IGNORES_DROPOUT: frozenset[str] = frozenset({"mnist", "cifar"})


def ignores_dropout(suite_name: str) -> bool:
    """Whether AlgoPerf's counterpart of this suite workload ignores dropout rates."""
    return algoperf_name(suite_name) in IGNORES_DROPOUT


#: the suite workloads' knob that sets the rate AlgoPerf passes as `dropout_rate` (ogbg's
#: GNN: its update MLPs' dropout, AlgoPerf's default 0.1 there too)
DROPOUT_KNOB = "dropout"


def dropout_problem(workload: Any, key: str, value: Any) -> str | None:
    """None when `workload` honours or ignores the dropout hyperparameter `key`=`value` as
    AlgoPerf's counterpart does; else why not, in one line. A workload with a `dropout` knob
    honours `dropout_rate` equal to its knob (the rate its model trains with); one whose
    AlgoPerf counterpart has no dropout (IGNORES_DROPOUT) ignores any rate; elsewhere only 0."""
    variant = getattr(workload, "variant", {})
    if key == "dropout_rate" and DROPOUT_KNOB in variant:
        if value is None or float(value) == float(variant[DROPOUT_KNOB]):
            return None
        return (f"{workload.spec} trains with dropout {variant[DROPOUT_KNOB]} (its knob "
                f"'{DROPOUT_KNOB}'): {key}={value} needs the variant with "
                f"{DROPOUT_KNOB}={value}")
    if value in (None, 0, 0.0) or ignores_dropout(workload.name):
        return None
    return f"{workload.spec} has no dropout: hyperparameter {key}={value} cannot be honoured (use 0.0)"
