"""On an accelerator (`python3 -m pytest -m gpu`; skipped on CPU): a group of trials compiled as
one program computes what each trial computes alone, up to float rounding (on GPU a batched
reduction may be ordered differently, so bit-equality is promised only on CPU)."""

from __future__ import annotations

import jax
import pytest

from harness.records.trial import TrialSpec
from harness.submissions import load_submission
from tests.test_vectorised import run, with_target

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def accelerator():
    if jax.default_backend() == "cpu":
        pytest.skip("needs an accelerator: JAX's backend here is cpu (install with the gpu extra)")


def test_group_on_the_accelerator_stays_within_float_rounding_of_alone(mnist_sample, tmp_path):
    workload = with_target("mnist_mlp:width=32", 0.75)
    adam = load_submission("adam")
    trials = [TrialSpec(seed, {}) for seed in (0, 1, 2)]
    common = dict(max_steps=30, eval_every=1)
    alone, _, _ = run(workload, adam, mnist_sample, trials, tmp_path, "alone", max_group_size=1,
                      **common)
    group, _, _ = run(workload, adam, mnist_sample, trials, tmp_path, "group", **common)
    assert [r.group_size for r in group] == [3, 3, 3]
    for a, g in zip(alone, group):
        assert (a.status, a.steps_to_target) == (g.status, g.steps_to_target)
        for (sa, ma), (sg, mg) in zip(a.evals, g.evals, strict=True):
            assert sa == sg and ma["loss"] == pytest.approx(mg["loss"], rel=1e-3)
