"""How the suite's workloads are named and what loss they train with, in AlgoPerf's terms."""

from __future__ import annotations

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
