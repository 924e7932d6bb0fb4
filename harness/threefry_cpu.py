"""Threefry on XLA:CPU from JAX's unrolled lowering: the same random bits, drawn faster.

Every `jax.random` draw, `split` and `fold_in` is the threefry2x32 hash. JAX lowers it on CPU
as rolled loops (`use_rolled_loops=True` in `jax._src.random.threefry2x32`) and on other
backends unrolled. Measured with jax 0.10.2 on 2 CPU cores, each lowering in its own process
(`python3 benchmarks/threefry_cpu.py`, four runs; ratios unrolled / rolled):

* drawing: compiling 1 MiB of bits 0.29-0.48x, running 16 MiB 0.11-0.23x;
* flax initialisers dispatched op by op, as every trial's initial state is (a primitive
  compiled per shape, two runs): SimpleCNN (width 0.25) 10.2-11.7 s -> 2.6-2.9 s, the MNIST
  MLP 2.3-2.4 s -> 1.1 s
  (compiled whole: 6.7-7.8 s -> 1.0-1.4 s, and 1.4-1.7 s -> 1.1-1.8 s);
* whole programs, mixed: the MNIST sweep program compiles in 0.88-1.28x the time, and a
  curvature snapshot's Lanczos program (its breakdown restart draws inside the loop) in
  ~1.3x (1.64-1.76 s vs 1.16-1.33 s: the MLP snapshot of benchmarks/pyhessian_compare.py
  timed with and without this module, two runs each), which its cheaper
  start and probe vectors offset (the whole first snapshot: 4.5-4.7 s vs 4.4-4.7 s).

The hash is integer arithmetic on uint32 (adds, rotations, xors), which XLA computes exactly
however the loop is laid out, so both lowerings give the same bits (tests/test_threefry_cpu.py
compares them draw by draw, and the bit-exact reference sets were unchanged by it). Written by
hand because no JAX option selects the unrolled form on CPU; it registers JAX's own unrolled
rule for the CPU platform through `jax._src` internals, and does nothing (the default
lowering stays) where a JAX version lacks them.
"""

from __future__ import annotations

#: None until decided; then whether the unrolled rule is in place in this process
_unrolled: bool | None = None


def install() -> bool:
    """Lower threefry2x32 unrolled on CPU from now on in this process; idempotent. True when
    the unrolled rule is in place, False when this JAX version offers no such rule (or
    `keep_jax_default` was called first)."""
    global _unrolled
    if _unrolled is None:
        try:
            from jax._src.interpreters import mlir
            from jax._src.random import threefry2x32 as threefry
            primitive, rule = threefry.threefry2x32_p, threefry._threefry2x32_lowering_rule
        except (ImportError, AttributeError):
            _unrolled = False
        else:
            mlir.register_lowering(primitive, rule, platform="cpu", inline=False)
            _unrolled = True
    return _unrolled


def keep_jax_default() -> None:
    """Keep JAX's own (rolled) CPU lowering in this process: later `install()` calls do
    nothing. For measuring the two side by side (benchmarks/threefry_cpu.py); call it before
    anything installs."""
    global _unrolled
    if _unrolled:
        raise RuntimeError("the unrolled threefry lowering is already installed in this process")
    _unrolled = False
