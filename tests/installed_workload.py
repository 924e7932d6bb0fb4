"""A workload from outside this repository, as a researcher's own package adds one: a module
and a real ``*.dist-info`` whose ``entry_points.txt`` declares it in the group
``curvebench.workloads``, on a folder the subprocess puts on its path. Nothing of the registry
is patched: `importlib.metadata` finds the entry point as it finds an installed wheel's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: per-token outputs, integer inputs, nothing of the contract's defaults overridden: each
#: output token is the input token shifted by one in a vocabulary of VOCAB
SHIFT_TOKENS = '''
"""Shift every token by one (a test package's workload): per-token logits, integer inputs."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from harness.spec import Dataset, Knob, Target, Workload

VOCAB, LENGTH = 12, 6


class Model(nn.Module):
    width: int

    @nn.compact
    def __call__(self, tokens):
        return nn.Dense(VOCAB)(nn.relu(nn.Embed(VOCAB, self.width)(tokens)))


def _split(rng, n):
    tokens = rng.integers(0, VOCAB, (n, LENGTH)).astype(np.int32)
    return {"inputs": tokens, "targets": (tokens + 1) % VOCAB}


class ShiftTokens(Workload):
    """Each token of a sequence mapped to the next one mod VOCAB (test package)."""

    name = "shift_tokens"
    knobs = {"width": Knob(int, 16, choices=(8, 16))}
    target = Target("accuracy", 0.95, "max", "validation")
    batch_size = 32
    max_steps = 600
    eval_every = 20

    def load_data(self, data_dir=None, source=None):
        rng = np.random.default_rng(7)
        return Dataset("shift_tokens", "generated (seed 7)",
                       {"train": _split(rng, 512), "validation": _split(rng, 128)})

    def synthetic_dataset(self, sizes, seed=0):
        rng = np.random.default_rng(seed)
        return Dataset("shift_tokens", "synthetic", {k: _split(rng, n) for k, n in sizes.items()})

    def init(self, rng):
        return Model(self.variant["width"]).init(rng, jnp.zeros((1, LENGTH), jnp.int32))["params"], {}

    def apply(self, params, model_state, inputs, *, train, rng=None):
        return Model(self.variant["width"]).apply({"params": params}, inputs), model_state

    def loss_per_example(self, outputs, batch):
        per_token = optax.softmax_cross_entropy_with_integer_labels(outputs, batch["targets"])
        return per_token.mean(-1) * batch["mask"]
'''


def install(site: Path, module: str = "shift_tokens_pkg", source: str = SHIFT_TOKENS,
            entry_points: dict[str, str] | None = None) -> Path:
    """Write `module` and its distribution's metadata into the folder `site` (as pip would
    install it there): a pyproject-less wheel layout whose entry_points.txt names
    `entry_points` (default: ``shift_tokens = module:ShiftTokens``). Returns `site`."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source)
    dist = site / f"{module}-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    eps = entry_points or {"shift_tokens": f"{module}:ShiftTokens"}
    (dist / "entry_points.txt").write_text(
        "[curvebench.workloads]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    return site


def curvebench(site: Path, *args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m harness.cli ARGS` with `site` on the path: a fresh process, as a user runs it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(site)]))
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd or site, timeout=timeout)


def python(site: Path, code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with `site` on the path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(site)]))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=site, timeout=timeout)
