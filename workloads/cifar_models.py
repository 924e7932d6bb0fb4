"""Flax models of the CIFAR-10 workloads: SimpleCNN(-BN), the thin ResNet with LayerNorm,
and ResNet-18 for 32x32 inputs. Inputs are NHWC float32; outputs are class logits."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

#: batch-norm settings shared by the CIFAR models (flax's momentum is the running-average decay).
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def scaled(channels: int, width: float) -> int:
    """`channels` times the width multiplier, at least 1."""
    return max(1, int(round(channels * width)))


class SimpleCNN(nn.Module):
    """Seed 002's SimpleCNN (the Keras CIFAR-10 example without dropout).

    conv3x3(32, same) conv3x3(32, valid) maxpool2 conv3x3(64, same) conv3x3(64, valid)
    maxpool2 dense(128) dense(classes), ReLU after every hidden layer; with `batchnorm`,
    BatchNorm after every hidden layer before its ReLU (SimpleCNN-BN) and no bias there.
    """

    width: float = 1.0
    batchnorm: bool = False
    num_classes: int = 10
    #: how the convolutions are computed (`lax.conv_general_dilated`'s signature)
    conv: Callable = lax.conv_general_dilated

    @nn.compact
    def __call__(self, x, train: bool):
        def hidden(layer, x):
            x = layer(x)
            if self.batchnorm:
                x = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                                 epsilon=BN_EPSILON)(x)
            return nn.relu(x)

        for channels in (32, 64):
            for padding in ("SAME", "VALID"):
                conv = nn.Conv(scaled(channels, self.width), (3, 3), padding=padding,
                               use_bias=not self.batchnorm, conv_general_dilated=self.conv)
                x = hidden(conv, x)
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = hidden(nn.Dense(scaled(128, self.width), use_bias=not self.batchnorm), x)
        return nn.Dense(self.num_classes)(x)


def make_norm(norm: str, train: bool, zero_scale: bool = False):
    """The normalisation layer `norm` ("layernorm" over channels, "batchnorm", "none");
    `zero_scale` starts a batch norm's scale at 0 (last norm of a residual branch)."""
    if norm == "layernorm":
        return nn.LayerNorm(epsilon=BN_EPSILON)
    if norm == "batchnorm":
        scale_init = nn.initializers.zeros if zero_scale else nn.initializers.ones
        return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                            epsilon=BN_EPSILON, scale_init=scale_init)
    if norm == "none":
        return lambda x: x
    raise ValueError(f"unknown norm {norm!r}; valid: layernorm, batchnorm, none")


class ResidualBlock(nn.Module):
    """Basic residual block: conv3x3-norm-relu-conv3x3-norm plus a (projected) shortcut, relu.

    `norm` is "layernorm" (over channels), "batchnorm" or "none"; convolutions carry a bias
    only when there is no normalisation after them.
    """

    features: int
    strides: int
    norm: str
    train: bool
    conv: Callable = lax.conv_general_dilated

    @nn.compact
    def __call__(self, x):
        bias = self.norm == "none"
        y = nn.Conv(self.features, (3, 3), (self.strides, self.strides), use_bias=bias,
                    conv_general_dilated=self.conv)(x)
        y = nn.relu(make_norm(self.norm, self.train)(y))
        y = nn.Conv(self.features, (3, 3), use_bias=bias, conv_general_dilated=self.conv)(y)
        y = make_norm(self.norm, self.train, zero_scale=True)(y)
        if x.shape[-1] != self.features or self.strides != 1:
            x = nn.Conv(self.features, (1, 1), (self.strides, self.strides), use_bias=bias,
                        conv_general_dilated=self.conv)(x)
            x = make_norm(self.norm, self.train)(x)
        return nn.relu(x + y)


class ResNet(nn.Module):
    """ResNet for 32x32 images: conv3x3 stem (stride 1, no max-pool), stages of residual
    blocks (the first block of every stage after the first has stride 2), global average
    pooling, dense classifier."""

    stage_features: Sequence[int]
    stage_blocks: Sequence[int]
    norm: str
    num_classes: int = 10
    #: how the convolutions are computed (`lax.conv_general_dilated`'s signature)
    conv: Callable = lax.conv_general_dilated

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Conv(self.stage_features[0], (3, 3), use_bias=self.norm == "none",
                    conv_general_dilated=self.conv)(x)
        x = nn.relu(make_norm(self.norm, train)(x))
        for stage, (features, blocks) in enumerate(zip(self.stage_features, self.stage_blocks)):
            for block in range(blocks):
                strides = 2 if stage > 0 and block == 0 else 1
                x = ResidualBlock(features, strides, self.norm, train, self.conv)(x)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes)(x)
