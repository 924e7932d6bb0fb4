"""The persistent compilation cache: on by default, hits recorded, results unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from harness import compile_cache
from tests.conftest import REPO, SUBMISSIONS


def test_cache_directory_from_option_environment_or_default(monkeypatch, tmp_path):
    monkeypatch.delenv(compile_cache.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache.resolve() == tmp_path / "curvebench" / "jax"
    monkeypatch.setenv(compile_cache.ENV_VAR, "off")
    assert compile_cache.resolve() is None
    assert compile_cache.resolve(str(tmp_path / "c")) == tmp_path / "c"  # the option wins
    monkeypatch.setenv(compile_cache.ENV_VAR, str(tmp_path / "e"))
    assert compile_cache.resolve() == tmp_path / "e" and compile_cache.resolve("OFF") is None


def _run(tmp_path, cache: str) -> dict:
    """One tiny trial in a fresh process; its eval curve and cache verdict from the database."""
    db = tmp_path / "r.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", "from harness.cli import app; app()", "run", "--workload",
         "mnist_mlp:width=32", "--submission", str(SUBMISSIONS / "adam"), "--max-steps", "6",
         "--eval-every", "3", "--compile-cache", cache, "--db", str(db), "--json"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [trial] = json.loads(proc.stdout)
    from harness.db import open_database

    database = open_database(str(db))
    run = database.get_run(trial["run_id"])
    return {"curve": database.eval_curve(run.id), "losses": database.losses(run.id)[1].tolist(),
            "hit": run.compile_cache_hit, "json_hit": trial["compile_cache_hit"]}


def test_cache_cold_warm_and_off_give_bit_identical_results(tmp_path):
    cache = str(tmp_path / "cache")
    cold, warm, off = _run(tmp_path, cache), _run(tmp_path, cache), _run(tmp_path, "off")
    assert (cold["hit"], warm["hit"], off["hit"]) == (False, True, None)
    assert warm["json_hit"] is True
    assert cold["curve"] == warm["curve"] == off["curve"] and len(cold["curve"]) == 2
    assert cold["losses"] == warm["losses"] == off["losses"]
