"""CIFAR-10 convnet workloads: SimpleCNN(-BN) (Jastrzębski et al. 2020), the thin ResNet with LayerNorm
(Ciuca) and ResNet-18 (AlgoPerf's CIFAR workload; without batch norm as in Kalra & Barkeshli (2023)).

Data (harness.data.cifar): 45,000 train / 5,000 validation / 10,000 test, normalised per
channel; `--data-dir DIR` with cifar-10-python.tar.gz or cifar-10-batches-py/ in DIR, or
`--data-source tfds`. Augmentation (knob `augment`): random crop after 4-pixel zero padding
plus horizontal flip, done on the device inside `sample_batch` with the step's key.

All three are conv nets: `slow_in_cpu_loops = True`, so on CPU the runner dispatches one
compiled step per call instead of a rolled scan (docs/architecture.md, "Chunk modes"). The
runner's "step" and "unroll" chunks trace the step body with no loop around it: measured with
jax 0.10.2 (benchmarks/cifar_speed.py), even a length-1 lax.scan takes XLA:CPU's slow
convolution path (20x a bare jitted step for SimpleCNN at batch 128, 64x for ResNet-18 at
batch 16), while the loop-free body does not (1.5x and 0.7x).
Costs per training step on CPU are in each class docstring: one jitted plain-SGD step per
Python call at the default batch (`python benchmarks/cifar_speed.py --modes bare-step`),
jax 0.10.2, on 2 cores shared with other jobs (load average 6-10), so an idle machine is
faster. GPU: not measured, no GPU lent.

Eval intervals (200, 500, 100 steps): targets fall at thousands of steps, so one interval is a
few percent of steps-to-target, enough to order variants; a full validation pass (5,000
images) costs about as much as 10-40 training steps, so evaluating far more often would
dominate the budget. On an accelerator the eval runs inside the compiled loop; on XLA:CPU
("step" chunk mode) it is a host round trip per eval.
"""

from __future__ import annotations

import abc
import copy

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from harness.data.augment import random_crop_flip
from harness.data.cifar import IMAGE_SHAPE, NUM_CLASSES, load_cifar10
from harness.data.synthetic import synthetic_image_dataset
from harness.spec import Knob, Target, Workload
from workloads.cifar_models import ResNet, SimpleCNN
from workloads.im2col import im2col_conv
from workloads.linen import apply_linen, init_linen



def augment_knob(default: bool) -> Knob:
    """The `augment` knob: random crop (4-pixel padding) + horizontal flip on the device."""
    return Knob(bool, default, choices=(False, True),
                doc="random crop (4-pixel padding) + horizontal flip on the device")


class CifarWorkload(Workload):
    """Shared data, batch sampling (with optional augmentation), model plumbing and
    cross-entropy loss of the CIFAR-10 workloads; subclasses define `model`."""

    scored_by_default = True
    slow_in_cpu_loops = True
    #: divides the 5,000 validation and 10,000 test images: no padded eval rows.
    eval_batch_size = 1000
    #: how `model` computes its convolutions (lax.conv_general_dilated's signature)
    conv = staticmethod(jax.lax.conv_general_dilated)

    def for_curvature(self):
        """On XLA:CPU, curvature products compute the convolutions as patches x kernel
        (workloads/im2col.py: a Hessian-vector product of SimpleCNN 2.3x faster there);
        elsewhere, and for training, lax's convolutions. With no convolution left, the
        products are not slow inside loops: the Lanczos loop can be one compiled loop."""
        if jax.default_backend() != "cpu":
            return self
        other = copy.copy(self)
        other.conv = im2col_conv
        other.slow_in_cpu_loops = False
        return other

    def load_data(self, data_dir=None, source=None):
        return load_cifar10(data_dir, source)

    def synthetic_dataset(self, sizes, seed=0):
        return synthetic_image_dataset(self.name, sizes, IMAGE_SHAPE, NUM_CLASSES, seed)

    def sample_batch(self, train, rng, batch_size):
        index_key, augment_key = jax.random.split(rng)
        batch = super().sample_batch(train, index_key, batch_size)
        if self.variant["augment"]:
            batch["inputs"] = random_crop_flip(augment_key, batch["inputs"])
        return batch

    @property
    @abc.abstractmethod
    def model(self) -> nn.Module:
        """The flax module of this variant."""

    def init(self, rng):
        return init_linen(self.model, rng, jnp.zeros((1,) + IMAGE_SHAPE, jnp.float32))

    def apply(self, params, model_state, inputs, *, train, rng=None):
        return apply_linen(self.model, params, model_state, inputs, train)

    def loss_per_example(self, outputs, batch):
        losses = optax.softmax_cross_entropy_with_integer_labels(outputs, batch["targets"])
        return jnp.where(batch["mask"] > 0, losses, 0.0)


class CifarSimpleCNN(CifarWorkload):
    """SimpleCNN of Jastrzębski et al. (2020) (App. D): four 3x3 convs (32, 32, 64, 64), 2x2 max-pool after
    each pair, dense 128, dense 10, ReLU; `batchnorm=1` is SimpleCNN-BN (§4.3: BN after
    every hidden layer). 361,898 parameters (362,218 with BN). Batch 128 (Jastrzębski et al. 2020).

    Target 0.65 validation accuracy: Jastrzębski et al. (2020) follows its SGD trajectories up to 65%
    training accuracy; the same net without augmentation generalises to about 0.70-0.75,
    so 0.65 on validation is within reach of a tuned SGD baseline (not verified here:
    CIFAR-10 is not on this machine). Budget 10,000 steps (~28 epochs).
    CPU cost, batch 128: 1.6-3.9 s per step (two runs on a loaded machine; 0.36 s measured
    earlier on an idle one), so the 10,000-step budget is hours on CPU.
    Run (Jastrzębski et al.'s lr 0.01, batch 128): curvebench run --workload cifar_simplecnn
    --submission sgd --hparam learning_rate=0.01 --hparam batch_size=128 --data-dir DIR
    """

    name = "cifar_simplecnn"
    knobs = {
        "batchnorm": Knob(bool, False, choices=(False, True), doc="BN after every hidden layer"),
        "width": Knob(float, 1.0, doc="multiplier of every hidden layer's width", minimum=0.01),
        "augment": augment_knob(False),
    }
    target = Target("accuracy", 0.65, "max", "validation")
    batch_size = 128
    max_steps = 10_000
    eval_every = 200

    @property
    def model(self):
        return SimpleCNN(width=self.variant["width"], batchnorm=self.variant["batchnorm"],
                         conv=self.conv)


class CifarResNetLN(CifarWorkload):
    """The very thin ResNet with LayerNorm of Ciuca (no augmentation, SGD momentum 0.97,
    lr 0.1, clipped gradients, batch 512, final top-1 80%).

    Seed 003 gives only "very thin ResNet with LayerNorm, 26000 parameters". Chosen
    layout: He et al.'s CIFAR ResNet-20 thinned to 5/10/20 channels: conv3x3(5)-LN-ReLU
    stem, three stages of three basic blocks (conv3x3-LN-ReLU-conv3x3-LN + shortcut,
    ReLU; a 1x1 conv + LN shortcut where the shape changes; stride 2 at the start of
    stages 2 and 3), global average pool, dense 10. LayerNorm normalises each pixel over
    its channels. 27,185 parameters at width 1.

    Target 0.80 validation accuracy: Ciuca's *final* top-1 after its full schedule
    with learning-rate drops, so a constant-rate run may need a larger step budget than
    the 30,000 steps (~340 epochs) set here to reach it.
    CPU cost, batch 512: 10.7 s per step: CPU runs of this budget are impractical.
    Run (Ciuca's lr 0.1, batch 512): curvebench run --workload cifar_resnet_ln
    --submission momentum --hparam learning_rate=0.1 --hparam batch_size=512 --data-dir DIR
    """

    name = "cifar_resnet_ln"
    knobs = {
        "width": Knob(float, 1.0, doc="multiplier of the (5, 10, 20) stage widths", minimum=0.01),
        "augment": augment_knob(False),
    }
    target = Target("accuracy", 0.80, "max", "validation")
    batch_size = 512
    max_steps = 30_000
    eval_every = 500
    stage_features = (5, 10, 20)
    stage_blocks = (3, 3, 3)

    @property
    def model(self):
        features = tuple(max(1, round(f * self.variant["width"])) for f in self.stage_features)
        return ResNet(features, self.stage_blocks, "layernorm", conv=self.conv)


class CifarResNet18(CifarWorkload):
    """ResNet-18 for 32x32 inputs as AlgoPerf's CIFAR workload: conv3x3(64) stem without
    max-pool, stages (64, 128, 256, 512) x 2 basic blocks, global average pool, dense 10;
    11,173,962 parameters with batch norm (11,169,162 without). `norm=none` drops the norm layers (convs get
    biases), the BN-free ResNets of Kalra & Barkeshli (2023); `width` is Kalra & Barkeshli's k (first-stage channels).

    Target 0.85 validation accuracy, batch 1024, 4,883 steps (100 epochs), all AlgoPerf's;
    standard crop+flip augmentation on by default, as there.
    CPU cost, batch 1024: 419 s per step: use a GPU (or `width=` / a smaller batch to try it).
    Run: curvebench run --workload cifar_resnet18 --submission momentum --data-dir DIR
    """

    name = "cifar_resnet18"
    knobs = {
        "norm": Knob(str, "batchnorm", choices=("batchnorm", "none")),
        "width": Knob(int, 64, doc="channels of the first stage (k; stages k, 2k, 4k, 8k)",
                      minimum=1),
        "augment": augment_knob(True),
    }
    target = Target("accuracy", 0.85, "max", "validation")
    batch_size = 1024
    max_steps = 4883
    eval_every = 100

    @property
    def model(self):
        k = self.variant["width"]
        return ResNet((k, 2 * k, 4 * k, 8 * k), (2, 2, 2, 2), self.variant["norm"], conv=self.conv)
