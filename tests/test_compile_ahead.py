"""Compiling ahead: the local executor plans and compiles the next groups in a background
thread while one trains; the results are those of compiling each group when it runs."""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harness.db import open_database
from harness.engine.execute import LocalExecutor
from harness.experiment import plan_groups, requests_for
from harness.records.trial import TrialOptions
from harness.spec import SpecError
from harness.trial import CompileCache


class _Recording(LocalExecutor):
    """The local executor, noting which groups arrived planned ahead."""

    def __init__(self, ahead: int):
        self.ahead, self.planned_ahead = ahead, []

    def execute(self, group, db_url, on_eval, ahead=None):
        self.planned_ahead.append(ahead is not None)
        return super().execute(group, db_url, on_eval, ahead)


def _sweep(tmp_path, name: str, ahead: int, grid, options):
    url = f"sqlite:///{tmp_path / name}"
    executor = _Recording(ahead)
    results = executor.run(plan_groups(requests_for(grid, ["adam"], [{}], [0, 1]), options), url)
    return url, executor, [r for group in results for r in group]


@pytest.mark.parametrize("grid", [
    pytest.param(["mnist_mlp:width=32", "mnist_mlp:width=48,depth=2",
                  "mnist_mlp:width=32,activation=gelu"], marks=pytest.mark.slow),
    ["uv:width=4", "uv:width=8", "noisy_quadratic"]])
def test_groups_compiled_ahead_train_bit_for_bit_as_compiled_when_run(tmp_path, grid):
    options = TrialOptions(max_steps=12, eval_every=3)
    _, inline, alone = _sweep(tmp_path, "inline.db", 0, grid, options)
    _, ahead, early = _sweep(tmp_path, "ahead.db", 2, grid, options)
    assert inline.planned_ahead == [False] * 3 and ahead.planned_ahead == [False, True, True]
    for a, b in zip(alone, early):
        assert (a.seed, a.status, a.final_step, a.steps_to_target) == (
            b.seed, b.status, b.final_step, b.steps_to_target)
        assert [(s, m) for s, m in a.evals] == [(s, m) for s, m in b.evals]  # exact floats
        assert b.compiles == a.compiles == 1 and b.compile_s > 0 and b.train_s > 0


def test_a_group_whose_plan_fails_ahead_fails_as_when_planned_in_turn(tmp_path):
    """An unknown hyperparameter in the third group: the executor meets the same user error
    when it gets there, after the groups before it trained."""
    options = TrialOptions(max_steps=6, eval_every=3)
    requests = requests_for(["uv:width=4", "uv:width=8"], ["gd"], [{}], [0])
    requests += requests_for(["uv:width=16"], ["gd"], [{"not_an_hparam": 1.0}], [0])
    errors = []
    for ahead in (0, 2):
        url = f"sqlite:///{tmp_path / f'{ahead}.db'}"
        with pytest.raises(SpecError) as e:
            LocalExecutor.run(_Recording(ahead), plan_groups(requests, options), url)
        errors.append(str(e.value))
        assert len(open_database(url).runs()) == 2
    assert errors[0] == errors[1] and "not_an_hparam" in errors[0]


def test_a_call_waits_for_the_compile_under_way_and_counts_it_once():
    cache = CompileCache(lambda x, n: jnp.cumsum(x * n))
    x = jnp.arange(5.0)
    spec = (jax.ShapeDtypeStruct((5,), jnp.float32), jax.ShapeDtypeStruct((), jnp.int32))
    worker = threading.Thread(target=cache.ahead, args=spec)
    worker.start()
    out = cache(x, jnp.int32(3))  # compiled by whichever got there first, once
    worker.join()
    np.testing.assert_array_equal(out, np.cumsum(np.arange(5.0) * 3))
    assert cache.compiles == 1 and cache.compile_s > 0
    assert 0 <= cache.blocked_s <= cache.compile_s + 1.0
    cache.ahead(*spec)  # already there: nothing compiled, nothing counted
    cache(x, jnp.int32(2))
    assert cache.compiles == 1
    cache(jnp.arange(4.0), jnp.int32(2))  # another shape: a compile of its own
    assert cache.compiles == 2


def test_a_compile_ahead_from_shapes_is_the_program_compiled_from_arrays():
    def f(w, x):
        return jnp.tanh(x @ w).sum(0)

    w = jax.random.normal(jax.random.PRNGKey(1), (7, 3))
    x = jax.random.normal(jax.random.PRNGKey(2), (11, 7))
    early, late = CompileCache(f), CompileCache(f)
    early.ahead(jax.ShapeDtypeStruct(w.shape, w.dtype), jax.ShapeDtypeStruct(x.shape, x.dtype))
    assert early.compiles == 0  # counted when first used
    np.testing.assert_array_equal(early(w, x), late(w, x))
    assert early.compiles == late.compiles == 1
