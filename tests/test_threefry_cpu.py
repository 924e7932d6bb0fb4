"""harness/threefry_cpu.py: the unrolled threefry lowering gives the default lowering's bits.

Each lowering runs in its own process (the registration is process-wide), drawing the same
things; the outputs are compared byte for byte."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

DRAWS = r"""
import sys
import jax, jax.numpy as jnp, numpy as np
import flax.linen as nn
if sys.argv[1] == "unrolled":
    from harness import threefry_cpu
    assert threefry_cpu.install()
key = jax.random.PRNGKey(7)
rolled = "stablehlo.while" in jax.jit(lambda k: jax.random.bits(k, (5,))).lower(key).as_text()
outs = [jax.random.bits(key, (3, 7)), jax.random.bits(key, (1000, 33), jnp.uint16),
        jax.random.split(key, 5), jax.random.fold_in(key, 123456),
        jax.random.normal(key, (257,)), jax.random.uniform(key, (4, 4), minval=-2.0),
        jax.random.randint(key, (1024,), 0, 4000), jax.random.truncated_normal(key, -2.0, 2.0, (99,)),
        jax.random.permutation(key, 50), jax.random.rademacher(key, (64,), jnp.float32),
        jax.jit(lambda k: jax.random.normal(jax.random.fold_in(k, 3), (8, 8)))(key)]
params = nn.Dense(16).init(key, jnp.ones((2, 9)))
outs += jax.tree_util.tree_leaves(params)
np.savez(sys.argv[2], rolled=rolled, *[np.asarray(o) for o in outs])
"""


def _draw(mode: str, path) -> dict:
    subprocess.run([sys.executable, "-c", DRAWS, mode, str(path)], check=True)
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.skipif(sys.platform == "win32", reason="subprocess draws")
def test_unrolled_lowering_draws_the_default_lowerings_bits(tmp_path):
    default, unrolled = _draw("default", tmp_path / "a.npz"), _draw("unrolled", tmp_path / "b.npz")
    assert bool(default.pop("rolled")) and not bool(unrolled.pop("rolled"))
    assert default.keys() == unrolled.keys() and len(default) > 10
    for k in default:
        assert default[k].dtype == unrolled[k].dtype
        assert default[k].tobytes() == unrolled[k].tobytes(), k


def test_importing_the_workloads_installs_it():
    import workloads  # noqa: F401
    from harness import threefry_cpu

    assert threefry_cpu.install() is True
