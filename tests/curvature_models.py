"""Small real workloads for the curvature tests: a tiny MLP, a linear MSE model, a BN + dropout net."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from harness.spec import Dataset
from workloads.mnist_mlp import MnistMlp

FEATURES = 6


class TinyMlp(MnistMlp):
    """The MNIST MLP on 6 input features: small enough for a dense float64 Hessian."""

    name = "tiny_mlp"
    batch_size = 8

    def init(self, rng):
        variables = self.model.init(rng, jnp.zeros((1, FEATURES), jnp.float32), train=False)
        return variables["params"], {k: v for k, v in variables.items() if k != "params"}

    def synthetic_dataset(self, sizes, seed=0):
        rng = np.random.default_rng(seed)
        return Dataset("tiny", "synthetic", {
            s: {"inputs": rng.normal(size=(n, FEATURES)).astype(np.float32),
                "targets": rng.integers(0, 10, n).astype(np.int32)} for s, n in sizes.items()})


class LinearMse(TinyMlp):
    """A linear model (one Dense layer) with squared error to one-hot targets: GGN == Hessian."""

    name = "linear_mse"

    def loss_per_example(self, outputs, batch):
        target = jax.nn.one_hot(batch["targets"], outputs.shape[-1], dtype=outputs.dtype)
        return jnp.where(batch["mask"] > 0, 0.5 * jnp.sum((outputs - target) ** 2, -1), 0.0)


class _BnDropoutNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Dense(7)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        x = nn.Dropout(0.5, deterministic=not train)(nn.gelu(x))
        return nn.Dense(10)(x)


class BnDropoutMlp(TinyMlp):
    """Batch norm and dropout: the curvature policy must make its operator fixed."""

    name = "bn_dropout_mlp"

    @property
    def model(self):
        return _BnDropoutNet()

    def apply(self, params, model_state, inputs, *, train, rng=None):
        variables = {"params": params, **model_state}
        if train:
            out, updates = self.model.apply(variables, inputs, train=True, mutable=list(model_state),
                                            rngs={"dropout": rng})
            return out, dict(updates)
        return self.model.apply(variables, inputs, train=False), model_state


def to_float64(tree):
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), tree)


class _BnNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Dense(5)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        return nn.Dense(10)(nn.gelu(x))


class BnMlp(BnDropoutMlp):
    """Batch norm without dropout: its training-mode Hessian has a dense reference."""

    name = "bn_mlp"

    @property
    def model(self):
        return _BnNet()
