"""curvebench's curvature snapshot against PyHessian and hessian-eigenthings, side by side.

Same models (the same weights copied into torch), same data, same loss, on this machine:

* mnist_mlp (Young, Snider & Feng's MLP: 784-100-100-10, ReLU) on 2,048 MNIST examples (the offline
  sample; synthetic images of the same shape if it is missing),
* cifar_simplecnn (Jastrzębski et al.'s SimpleCNN) on 256 synthetic CIFAR-shaped images.

Timed, each from a cold start and warm:
* one Hessian-vector product in each library;
* a "snapshot" in each library (the torch ones once each: eager, no first-call cost): curvebench's default Hessian snapshot (Lanczos m = 20,
  top-K, SLQ/PNR, Krylov-deflated trace with 10 probes, Ritz residuals), its first call
  including XLA compilation; PyHessian's `eigenvalues(top_n=5)` + `trace()` at their
  defaults (+ `density()`, which crashes on today's torch: reported, not timed);
  hessian-eigenthings 1.0's `lanczos(k=10, max_iter=20)` + `hutch_plus_plus(30 products)`.

Prints the ratios (peer time / curvebench time; > 1 means curvebench is faster). Goals:
≥ 2x PyHessian per snapshot on the MLP including the first compile; ≥ 1x on the conv net.

Run: python benchmarks/pyhessian_compare.py [--models mnist_mlp,cifar_simplecnn] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from harness.curvature import SnapshotConfig, Snapshotter
from harness.spec import Dataset, DataUnavailable
from workloads import get_workload

SIZES = {"mnist_mlp": 2048, "cifar_simplecnn": 256}


def _data(workload, n: int) -> tuple[np.ndarray, np.ndarray, str]:
    try:
        train = workload.load_data().splits["train"]
        source = "real"
    except (DataUnavailable, FileNotFoundError, OSError):
        train = workload.synthetic_dataset({"train": n}, seed=0).splits["train"]
        source = "synthetic"
    return np.asarray(train["inputs"][:n], np.float32), np.asarray(train["targets"][:n]), source


def torch_model(name: str, params):
    """The flax model as torch modules with the same weights (NHWC flax -> NCHW torch)."""
    import torch
    from torch import nn

    def dense(p):
        layer = nn.Linear(*p["kernel"].shape)
        layer.weight.data = torch.tensor(np.asarray(p["kernel"]).T.copy())
        layer.bias.data = torch.tensor(np.asarray(p["bias"]).copy())
        return layer

    def conv(p, padding):
        k = np.asarray(p["kernel"])  # (kh, kw, in, out)
        layer = nn.Conv2d(k.shape[2], k.shape[3], k.shape[:2], padding=padding)
        layer.weight.data = torch.tensor(k.transpose(3, 2, 0, 1).copy())
        layer.bias.data = torch.tensor(np.asarray(p["bias"]).copy())
        return layer

    if name == "mnist_mlp":
        return nn.Sequential(nn.Flatten(), dense(params["Dense_0"]), nn.ReLU(), dense(params["Dense_1"]),
                             nn.ReLU(), dense(params["Dense_2"]))

    class Nhwc(nn.Module):
        def forward(self, x):
            return x.permute(0, 3, 1, 2)

    class FlattenHwc(nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)

    return nn.Sequential(Nhwc(), conv(params["Conv_0"], 1), nn.ReLU(), conv(params["Conv_1"], 0), nn.ReLU(),
                         nn.MaxPool2d(2), conv(params["Conv_2"], 1), nn.ReLU(), conv(params["Conv_3"], 0),
                         nn.ReLU(), nn.MaxPool2d(2), FlattenHwc(), dense(params["Dense_0"]), nn.ReLU(),
                         dense(params["Dense_1"]))


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def curvebench_times(workload, x, y, params, state, repeats):
    data = Dataset("bench", "bench", {"train": {"inputs": x, "targets": y}})
    config = SnapshotConfig(kinds=("hessian",), curvature_batch=len(x), physical_batch=len(x))
    snap = Snapshotter(workload, data, config, batch_size=len(x))
    first, (result,) = _timed(lambda: snap.snapshot(params, state))
    warm = statistics.median(_timed(lambda: snap.snapshot(params, state))[0] for _ in range(repeats))
    mv = snap._fn("matvec", None, jnp.float32, jnp.float32, base="hessian")
    v = jnp.ones(sum(p.size for p in jax.tree_util.tree_leaves(params)), jnp.float32)
    mv(params, state, snap.batches, v).block_until_ready()
    hvp = statistics.median(_timed(lambda: mv(params, state, snap.batches, v).block_until_ready())[0]
                            for _ in range(repeats))
    return first, warm, hvp, result.metrics


def pyhessian_times(model, x, y, repeats):
    import torch
    from pyhessian import hessian
    from pyhessian.utils import hessian_vector_product

    criterion = torch.nn.CrossEntropyLoss()
    data = (torch.tensor(x), torch.tensor(y, dtype=torch.long))

    def snapshot():
        h = hessian(model, criterion, data=data, cuda=False)
        top, _ = h.eigenvalues(top_n=5)
        trace = float(np.mean(h.trace()))
        return top, trace

    snap_s, (top, trace) = _timed(snapshot)  # eager torch: no first-call cost; timed once
    h = hessian(model, criterion, data=data, cuda=False)
    v = [torch.ones_like(p) for p in h.params]
    hvp = statistics.median(_timed(lambda: hessian_vector_product(h.gradsH, h.params, v))[0]
                            for _ in range(repeats))
    try:
        h.density(iter=20, n_v=1)
        density = "ran"
    except Exception as e:  # noqa: BLE001 - reported, as the docstring says
        density = f"crashed: {type(e).__name__}: {str(e).splitlines()[0][:80]}"
    return snap_s, hvp, top, trace, density


def eigenthings_times(model, x, y, repeats):
    import torch
    import hessian_eigenthings as he

    loader = [(torch.tensor(x), torch.tensor(y, dtype=torch.long))]
    loss = he.supervised_loss(torch.nn.CrossEntropyLoss())

    def snapshot():
        op = he.HessianOperator(model, loader, loss)
        eig = he.lanczos(op, k=10, max_iter=20, seed=0)
        trace = he.hutch_plus_plus(op, num_matvecs=30, seed=0)
        return eig, trace

    return _timed(snapshot)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mnist_mlp,cifar_simplecnn")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", type=int, default=None, help="override the example counts")
    args = parser.parse_args()
    try:
        import torch
        import pyhessian  # noqa: F401
    except ImportError as e:
        raise SystemExit("needs torch and PyHessian: pip install torch --index-url "
                         f"https://download.pytorch.org/whl/cpu && pip install -e '.[peers]' ({e})")
    torch.manual_seed(0)
    print(f"backend: jax {jax.default_backend()} / torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); times in seconds, medians of {args.repeats}")
    for name in args.models.split(","):
        workload = get_workload(name)
        x, y, source = _data(workload, args.examples or SIZES[name])
        params, state = workload.init(jax.random.PRNGKey(0))
        model = torch_model(name, params)
        with torch.no_grad():
            torch_loss = float(torch.nn.functional.cross_entropy(model(torch.tensor(x)),
                                                                 torch.tensor(y, dtype=torch.long)))
        first, warm, hvp, metrics = curvebench_times(workload, x, y, params, state, args.repeats)
        ph_snap, ph_hvp, ph_top, ph_trace, density = pyhessian_times(model, x, y, args.repeats)
        he_snap = eigenthings_times(model, x, y, args.repeats)
        print(f"\n{name}: {len(x)} {source} examples; loss curvebench {metrics['loss']:.6f} "
              f"torch {torch_loss:.6f}")
        print(f"  λ_max curvebench {metrics['max_eig']:.5g} PyHessian {ph_top[0]:.5g}; "
              f"trace curvebench {metrics['trace']:.5g} ± {metrics['trace_stderr']:.2g} "
              f"PyHessian {ph_trace:.5g}")
        print(f"  {'':<34}{'curvebench':>11}{'PyHessian':>11}{'eigenthings':>12}{'PyH/cb':>8}{'eig/cb':>8}")
        print(f"  {'one HVP':<34}{hvp:>11.4f}{ph_hvp:>11.4f}{'':>12}{ph_hvp / hvp:>8.2f}")
        print(f"  {'snapshot, first (cb: + compile)':<34}{first:>11.3f}{ph_snap:>11.3f}{he_snap:>12.3f}"
              f"{ph_snap / first:>8.2f}{he_snap / first:>8.2f}")
        print(f"  {'snapshot, warm':<34}{warm:>11.3f}{ph_snap:>11.3f}{he_snap:>12.3f}"
              f"{ph_snap / warm:>8.2f}{he_snap / warm:>8.2f}")
        print(f"  products per snapshot: curvebench {metrics['trace_products']:.0f} + m = 20 Lanczos")
        print(f"  PyHessian density: {density}")


if __name__ == "__main__":
    main()
