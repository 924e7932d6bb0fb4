"""The names AlgoPerf submissions import (`algoperf.spec`, `algoperf.param_utils`,
`algoperf.jax_sharding_utils`, `algoperf.random_utils`), written for curvebench from AlgoPerf's
documented submission API (MLCommons' algorithmic-efficiency), JAX side only.

The real `algoperf` package is not on PyPI and pins old JAX/Flax/NumPy, so this package stands in
for it: `harness.algoperf.shim.installed()` puts it in `sys.modules` as `algoperf` while an
AlgoPerf submission is imported or called, and never when a real `algoperf` is installed.
"""
