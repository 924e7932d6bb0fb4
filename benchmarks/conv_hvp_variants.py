"""Ways to compute a curvature product on a conv net on this backend, side by side.

SimpleCNN (Jastrzębski et al. 2020) on N synthetic CIFAR-shaped images, one physical batch, each
variant jitted, timed first (with compile) and warm (median), with its ratio to the default
forward-over-reverse Hessian-vector product (> 1: slower than the default):

* `hvp`: forward-over-reverse, jvp of the gradient (what `operators.hessian_matvec` does);
* `rev_rev`: reverse-over-reverse, vjp of the gradient;
* `ggn`: the Gauss-Newton product (jvp, output-space Hessian, vjp) — another matrix;
* `linearized`: the gradient linearized once (`jax.linearize`), then only its linear part per
  product (PyHessian's kept graph; holds the residuals of the whole batch);
* `vmap4`: forward-over-reverse vmapped over 4 vectors, time per vector;
* `im2col`: `hvp` of the workload's curvature form (`Workload.for_curvature`; on CPU every
  convolution as patches x kernel, workloads/im2col.py): what snapshots use;
* `im2col_vmap4`: the same vmapped over 4 vectors (the batched trace probes), per vector.

Run: python benchmarks/conv_hvp_variants.py [--examples 64] [--repeats 3] [--variants hvp,ggn,...]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from workloads import get_workload

VARIANTS = ("hvp", "rev_rev", "ggn", "linearized", "vmap4", "im2col", "im2col_vmap4")


def _time(fn, args, repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        warm.append(time.perf_counter() - t0)
    return first, statistics.median(warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    w = get_workload("cifar_simplecnn")
    params, state = w.init(jax.random.PRNGKey(0))
    n = args.examples
    split = w.synthetic_dataset({"train": n}, seed=0).splits["train"]
    batch = {"inputs": jnp.asarray(split["inputs"][:n]), "targets": jnp.asarray(split["targets"][:n]),
             "mask": jnp.ones(n)}
    flat, unravel = ravel_pytree(params)

    def outputs(p, form=w):
        return form.apply(p, state, batch["inputs"], train=True)[0]

    def loss(p, form=w):
        return w.loss_per_example(outputs(p, form), batch).sum() / n

    def hvp(p, v, form=w):
        return ravel_pytree(jax.jvp(jax.grad(lambda q: loss(q, form)), (p,), (unravel(v),))[1])[0]

    def im2col(p, v):
        return hvp(p, v, w.for_curvature())

    def rev_rev(p, v):
        return jax.vjp(lambda q: ravel_pytree(jax.grad(loss)(q))[0], p)[1](v)[0]

    def ggn(p, v):
        z, jv = jax.jvp(outputs, (p,), (unravel(v),))
        hjv = jax.jvp(jax.grad(lambda zz: w.loss_per_example(zz, batch).sum() / n), (z,), (jv,))[1]
        return ravel_pytree(jax.vjp(outputs, p)[1](hjv)[0])[0]

    v = jax.random.normal(jax.random.PRNGKey(1), flat.shape)
    vs = jax.random.normal(jax.random.PRNGKey(2), (4,) + flat.shape)
    print(f"backend {jax.default_backend()}, SimpleCNN, {n} images, {flat.size} parameters; seconds, "
          f"warm = median of {args.repeats}")
    print(f"{'variant':<12}{'first':>10}{'warm':>10}{'warm / hvp':>12}")
    base = None
    for name in args.variants.split(","):
        if name == "linearized":
            linear = jax.jit(lambda p: jax.linearize(jax.grad(loss), p)[1])(params)
            fn, fargs = jax.jit(lambda f, x: ravel_pytree(f(unravel(x)))[0]), (linear, v)
        elif name in ("vmap4", "im2col_vmap4"):
            fn, fargs = jax.jit(jax.vmap(hvp if name == "vmap4" else im2col, (None, 0))), (params, vs)
        elif name in ("hvp", "rev_rev", "ggn", "im2col"):
            fn = {"hvp": hvp, "rev_rev": rev_rev, "ggn": ggn, "im2col": im2col}[name]
            fn, fargs = jax.jit(fn), (params, v)
        else:
            raise SystemExit(f"unknown variant {name!r}; valid: {', '.join(VARIANTS)}")
        first, warm = _time(fn, fargs, args.repeats)
        if name.endswith("vmap4"):
            warm /= 4
        base = warm if name == "hvp" else base
        ratio = f"{warm / base:>12.2f}" if base else f"{'':>12}"
        print(f"{name:<12}{first:>10.3f}{warm:>10.4f}{ratio}", flush=True)


if __name__ == "__main__":
    main()
