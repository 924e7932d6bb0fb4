"""Accuracy of every curvature metric at the default settings, against dense float64 linear algebra.

A model small enough for a dense Hessian (mnist_mlp:width=8, 6,442 parameters, on the
offline MNIST sample; synthetic images if it is missing) is trained with Adam; at steps
0 and 40 each default snapshot (Hessian and GGN: Lanczos m = 20, one probe, Krylov-deflated
trace with 10 probes; cov: L = 25, M = 128) is compared with the exact matrix over the same
curvature batch (2,048 examples): eigh of the dense Hessian / GGN (float64 products), and of
the dense covariance of the same L mini-batch gradients.

Exact references: λ_max, λ_min, MER-K, TER-K = tr(A)/Σ top-K λ, PNR = Σ_{λ>0} λ / Σ_{λ<0} |λ|
(the uniform spectral measure SLQ estimates), PGR-K = ‖P_K g‖/‖g‖ with exact eigenvectors
(the seed's P_L, the Krylov space, has no exact counterpart). Prints |error| / |exact| per
metric and the convergence flag the snapshot stored.

Run: python benchmarks/curvature_accuracy.py [--width 8] [--steps 40] [--examples 2048]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from harness.curvature import SnapshotConfig, Snapshotter
from harness.curvature.operators import ggn_matvec, hessian_matvec, minibatch_gradients
from harness.curvature.settings import lanczos_orders
from harness.runner import run_trial
from harness.spec import DataUnavailable
from harness.submissions import load_submission
from workloads import get_workload

REPO = Path(__file__).resolve().parent.parent


def dense(matvec, dim: int, chunk: int = 256) -> np.ndarray:
    """The float64 matrix of a float64 matvec, by chunks of basis vectors (vmapped)."""
    mm = jax.jit(jax.vmap(matvec))
    cols = [np.asarray(mm(jnp.eye(dim, dtype=jnp.float64)[i:i + chunk])) for i in range(0, dim, chunk)]
    out = np.concatenate(cols).T
    return (out + out.T) / 2


def exact_metrics(matrix: np.ndarray, grad: np.ndarray, top_k=(1, 5, 10)) -> dict[str, float]:
    lam, vecs = np.linalg.eigh(matrix)
    lam, vecs = lam[::-1], vecs[:, ::-1]
    pos, neg = lam[lam > 0].sum(), -lam[lam < 0].sum()
    out = {"max_eig": lam[0], "min_eig": lam[-1], "trace": lam.sum(),
           "pnr": pos / neg if neg > 0 else float("inf")}
    coords = vecs.T @ grad
    for k in top_k:
        if k > 1:
            out[f"mer_{k}"] = lam[0] / lam[k - 1]
        out[f"ter_{k}"] = lam.sum() / lam[:k].sum()
        out[f"pgr_{k}"] = np.linalg.norm(coords[:k]) / np.linalg.norm(coords)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--examples", type=int, default=2048)
    parser.add_argument("--probes", type=int, default=SnapshotConfig.probes, help="Lanczos probes (PNR)")
    parser.add_argument("--lanczos-order", default=str(SnapshotConfig.lanczos_order),
                        help="an integer, or auto[:CAP] (chosen by convergence)")
    args = parser.parse_args()
    order, max_order = lanczos_orders(args.lanczos_order)
    workload = get_workload(f"mnist_mlp:width={args.width}")
    try:
        data = workload.load_data()
    except DataUnavailable:
        data = workload.synthetic_dataset({"train": 4096, "validation": 512}, seed=0)
    submission = load_submission(REPO / "submissions" / "adam")
    captured = {}

    def keep(_run, step, params, state):  # host copies: the runner donates its buffers
        captured[step] = jax.tree_util.tree_map(np.array, (params, state))

    run_trial(workload, submission, data, seed=0, max_steps=args.steps, stop_at_target=False,
              snapshot_steps=(0, args.steps), on_snapshot=keep)
    config = SnapshotConfig(kinds=("hessian", "ggn", "cov"), curvature_batch=args.examples,
                            probes=args.probes, lanczos_order=order, lanczos_max_order=max_order)
    snapper = Snapshotter(workload, data, config, batch_size=workload.batch_size)
    print(f"mnist_mlp:width={args.width}, {args.examples} examples, defaults: m={config.lanczos_order}, "
          f"probes={config.probes}, trace={config.trace_method.value}x{config.trace_probes}, "
          f"L={config.cov_batches}, M={config.cov_batch_size}, ritz_tol={config.ritz_tol}, "
          f"order cap={config.lanczos_max_order}, pnr_tol={config.pnr_tol}")
    names = ["max_eig", "min_eig", "mer_5", "mer_10", "trace", "ter_1", "ter_5", "ter_10", "pgr_1",
             "pgr_5", "pgr_10", "pnr"]
    for step, (params, state) in sorted(captured.items()):
        results = {r.kind: r.metrics for r in snapper.snapshot(params, state)}
        with jax.enable_x64(True):
            p64 = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), params)
            s64 = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), state)
            b64 = {k: (jnp.asarray(v, jnp.float64) if v.dtype == jnp.float32 else v)
                   for k, v in snapper.batches.items()}
            dim = ravel_pytree(p64)[0].size
            grad = np.asarray(snapper._fn("grad")(params, state, snapper.batches)[1], np.float64)
            matrices = {"hessian": dense(hessian_matvec(workload, p64, s64, b64, snapper.policy), dim),
                        "ggn": dense(ggn_matvec(workload, p64, s64, b64, snapper.policy), dim)}
            mb = {k: (jnp.asarray(v, jnp.float64) if v.dtype == jnp.float32 else v)
                  for k, v in snapper.minibatches.items()}
            g = np.asarray(minibatch_gradients(workload, p64, s64, mb, snapper.policy))
            matrices["cov"] = g.T @ g / len(g)
        print(f"\nstep {step}: |snapshot - exact| / |exact|  (flag: stored *_converged, '-' none)")
        print(f"{'metric':<10}" + "".join(f"{k:>26}" for k in matrices))
        exact = {k: exact_metrics(m, grad) for k, m in matrices.items()}
        for name in names:
            row = f"{name:<10}"
            for kind in matrices:
                ours, ref = results[kind].get(name), exact[kind].get(name)
                flag = results[kind].get(f"{name}_converged")
                flag = "-" if flag is None else str(int(flag))
                if ours is None or ref is None:
                    row += f"{'n/a':>26}"
                elif np.isinf(ref) or np.isinf(ours):
                    row += f"{f'{ours:.4g} vs {ref:.4g}':>22} {flag:>3}"
                else:
                    row += f"{f'{abs(ours - ref) / abs(ref):.1e} ({ref:.3g})':>22} {flag:>3}"
            print(row)
        h = results["hessian"]
        print(f"seed's tr(T)-based TER-10 (Hessian): {h.get('ter_tridiag_10', float('nan')):.4g} "
              f"vs exact {exact['hessian']['ter_10']:.4g}; trace stderr {h['trace_stderr']:.3g}; "
              f"top Ritz values converged: H {int(h['ritz_converged_top'])}, "
              f"GGN {int(results['ggn']['ritz_converged_top'])}; Lanczos order H "
              f"{int(h['lanczos_order'])}, GGN {int(results['ggn']['lanczos_order'])}; PNR (H) measured "
              f"relative error {h['pnr_relative_error']:.3g}, flag {int(h['pnr_converged'])}")


if __name__ == "__main__":
    main()
