"""AlgoPerf's `algoperf.param_utils` for JAX: parameter shapes and parameter types of a
Flax parameter tree, classified from the module and leaf names Flax gives."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax

from harness.algoperf.api import spec


def jax_param_shapes(params: Any) -> Any:
    """The parameter tree with every array replaced by its `ShapeTuple`."""
    return jax.tree_util.tree_map(lambda x: spec.ShapeTuple(x.shape), params)


def _leaf_type(path: tuple[str, ...], ndim: int) -> spec.ParameterType:
    names = [p.lower() for p in path]
    leaf, modules = names[-1], " ".join(names[:-1])
    if "batchnorm" in modules or "bn" in names[:-1]:
        return spec.ParameterType.BATCH_NORM_SCALE if leaf == "scale" else spec.ParameterType.BATCH_NORM_BIAS
    if "layernorm" in modules or "norm" in modules:
        return spec.ParameterType.LAYER_NORM_SCALE if leaf == "scale" else spec.ParameterType.LAYER_NORM_BIAS
    if "embed" in modules or leaf == "embedding":
        return spec.ParameterType.EMBEDDING
    if leaf == "bias":
        return spec.ParameterType.BIAS
    return spec.ParameterType.CONV_WEIGHT if ndim >= 3 or "conv" in modules else spec.ParameterType.WEIGHT


def jax_param_types(param_shapes: Any, parent_name: str = "") -> Any:
    """The parameter-shape tree with every leaf replaced by its `ParameterType`.

    Classification by name: BatchNorm/LayerNorm scale and bias, embeddings, biases, and weights
    (convolution weights when the module is a Conv or the kernel has 3+ dimensions).
    """
    del parent_name

    def walk(node: Any, path: tuple[str, ...]) -> Any:
        if isinstance(node, Mapping):
            return {k: walk(v, path + (str(k),)) for k, v in node.items()}
        shape = node.shape_tuple if isinstance(node, spec.ShapeTuple) else tuple(node.shape)
        return _leaf_type(path, len(shape))

    return walk(param_shapes, ())
