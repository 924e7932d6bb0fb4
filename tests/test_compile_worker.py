"""Compiling ahead on CPU: a niced child process (CompileWorker) compiles the next groups into
the persistent compilation cache, and this process loads them from it; the results are those
of compiling each group here, and a group that changed is compiled anew."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness import compile_cache
from harness.engine.execute import CompileWorker, LocalExecutor, execute_group, plan_ahead
from harness.experiment import plan_groups, requests_for
from harness.records.trial import TrialOptions

OPTIONS = TrialOptions(max_steps=12, eval_every=3)


def _groups(cache, variants, options=OPTIONS):
    return plan_groups(requests_for(variants, ["gd"], [{}], [0, 1]), options,
                       compile_cache=str(cache))


def _compiled_by_worker(groups) -> CompileWorker:
    worker = CompileWorker(groups, lambda: None)
    worker.proc.wait(timeout=300)  # it ends once every group is compiled
    worker.reader.join(timeout=30)
    worker.close()
    return worker


def _segments(cache) -> set[str]:
    """The segment programs in the persistent cache (one file each)."""
    return {f.name for f in Path(cache).glob("jit__segment_fn-*")}


def _evals(results):
    return [(r.seed, r.status, r.final_step, [(s, m) for s, m in r.evals]) for r in results]


def test_programs_the_worker_compiled_load_here_and_train_bit_for_bit(tmp_path):
    groups = _groups(tmp_path / "cache", ["uv:width=4", "uv:width=8", "uv:width=16"])
    assert _compiled_by_worker(groups).done == {1, 2}  # group 0 is the parent's own
    assert len(_segments(tmp_path / "cache")) == 2
    for group in groups[1:]:
        compile_cache.configure(group.compile_cache)  # the run with the cache off turned it off
        ahead = plan_ahead(group)
        assert ahead.counter.misses == 0 and ahead.counter.hits >= 1  # loaded, not compiled
        loaded = execute_group(group, f"sqlite:///{tmp_path / 'loaded.db'}", ahead=ahead)
        here = execute_group(dataclasses.replace(group, compile_cache="off"),
                             f"sqlite:///{tmp_path / 'here.db'}")
        assert _evals(loaded) == _evals(here)  # exact floats
        assert here[0].compile_cache_hit is None and loaded[0].compiles == 1


def test_a_group_that_changed_misses_what_the_worker_compiled(tmp_path):
    """Another width (other shapes) and another divergence factor (the same shapes, a
    different constant in the program) are compiled anew, never taken from the cache."""
    cache = tmp_path / "cache"
    _compiled_by_worker(_groups(cache, ["uv:width=4", "uv:width=8"]))
    compile_cache.configure(str(cache))
    compiled = _segments(cache)
    same = plan_ahead(_groups(cache, ["uv:width=4", "uv:width=8"])[1])
    assert same.counter.misses == 0 and _segments(cache) == compiled
    for changed in (_groups(cache, ["uv:width=4", "uv:width=12"])[1],
                    _groups(cache, ["uv:width=4", "uv:width=8"],
                            dataclasses.replace(OPTIONS, divergence_factor=7.0))[1]):
        before = _segments(cache)
        ahead = plan_ahead(changed)
        assert ahead.counter.misses >= 1 and len(_segments(cache) - before) == 1


@pytest.mark.slow
def test_a_sweep_compiling_ahead_in_a_worker_trains_as_one_compiling_in_turn(tmp_path):
    groups = _groups(tmp_path / "cache", ["uv:width=4", "uv:width=8", "uv:width=16"])
    worker = LocalExecutor(ahead=2, worker=True).run(groups, f"sqlite:///{tmp_path / 'w.db'}")
    inline = LocalExecutor(ahead=0, worker=False).run(
        [dataclasses.replace(g, compile_cache="off") for g in groups],
        f"sqlite:///{tmp_path / 'i.db'}")
    assert [_evals(g) for g in worker] == [_evals(g) for g in inline]


def test_no_worker_without_the_persistent_cache(tmp_path):
    """It hands its programs over through the cache: with the cache off nothing is compiled
    ahead (the groups still run, compiled in turn)."""
    from harness.engine.execute import _Lookahead

    groups = _groups("off", ["uv:width=4", "uv:width=8"])
    with _Lookahead(groups, 2, worker=True) as lookahead:
        assert lookahead.worker is None and lookahead.thread is None
        assert lookahead.take(1) is None
