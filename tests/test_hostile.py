"""Hostile and careless input, one test per class of issue 24: Ctrl-C, values out of range,
errors at the boundary (database, submission code), options that would be ignored, results
that mislead, the user's files, user text printed as text. The full list of inputs, each as
a real process, is benchmarks/hostile_inputs.py."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.cli import app  # noqa: E402
from harness.db import open_database  # noqa: E402
from harness.errors import run_cli  # noqa: E402

TOY = "noisy_quadratic:dim=4"
TINY = ["--max-steps", "2", "--eval-every", "1", "--quiet"]


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run_cli(app, list(args))
    return code, out.getvalue(), err.getvalue()


def one_line_error(code: int, err: str, *words: str) -> bool:
    lines = [line for line in err.splitlines() if line.strip()]
    return (code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
            and "report it" not in err and all(w in err for w in words))


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A database with two 2-step runs (seeds 0, 1; a tag full of markup and an escape code)
    and one 3-step run (seed 2)."""
    db = str(tmp_path_factory.mktemp("hostile") / "r.db")
    tag = "log:-1:5 :thumbs_down: [red]x\x1b[31m"
    assert cli("run", "--workload", TOY, "--submission", "adam", "--seeds", "2", "--tag", tag,
               *TINY, "--db", db)[0] == 0
    assert cli("run", "--workload", TOY, "--submission", "adam", "--seed-start", "2",
               "--max-steps", "3", "--eval-every", "1", "--quiet", "--db", db)[0] == 0
    con = sqlite3.connect(db)
    ids = [r[0] for r in con.execute("select id from runs order by seed")]
    sweep = con.execute("select sweep_id from runs").fetchone()[0]
    con.close()
    return {"db": db, "ids": ids, "tag": tag, "sweep": sweep}


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    """`curvebench ARGS` as a real process with SIGINT at its default (as in a terminal; a
    background process of a non-interactive shell would ignore it), in its own group."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "CURVEBENCH_COMPILE_CACHE": "off"}
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _interrupt_at(tmp_path: Path, phase: str | None, delay: float = 0.0) -> tuple[int, str, list]:
    """Start a long toy run, send SIGINT to its group once stderr shows `phase` (None: after
    `delay` seconds), and return its exit code, stderr and the runs' (status, final step)."""
    db = tmp_path / f"int-{phase}.db"
    proc = _start(["run", "--workload", TOY, "--submission", "adam", "--max-steps", "2000000",
                   "--eval-every", "100", "--no-stop-at-target", "--db", str(db)], tmp_path)
    seen = []
    if phase is None:
        time.sleep(delay)
    else:
        for line in proc.stderr:
            seen.append(line)
            if phase in line:
                break
    os.killpg(proc.pid, signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    rows = []
    if db.exists():
        con = sqlite3.connect(db)
        try:
            rows = con.execute("select status, final_step from runs").fetchall()
        except sqlite3.OperationalError:  # stopped before the schema was written
            rows = []
        con.close()
    return proc.returncode, "".join(seen) + rest, rows


def test_ctrl_c_in_training_marks_the_run_interrupted_and_exits_130(tmp_path):
    code, err, rows = _interrupt_at(tmp_path, ": training")
    assert code == 130, err[-2000:]
    assert err.rstrip().endswith("error: interrupted"), err[-2000:]
    assert "Traceback" not in err and "Exception ignored" not in err
    assert [status for status, _ in rows] == ["interrupted"]


@pytest.mark.slow
@pytest.mark.parametrize("moment", [None, ": preparing", ": compiling", ": writing"])
def test_ctrl_c_at_every_moment_stops_cleanly(tmp_path, moment):
    code, err, rows = _interrupt_at(tmp_path, moment, delay=0.5)
    assert code == 130, err[-2000:]
    assert "error: interrupted" in err and "Traceback" not in err and "Exception ignored" not in err
    # cut while a trial's outcome is being written, the outcome is written whole (the Ctrl-C
    # waits for it, harness.interrupt.deferred); at any other moment the trial is interrupted
    ends = {"interrupted"} | ({"reached", "not_reached", "diverged"} if moment == ": writing" else set())
    assert all(status in ends for status, _ in rows), rows


def test_values_out_of_range_are_refused_before_anything_trains(tmp_path):
    db = str(tmp_path / "r.db")
    for args, words in (
            (["--hparam", "learning_rate=-0.5"], ("outside (0, inf)", "hparam_ranges.json")),
            (["--hparam", "beta2=1.5"], ("beta2", "[0, 1)")),
            (["--seeds", "500000000"], ("--seeds", "10000")),
            (["--seed-start", str(2**31)], ("first seed",))):
        code, _, err = cli("run", "--workload", TOY, "--submission", "adam", *TINY, *args, "--db", db)
        assert one_line_error(code, err, *words), (args, err)
    config = tmp_path / "c.toml"
    for text, words in (("[options]\nmax_steps = 2.5\n", ("max_steps = 2.5", "an integer")),
                        ("seed_start = -3\n", ("seed_start",)),
                        ("[options]\nritz_tol = nan\n", ("ritz_tol",))):
        config.write_text(f'workloads = ["{TOY}"]\nsubmission = "adam"\n' + text)
        code, _, err = cli("sweep", "--config", str(config), "--quiet", "--db", db)
        assert one_line_error(code, err, *words), (text, err)
    code, _, err = cli("run", "--workload", "noisy_quadratic:sigma=inf", "--submission", "adam",
                       *TINY, "--db", db)
    assert one_line_error(code, err, "finite")
    assert not Path(db).exists() or not sqlite3.connect(db).execute(
        "select name from sqlite_master where name='runs'").fetchall() or \
        sqlite3.connect(db).execute("select count(*) from runs").fetchone() == (0,)


def test_errors_of_the_users_making_are_one_line_at_the_boundary(tmp_path, stored):
    # a database whose data pages are damaged (its schema readable)
    db = tmp_path / "damaged.db"
    database = open_database(str(db))
    for i in range(400):
        database.add_sweep(f"{i:036d}", "x" * 200, {"n": i}, name=f"sweep-{i}")
    database.engine.dispose()
    con = sqlite3.connect(db)
    con.execute("pragma wal_checkpoint(truncate)")
    roots = max(r[0] for r in con.execute("select rootpage from sqlite_master where rootpage > 0"))
    pages = con.execute("pragma page_count").fetchone()[0]
    con.close()
    data = bytearray(db.read_bytes())
    for page in range(roots, pages):  # pages after every root: the sweeps' rows
        data[page * 4096: page * 4096 + 200] = os.urandom(200)
    db.write_bytes(bytes(data))
    code, _, err = cli("runs", "--sweep", "sweep-399", "--db", str(db))
    assert one_line_error(code, err, "damaged", ".recover"), err
    # a submission returning parameters of another shape: refused, the run failed
    sub = tmp_path / "shape"
    sub.mkdir()
    text = (REPO / "submissions" / "adam" / "submission.py").read_text()
    old = "    return optax.apply_updates(params, updates), new_model_state"
    assert old in text
    (sub / "submission.py").write_text(text.replace(
        old, "    params = jax.tree_util.tree_map(lambda p: p.sum(), params)\n"
             "    return params, new_model_state"))
    (sub / "hparams.json").write_text((REPO / "submissions" / "adam" / "hparams.json").read_text())
    code, _, err = cli("run", "--workload", TOY, "--submission", str(sub), *TINY,
                       "--db", str(tmp_path / "s.db"))
    assert one_line_error(code, err, "update_params returned params"), err
    status = sqlite3.connect(tmp_path / "s.db").execute("select status from runs").fetchall()
    assert status == [("failed",)]


def test_options_that_would_be_ignored_are_refused(tmp_path, stored):
    db = stored["db"]
    for args, words in (
            (["run", "--workload", TOY, "--workload", "mnist_mlp", "--submission", "adam"],
             ("--workload given 2 times",)),
            (["run", "--workload", TOY, "--submission", "adam", "--curvature-vectors", "2"],
             ("--curvature-vectors", "--curvature")),
            (["score", "adam", "--sweep", stored["sweep"], "--origins", "run"],
             ("--sweep", "--origins")),
            (["score", "adam", "--workloads", " ; "], ("names no workload",)),
            (["check", "--workload", TOY, "--submission", "adam", "--runs", stored["ids"][0],
              "--hparam", "learning_rate=0.5"], ("--runs", "--hparam")),
            (["refs", "list", "--refs", str(tmp_path / "nothing")], ("--refs", "no such folder"))):
        code, _, err = cli(*args, "--db", db)
        assert one_line_error(code, err, *words), (args, err)


def test_results_that_would_mislead_are_refused(tmp_path, stored):
    db, ids = stored["db"], stored["ids"]
    code, _, err = cli("refs", "freeze", "--workload", TOY, "--submission", "adam",
                       "--runs", f"{ids[0]},{ids[2]}", "--db", db)
    assert one_line_error(code, err, "max_steps"), err
    code, _, err = cli("compare", f"runs:{ids[0]},{ids[0][:8]}", f"runs:{ids[1]}", "--db", db)
    assert one_line_error(code, err, "named twice"), err
    for pattern in ("_" + ids[0][1:6], ids[0][:3] + "%"):
        code, _, err = cli("runs", "show", pattern, "--db", db)
        assert one_line_error(code, err, "no run"), (pattern, err)


def test_the_users_files_are_never_replaced_or_created_by_mistake(tmp_path, stored):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "index.html").write_text("my page")
    (mine / "01-my-figure.svg").write_text("<svg/>")
    for args in (["report", "--out", str(mine)], ["export", "--out", str(mine)],
                 ["report", "--out", ""], ["export", "--out", " "]):
        code, _, err = cli(*args, "--db", stored["db"])
        assert one_line_error(code, err, "--out"), (args, err)
    assert (mine / "index.html").read_text() == "my page" and (mine / "01-my-figure.svg").exists()
    for args in (["runs"], ["db", "upgrade"], ["refs", "list"], ["runs", "show", "abc"]):
        code, _, err = cli(*args, "--db", str(tmp_path / "typo.db"))
        assert one_line_error(code, err, "no results database"), (args, err)
        assert not (tmp_path / "typo.db").exists()
        code, _, err = cli(*args, "--db", "")
        assert one_line_error(code, err, "--db ''"), (args, err)


def test_user_text_is_printed_as_text(stored):
    from harness.cli.app import out

    with out.capture() as captured:
        code, _, _ = cli("runs", "--db", stored["db"])
    shown = captured.get()
    assert code == 0
    assert "log:-1:5 :thumbs_down: [red]x\\x1b[31m" in shown.replace("\n", ""), shown
    assert "\x1b" not in shown and "\N{THUMBS DOWN SIGN}" not in shown
    code, _, err = cli("compare", "\x1b]0;title\x07", "sgd", "--db", stored["db"])
    assert code == 2 and "\x1b" not in err and "\x07" not in err and "\\x1b" in err


def test_work_too_large_to_start_is_refused_before_it_starts(tmp_path, monkeypatch):
    """A model whose trace alone runs past the deadline, or whose initialisation has more
    operations than are compiled, and a Lanczos order past the parameter count: one line each,
    nothing recorded (bounds lowered so that small real models cross them)."""
    from harness import guards

    db = str(tmp_path / "r.db")
    monkeypatch.setattr(guards, "TRACE_SECONDS", 0.3)
    code, _, err = cli("run", "--workload", "mnist_mlp:depth=2000", "--submission", "adam", *TINY,
                       "--db", db)
    assert one_line_error(code, err, "tracing", "over 0.3 s", "smaller knob values"), err
    monkeypatch.setattr(guards, "TRACE_SECONDS", 600.0)
    monkeypatch.setattr(guards, "MAX_MODEL_OPS", 500)
    code, _, err = cli("run", "--workload", "mnist_mlp:depth=13,width=7", "--submission", "adam",
                       *TINY, "--db", db)
    assert one_line_error(code, err, "operations", "at most 500"), err
    monkeypatch.undo()
    for order in ("5", "400"):  # an auto order's cap is a ceiling, accepted above the count
        code, _, err = cli("run", "--workload", TOY, "--submission", "adam", *TINY, "--curvature",
                           "ggn", "--curvature-every", "init", "--lanczos-order", order, "--db", db)
        assert one_line_error(code, err, "has 4 parameters", "--lanczos-order 4 or less"), err
    # in a grid the order is judged against the largest variant: uv:width=3 has 6 parameters,
    # uv:width=5 has 10; order 12 is of use to neither (an order only the larger variant can
    # use is accepted: tests/test_analyze_settings.py, uv:width=3|64 at order 12)
    grid = ["sweep", "--workload", "uv:width=3|5", "--submission", "adam", *TINY, "--curvature",
            "hessian", "--curvature-every", "init", "--db", db]
    code, _, err = cli(*grid, "--lanczos-order", "12")
    assert one_line_error(code, err, "uv:width=5 (the largest variant) has 10 parameters",
                          "--lanczos-order 10 or less"), err
    code, _, err = cli("run", "--workload", "uv:width=3", "--submission", "adam", *TINY,
                       "--curvature", "hessian@nothing/*", "--curvature-every", "init", "--db", db)
    assert one_line_error(code, err, "matches no parameter"), err
    assert not Path(db).exists() or sqlite3.connect(db).execute(
        "select count(*) from sqlite_master where name='runs'").fetchone() == (0,) or \
        sqlite3.connect(db).execute("select count(*) from runs").fetchone() == (0,)


def test_folders_and_stores_that_cannot_serve_are_refused_before_work(tmp_path, stored):
    db = str(tmp_path / "r.db")
    afile = tmp_path / "afile"
    afile.write_text("the user's file\n")
    run = ["run", "--workload", TOY, "--submission", "adam", *TINY, "--db", db]
    for args, words in (
            (["--data-dir", str(tmp_path)], ("reads no files", "drop --data-dir")),
            (["--data-dir", str(afile)], ("--data-dir", "is a file")),
            (["--checkpoint-every", "1", "--checkpoint-dir", str(afile)], ("--checkpoint-dir", "a file")),
            (["--checkpoint-every", "off", "--checkpoint-dir", str(tmp_path / "c")],
             ("--checkpoint-every off",)),
            (["--compile-cache", str(afile)], ("--compile-cache", "a file")),
            (["--mlflow", "http://127.0.0.1:1"], ("no server answers",)),
            (["--mlflow", str(afile)], ("is a file",))):
        code, _, err = cli(*run, *args)
        assert one_line_error(code, err, *words), (args, err)
    assert not (tmp_path / "c").exists()
    assert afile.read_text() == "the user's file\n"
    sweep = ["sweep", "--workload", TOY, "--submission", "adam", *TINY, "--db", db]
    for args, words in ((["--partition", "gpu"], ("--partition", "submitit")),
                        (["--executor", "ray", "--time-limit-min", "5"], ("--time-limit-min",)),
                        (["--max-retries", "1"], ("--max-retries", "local"))):
        code, _, err = cli(*sweep, *args)
        assert one_line_error(code, err, *words), (args, err)
    assert not Path(db).exists() or sqlite3.connect(db).execute(
        "select count(*) from runs").fetchone() == (0,)


def test_a_name_or_id_means_one_thing(tmp_path, stored):
    db = str(tmp_path / "r.db")
    sweep = ["sweep", "--workload", TOY, "--submission", "adam", *TINY, "--db", db]
    assert cli(*sweep, "--name", "mine")[0] == 0
    code, _, err = cli(*sweep, "--name", "mine")
    assert one_line_error(code, err, "already names sweep", "--resume mine"), err
    first = sqlite3.connect(db).execute("select id from sweeps").fetchone()[0]
    code, _, err = cli(*sweep, "--name", first[:4])  # a name that would shadow an id prefix
    assert one_line_error(code, err, "already names sweep"), err
    assert sqlite3.connect(db).execute("select count(*) from sweeps").fetchone() == (1,)
    for ids in ("%", "_" + stored["ids"][0][1:6], "zz"):
        code, _, err = cli("report", "--runs", ids, "--out", str(tmp_path / "rep"), "--db", stored["db"])
        assert one_line_error(code, err, "is no run id"), (ids, err)
    assert not (tmp_path / "rep").exists()
    code, _, err = cli("report", "--out", str(tmp_path / "rep2"), "--db", str(tmp_path / "typo.db"))
    assert code == 0 and "no results database" in err and not (tmp_path / "typo.db").exists()
    page = (tmp_path / "rep2" / "index.html").read_text()
    assert str(tmp_path / "typo.db") in page and "sqlite://<" not in page and "sqlite:// " not in page


def test_a_ctrl_c_during_a_deferred_write_waits_for_it():
    """interrupt.deferred (a trial's outcome being written): a real SIGINT inside is only
    remembered; the next check raises it."""
    from harness import interrupt

    previous, hook = signal.getsignal(signal.SIGINT), sys.unraisablehook
    try:
        interrupt.install()
        with interrupt.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here: it must not raise
            written = True
        assert written and interrupt.requested()
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = hook
        interrupt._requested.clear()
