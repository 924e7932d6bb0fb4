"""The curvature benchmark scripts still run end to end (tiny sizes; timings are not judged)."""

from __future__ import annotations

import pytest

from test_benchmarks import run_script


@pytest.mark.slow
def test_pyhessian_compare_prints_ratios():
    pytest.importorskip("torch", reason="the peers run on torch")
    pytest.importorskip("pyhessian", reason="pip install -e '.[peers]'")
    pytest.importorskip("hessian_eigenthings", reason="pip install -e '.[peers]'")
    out = run_script("pyhessian_compare.py", "--models", "mnist_mlp", "--examples", "64", "--repeats", "1")
    for label in ("one HVP", "snapshot, first (cb: + compile)", "snapshot, warm", "PyH/cb",
                  "PyHessian density:"):
        assert label in out


@pytest.mark.slow
def test_curvature_accuracy_prints_every_metric():
    out = run_script("curvature_accuracy.py", "--width", "2", "--steps", "2", "--examples", "64")
    for label in ("max_eig", "mer_10", "ter_10", "pgr_10", "pnr", "tr(T)-based TER-10"):
        assert label in out


@pytest.mark.slow
def test_conv_hvp_variants_prints_every_variant():
    out = run_script("conv_hvp_variants.py", "--examples", "2", "--repeats", "1")
    for label in ("hvp", "rev_rev", "ggn", "linearized", "vmap4", "im2col", "im2col_vmap4", "warm / hvp"):
        assert label in out
