"""Hostile and careless inputs to every `curvebench` subcommand, each run as a real process.

Each input is `python3 -m harness.cli ARGS` in a fresh temporary folder (its own copy of a
seeded results database), with a timeout, and is classified by what came back:

  one-line error     exit 1, 2 or 130, `error: ...` on stderr, no traceback (for an input that
                     should be refused, or interrupted: the right answer)
  traceback          a Python traceback, "Exception ignored", or an internal error (exit 3,
                     "report it"): the user is asked to report what they could fix
  hang or crash      timed out, or killed by a signal (SIGSEGV, SIGABRT)
  wrongly accepted   exit 0 for an input that should be refused, or a check of its effect failed
  correctly accepted exit 0 and its check holds, for an input that should work
  wrongly refused    an error for an input that should work

Usage: python3 benchmarks/hostile_inputs.py --checkout DIR [--jobs 3] [--timeout 60]
       [--only CLASS] [--range START:END] [--list] [--verbose]
The checkout goes on PYTHONPATH. Budgets are tiny (noisy_quadratic:dim=4, --max-steps 2).
Prints a line per input and the counts per outcome and per class.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import dataclasses
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

OUTCOMES = ("one-line error", "traceback", "hang or crash", "wrongly accepted",
            "correctly accepted", "wrongly refused")
TOY = "noisy_quadratic:dim=4"
TINY = ["--max-steps", "2", "--eval-every", "1", "--quiet"]
RUN = ["run", "--workload", TOY, "--submission", "adam", *TINY]


@dataclasses.dataclass
class Case:
    cls: str                       # the class (1-8) it belongs to, as a short name
    argv: list[str]                # placeholders {db} {tmp} {sub:NAME} {corrupt} expanded per run
    expect: str                    # refuse | accept | either | interrupt
    check: Callable[[str, str, Path], bool] | None = None  # (stdout, stderr, tmp) -> effect ok
    sigint_after: float | None = None  # send SIGINT to the process group after this many seconds
    env: dict[str, str] | None = None
    label: str = ""


CASES: list[Case] = []


def add(cls, argv, expect="refuse", check=None, **kw):
    CASES.append(Case(cls, list(argv), expect, check, **kw))


# ---------------------------------------------------------------- checks of effects
def json_ok(out, err, tmp):
    try:
        json.loads(out)
        return True
    except ValueError:
        return False


def files_kept(out, err, tmp):
    d = tmp / "mine"
    return (d / "index.html").read_text() == "my page" and (d / "01-my-figure.svg").exists()


def no_db_created(name):
    return lambda out, err, tmp: not (tmp / name).exists()


def no_raw_escape(out, err, tmp):
    return "\x1b[31m" not in out + err and "\x1b]" not in out + err


def shows_text(text):
    return lambda out, err, tmp: text in out + err


def checkpoint_kept(out, err, tmp):
    return any((tmp / "db.db.checkpoints").glob("*/state-*.npz"))


def runs_not_running(out, err, tmp):
    con = sqlite3.connect(tmp / "r.db")
    try:
        rows = con.execute("select status from runs").fetchall()
    except sqlite3.Error:
        return True
    finally:
        con.close()
    return all(r[0] != "running" for r in rows)


# ---------------------------------------------------------------- the inputs, per class
def build_cases() -> None:
    db = ["--db", "{db}"]
    # 1. Ctrl-C at several moments of training commands
    for after in (0.3, 1.0, 2.0, 3.5, 5.0, 8.0):
        add("1 interrupt", ["run", "--workload", TOY, "--submission", "adam", "--max-steps", "200000",
                            "--eval-every", "50", "--quiet", "--db", "{tmp}/r.db"],
            "interrupt", runs_not_running, sigint_after=after)
    for after in (1.0, 4.0, 8.0):
        add("1 interrupt", ["sweep", "--workload", TOY, "--submission", "adam", "--seeds", "3",
                            "--max-steps", "200000", "--eval-every", "50", "--quiet",
                            "--db", "{tmp}/r.db"], "interrupt", runs_not_running, sigint_after=after)
    for after in (2.0, 6.0):
        add("1 interrupt", ["run", "--workload", TOY, "--submission", "sgd", "--max-steps", "3000",
                            "--eval-every", "1", "--curvature", "hessian", "--curvature-every",
                            "every:1", "--quiet", "--db", "{tmp}/r.db"], "interrupt",
            runs_not_running, sigint_after=after)
    add("1 interrupt", ["score", "adam", "--workloads", TOY, "--seeds", "2", "--quiet",
                        "--db", "{tmp}/r.db"], "interrupt", runs_not_running, sigint_after=4.0)

    # 2. unbounded or out-of-range values (options, knobs, config, hparams)
    for w in ("mnist_mlp:depth=100000", "mnist_mlp:width=100000000", "noisy_quadratic:dim=10000000000",
              "mnist_mlp:depth=100000,width=1000", "fashion_mnist_mlp:depth=1000000",
              "uv:width=1000000000", "noisy_quadratic:dim=1e9"):
        add("2 range", ["run", "--workload", w, "--submission", "adam", *TINY, *db])
    for seeds in ("1000000000", "99999999999999999999", "2147483648", "100000000"):
        add("2 range", ["run", "--workload", TOY, "--submission", "adam", "--seeds", seeds, *TINY, *db])
        add("2 range", ["sweep", "--workload", TOY, "--submission", "adam", "--seeds", seeds,
                        *TINY, *db])
    for start in ("2147483648", "99999999999999999999999", "-4", "1e3", "0x10"):
        add("2 range", [*RUN, "--seed-start", start, *db])
    add("2 range", ["sweep", "--workload", "noisy_quadratic:dim=" + "|".join(str(i) for i in range(1, 401)),
                    "--submission", "adam", "--hparam",
                    "learning_rate=" + "|".join(f"1e-{i % 9 + 1}{i}" for i in range(400)), *TINY, *db])
    add("2 range", ["sweep", "--workload", TOY, "--submission", "adam", "--hparam",
                    "learning_rate=" + "|".join(str(0.001 * (i + 1)) for i in range(1000)),
                    "--hparam", "beta1=" + "|".join(str(0.5 + i / 1000) for i in range(400)),
                    *TINY, *db])
    for order in ("100000", "5000", "auto:1000000"):
        add("2 range", [*RUN, "--curvature", "hessian", "--curvature-every", "init",
                        "--lanczos-order", order, *db], "either")
    for bad in ("learning_rate=-0.1", "learning_rate=-1e-3", "beta1=2", "beta1=-0.5", "beta2=1.5",
                "beta2=-1", "epsilon=-1e-8", "learning_rate=0", "beta1=1", "learning_rate=1e400",
                "learning_rate=NaN", "learning_rate=Infinity", "epsilon=-Infinity"):
        add("2 range", [*RUN, "--hparam", bad, *db])
        add("2 range", ["sweep", "--workload", TOY, "--submission", "adam", "--hparam", bad,
                        *TINY, *db])
    for sub, bad in (("sgd", "learning_rate=-0.1"), ("momentum", "momentum=1.5"),
                     ("momentum", "momentum=-0.1"), ("momentum", "clip_norm=-1"),
                     ("gd", "warmup_steps=-5"), ("gd", "final_lr_fraction=-1"),
                     ("gd_warmup", "decay_steps=-1"), ("adamw", "weight_decay=-0.01"),
                     ("adamw", "one_minus_beta1=2"), ("nadamw", "beta2=7"),
                     ("nadamw", "warmup_factor=-3"), ("sgd", "batch_size=0"),
                     ("sgd", "batch_size=-8"), ("adam", "batch_size=2.5")):
        add("2 range", ["run", "--workload", TOY, "--submission", sub, "--hparam", bad, *TINY, *db])
    for knob in ("sigma=inf", "sigma=nan", "sigma=-1", "dim=0", "dim=-3", "dim=2.5", "sigma=1e999"):
        add("2 range", ["run", "--workload", f"noisy_quadratic:{knob}", "--submission", "adam",
                        *TINY, *db])
    for opt, val in (("--max-steps", "5.7"), ("--max-steps", "0"), ("--max-steps", "-2"),
                     ("--max-steps", "99999999999999999999"), ("--eval-every", "0"),
                     ("--eval-every", "3.5"), ("--divergence-factor", "nan"),
                     ("--divergence-factor", "inf"), ("--divergence-factor", "-1"),
                     ("--ritz-tol", "nan"), ("--ritz-tol", "inf"), ("--lanczos-probes", "0"),
                     ("--trace-probes", "-1"), ("--cov-batches", "1"), ("--search-point", "-1"),
                     ("--checkpoint-every", "-5"), ("--checkpoint-every", "0s"),
                     ("--curvature-batch", "-5"), ("--curvature-batch", "0"),
                     ("--cov-batch-size", "-1"), ("--chunk-mode", "fast"),
                     ("--curvature-every", "log:-1:5"), ("--curvature-every", "every:0"),
                     ("--curvature-every", "at:-3"), ("--lanczos-order", "-1"),
                     ("--lanczos-order", "0"), ("--trace", "magic"), ("--curvature-split", "nope")):
        extra = ["--curvature", "hessian"] if opt.startswith(("--ritz", "--lanczos", "--trace",
                                                             "--cov", "--curvature-")) else []
        add("2 range", [*RUN, opt, val, *extra, *db])
    for opt, val in (("--max-group-size", "0"), ("--cpus-per-group", "-1"), ("--cpus-per-group", "nan"),
                     ("--gpus-per-group", "inf"), ("--time-limit-min", "0"), ("--max-retries", "-1"),
                     ("--executor", "cloud")):
        add("2 range", ["sweep", "--workload", TOY, "--submission", "adam", opt, val, *TINY, *db])
    for cmd in (["tune", "{sub:algoperf}", "--trials", "0"], ["tune", "{sub:algoperf}", "--studies", "-1"],
                ["tune", "{sub:algoperf}", "--search-seed", "-1"],
                ["check", "--workload", TOY, "--submission", "adam", "--seeds", "0"],
                ["check", "--workload", TOY, "--submission", "adam", "--resamples", "5"],
                ["check", "--workload", TOY, "--submission", "adam", "--seeds", "1000000000"],
                ["score", "adam", "--seeds", "0"], ["score", "adam", "--seeds", "1000000000"],
                ["score", "adam", "--timing", "wallclock"], ["analyze", "catapult", "--seeds", "a,b"],
                ["analyze", "catapult", "--seeds", "-1"], ["analyze", "nothing"],
                ["refs", "freeze", "--workload", TOY, "--submission", "adam", "--tolerance", "-1"],
                ["refs", "freeze", "--workload", TOY, "--submission", "adam", "--tolerance", "nan"],
                ["report", "--out", "{tmp}/rep", "--density-steps", "-1,x"]):
        add("2 range", [*cmd, *db])
    # config files: wrong types and ranges
    for name, text in CONFIGS.items():
        add("2 range" if name.startswith("range") else "3 boundary",
            ["sweep", "--config", "{tmp}/" + name + ".toml", "--quiet", *db])

    # 3. errors at the boundary: database, file system, config, submission code, tracking
    for cmd in (["runs"], ["runs", "show", "abc"], ["compare", "adam", "sgd"], ["export", "--out", "{tmp}/e"],
                ["report", "--out", "{tmp}/rep"], ["refs", "list"], ["refs", "export", "--out", "{tmp}/x"],
                ["db", "upgrade"], ["curvature", "abc"], RUN, ["score", "adam", "--sweep", "x"],
                ["refs", "freeze", "--workload", TOY, "--submission", "adam"]):
        add("3 boundary", [*cmd, "--db", "{corrupt}"])
        add("3 boundary", [*cmd, "--db", "{tmp}/notadb.txt"])
    for cmd in (["runs"], ["db", "upgrade"], RUN):
        add("3 boundary", [*cmd, "--db", "{tmp}/empty.db"], "either")
        add("3 boundary", [*cmd, "--db", "{tmp}/adir"])
        add("3 boundary", [*cmd, "--db", "postgresql://nobody@127.0.0.1:1/nodb"])
        add("3 boundary", [*cmd, "--db", "nosuchdriver://x/y"])
        add("3 boundary", [*cmd, "--db", "sqlite:////proc/version/r.db"])
    for out in ("/", "/proc/version", "/proc/x/y", "{tmp}/afile", "{tmp}/alink-file", "/dev/null"):
        add("3 boundary", ["export", "--out", out, *db])
        add("3 boundary", ["report", "--out", out, *db])
        add("3 boundary", ["refs", "export", "--out", out, *db])
    add("3 boundary", ["analyze", "quadratic", "--tiny", "--report", "/proc/version", *db])
    add("3 boundary", ["analyze", "quadratic", "--tiny", "--report", "{tmp}/afile", *db])
    for uri in ("{tmp}/adir", "{tmp}", "file:///proc/version", "sqlite:////proc/version/m.db",
                "http://127.0.0.1:1"):
        add("3 boundary", [*RUN, "--mlflow", uri, *db])
    for tag in ("x" * 129, "x" * 5000):
        add("3 boundary", [*RUN, "--tag", tag, *db], "either")
        add("3 boundary", ["sweep", "--workload", TOY, "--submission", "adam", "--name", tag,
                           *TINY, *db], "either")
    for sub in ("print", "print_init", "print_update"):
        add("3 boundary", ["run", "--workload", TOY, "--submission", "{sub:" + sub + "}", "--json",
                           *TINY, *db], "accept", json_ok)
        add("3 boundary", ["sweep", "--workload", TOY, "--submission", "{sub:" + sub + "}", "--json",
                           *TINY, *db], "accept", json_ok)
    for sub in ("exit0", "exit0_update", "exit3", "wrong_shape", "wrong_tree", "wrong_dtype",
                "raise_import", "syntax", "keyboard", "returns_none"):
        add("3 boundary", ["run", "--workload", TOY, "--submission", "{sub:" + sub + "}", *TINY, *db])
    # an algorithm whose parameters turn NaN is a result (the run is stored as diverged, with the
    # step and the metrics that were not finite), not bad input; a submission that unbinds
    # sys.modules['harness'] after the harness is loaded changes nothing the run needs
    add("3 boundary", ["run", "--workload", TOY, "--submission", "{sub:nan_params}", *TINY, *db],
        "accept", lambda out, err, tmp: "diverged" in out + err)
    add("3 boundary", ["run", "--workload", TOY, "--submission", "{sub:sys_modules}", *TINY, *db],
        "accept")
    add("3 boundary", ["refs", "import", "{tmp}/adir", *db])
    add("3 boundary", ["refs", "import", "{tmp}/bad.jsonl", *db])
    add("3 boundary", ["refs", "import", "{tmp}/afile", *db])
    add("3 boundary", ["run", "--workload", TOY, "--submission", "adam", "--data-dir", "/proc/version",
                       *TINY, *db])
    add("3 boundary", ["run", "--workload", "mnist_mlp", "--submission", "adam", "--data-dir",
                       "{tmp}/adir", *TINY, *db])
    add("3 boundary", [*RUN, "--compile-cache", "/proc/version", *db], "either")
    add("3 boundary", [*RUN, "--checkpoint-every", "1", "--checkpoint-dir", "/proc/version", *db])

    # 4. options silently ignored
    for extra in (["--tag", "base"], ["--workloads", TOY], ["--origins", "run"],
                  ["--hparam", "learning_rate=0.1"], ["--data-dir", "{tmp}"], ["--seeds", "7"]):
        add("4 ignored", ["score", "adam", "--sweep", "sw1", *extra, *db])
    for w in (";", ";;", " ; ", ",", "noisy_quadratic:dim=4;", ";noisy_quadratic:dim=4"):
        add("4 ignored", ["score", "adam", "--workloads", w, "--seeds", "1", "--quiet", *db],
            "either" if w.strip(";") else "refuse")
    for cmd in (RUN, ["sweep", "--workload", TOY, "--submission", "adam", *TINY],
                ["check", "--workload", TOY, "--submission", "adam", "--seeds", "1"]):
        add("4 ignored", [*cmd, "--data-dir", "{tmp}/adir", *db])
        add("4 ignored", [*cmd, "--data-source", "idx", *db])
    for flag in (["--curvature-vectors", "3"], ["--lanczos-order", "5"], ["--curvature-every", "init"],
                 ["--trace", "hutchpp"], ["--cov-batches", "4"], ["--ritz-tol", "0.1"],
                 ["--curvature-batch", "16"]):
        add("4 ignored", [*RUN, *flag, *db])
    add("4 ignored", ["check", "--workload", TOY, "--submission", "adam", "--runs", "{run0}",
                      "--hparam", "learning_rate=0.5", *db])
    add("4 ignored", ["check", "--workload", TOY, "--submission", "adam", "--runs", "{run0}",
                      "--seeds", "4", *db])
    add("4 ignored", ["check", "--workload", TOY, "--submission", "adam", "--refs", "{tmp}/nodir",
                      "--seeds", "1", *db])
    add("4 ignored", ["refs", "list", "--refs", "{tmp}/nodir", *db])
    add("4 ignored", ["refs", "list", "--refs", "{tmp}/afile", *db])
    add("4 ignored", ["run", "--workload", TOY, "--workload", "noisy_quadratic:dim=5",
                      "--submission", "adam", *TINY, *db])
    add("4 ignored", ["run", "--workload", TOY, "--submission", "adam", "--submission", "sgd",
                      *TINY, *db])
    add("4 ignored", ["check", "--workload", TOY, "--workload", "mnist_mlp", "--submission", "adam",
                      *db])
    add("4 ignored", ["compare", "adam", "sgd", "--workload", TOY, "--workload", "mnist_mlp", *db])
    add("4 ignored", ["run", "--resume", "{run0}", "--workload", "mnist_mlp", *db])
    add("4 ignored", ["run", "--resume", "{run0}", "--max-steps", "9", *db])
    add("4 ignored", ["sweep", "--resume", "sw1", "--seeds", "5", *db])
    add("4 ignored", ["runs", "--tag", "base", "--tag", "other", *db])
    add("4 ignored", ["sweep", "--workload", TOY, "--submission", "adam", "--executor", "local",
                      "--address", "1.2.3.4:5", *TINY, *db])
    add("4 ignored", ["sweep", "--workload", TOY, "--submission", "adam", "--partition", "gpu",
                      *TINY, *db])
    add("4 ignored", ["run", "--workload", TOY, "--submission", "adam", "--keep-checkpoints", *TINY, *db],
        "accept", checkpoint_kept)  # it keeps the final state: an effect, not an ignored option

    # 5. results that mislead
    add("5 mislead", ["refs", "freeze", "--workload", TOY, "--submission", "adam", "--runs",
                      "{run0},{runlong}", *db])
    add("5 mislead", ["refs", "freeze", "--workload", TOY, "--submission", "adam", "--runs",
                      "{run0},{run0}", *db])
    add("5 mislead", ["refs", "freeze", "--workload", TOY, "--submission", "adam", "--runs",
                      "{run0},{runsgd}", *db])
    add("5 mislead", ["refs", "freeze", "--workload", TOY, "--submission", "sgd", "--runs", "{run0}", *db])
    add("5 mislead", ["refs", "freeze", "--workload", "mnist_mlp", "--submission", "adam", "--runs",
                      "{run0}", *db])
    add("5 mislead", ["refs", "import", "{tmp}/badcount.jsonl", *db])
    add("5 mislead", ["refs", "import", "{tmp}/badcount2.jsonl", *db])
    add("5 mislead", ["compare", "runs:{run0},{run0}", "runs:{run1}", "--json", *db], "either",
        lambda o, e, t: '"n_runs": 2' not in o)
    add("5 mislead", ["compare", "runs:{run0},{run0p}", "runs:{run1}", "--json", *db], "either",
        lambda o, e, t: '"n_runs": 2' not in o)
    add("5 mislead", ["sweep", "--resume", "sw1", "--max-steps", "7", "--quiet", *db])
    add("5 mislead", ["sweep", "--resume", "sw1", "--workload", "noisy_quadratic:dim=5",
                      "--submission", "adam", "--quiet", *db])
    add("5 mislead", ["sweep", "--resume", "sw1", "--hparam", "learning_rate=0.5", "--quiet", *db])
    add("5 mislead", ["sweep", "--workload", TOY, "--submission", "adam", "--name", "sw1", *TINY, *db])
    add("5 mislead", ["sweep", "--workload", TOY, "--submission", "sgd", "--name", "sw1", *TINY, *db])
    for prefix in ("_", "%", "{run0_}", "{run0pct}", "____", "%%", "{run0}%", "a_"):
        add("5 mislead", ["runs", "show", prefix, *db])
        add("5 mislead", ["curvature", prefix, *db])
    add("5 mislead", ["report", "--runs", "%", "--out", "{tmp}/rep", *db])
    add("5 mislead", ["compare", "runs:%", "runs:_", *db])
    add("5 mislead", ["export", "--sweep", "%", "--out", "{tmp}/e", *db])
    add("5 mislead", ["runs", "--sweep", "%", *db])
    add("5 mislead", ["runs", "--tag", "%", *db], "either", lambda o, e, t: "base" not in o)

    # 6. the user's files
    add("6 files", ["report", "--out", "{tmp}/mine", *db], "either", files_kept)
    add("6 files", ["export", "--out", "{tmp}/mine", *db], "either", files_kept)
    add("6 files", ["refs", "export", "--out", "{tmp}/mine", *db], "either", files_kept)
    for cmd in (["runs"], ["db", "upgrade"], ["refs", "list"], ["compare", "adam", "sgd"],
                ["export", "--out", "{tmp}/e"], ["report", "--out", "{tmp}/rep"],
                ["curvature", "abc"], ["runs", "show", "abc"], ["score", "adam", "--sweep", "x"],
                ["refs", "export", "--out", "{tmp}/x"]):
        # report's page for a database with no runs is kept (tests/test_report.py), so a
        # missing one may give that page too, creating nothing
        add("6 files", [*cmd, "--db", "{tmp}/typo.db"], "either" if cmd[0] == "report" else "refuse",
            no_db_created("typo.db"))
        add("6 files", [*cmd, "--db", ""], "refuse")
    for cmd in (["export"], ["report"], ["refs", "export"]):
        add("6 files", [*cmd, "--out", "", *db])
        add("6 files", [*cmd, "--out", "  ", *db])
    add("6 files", ["analyze", "quadratic", "--tiny", "--report", "{tmp}/mine", *db], "either", files_kept)
    add("6 files", ["analyze", "quadratic", "--tiny", "--report", "", *db])
    add("6 files", [*RUN, "--db", ""])
    add("6 files", [*RUN, "--db", "   "])
    add("6 files", ["report", "--out", "{tmp}/mine", "--force", *db], "either")
    add("6 files", ["runs", "--db", "{tmp}/adir/typo.db"], "refuse", no_db_created("adir/typo.db"))
    add("6 files", ["runs", "--db", "sqlite:///{tmp}/typo2.db"], "refuse", no_db_created("typo2.db"))
    add("6 files", ["runs"], "refuse", no_db_created("curvebench.db"),
        env={"CURVEBENCH_DB": "{tmp}/typo3.db"})

    # 7/8. user text printed as text
    for text in ("log:-1:5", "[bold red]x[/]", ":thumbs_down:", "[link=http://x]y[/link]",
                 "\x1b[31mred\x1b[0m", "\x1b]0;title\x07", "a\rb", "[/]"):
        add("8 text", [*RUN, "--tag", text, *db], "accept", no_raw_escape)
        add("8 text", ["runs", "--tag", text, *db], "either", no_raw_escape)
        add("8 text", [*RUN, "--curvature", "hessian", "--curvature-every", text, *db], "refuse",
            lambda o, e, t, text=text: no_raw_escape(o, e, t) and (text in e or "\x1b" in text
                                                                    or "\r" in text))
        add("8 text", ["runs", "--sweep", text, *db], "refuse", no_raw_escape)
        add("8 text", ["compare", text, "sgd", *db], "refuse", no_raw_escape)
    add("8 text", ["runs", *db], "accept", no_raw_escape)
    add("8 text", ["runs", "--json", *db], "accept", json_ok)

    # second pass: inputs of the same classes that no issue names
    for w in ("mnist_mlp:depth=50000,width=8", "fashion_mnist_mlp:depth=20000,width=4",
              "mnist_mlp:depth=8000,batchnorm=1", "uv:width=10000000000", "mnist_mlp:width=3000000"):
        add("2 range", ["run", "--workload", w, "--submission", "adam", *TINY, *db])
    for order in ("5", "999"):
        add("2 range", [*RUN, "--curvature", "ggn", "--curvature-every", "init",
                        "--lanczos-order", order, *db])
    add("2 range", [*RUN, "--curvature", "ggn", "--curvature-every", "init", "--lanczos-order",
                    "auto:64", *db], "accept")  # a cap is a ceiling: auto stops at the count
    add("2 range", [*RUN, "--curvature", "hessian@x", "--curvature-every", "init",
                    "--lanczos-order", "4", *db], "accept")  # exactly the parameter count
    add("2 range", [*RUN, "--curvature", "hessian@nothing*", "--curvature-every", "init", *db])
    add("2 range", ["sweep", "--workload", TOY, "--submission", "adam", "--seeds", "10001", *TINY, *db])
    add("2 range", ["sweep", "--workload", TOY, "--submission", "adam", "--seeds", "2", "--hparam",
                    "learning_rate=" + "|".join(f"{0.001 * (i + 1):.4f}" for i in range(5001)),
                    *TINY, *db])
    for uri in ("https://127.0.0.1:1", "http://localhost:9", "sqlite:///{tmp}/afile/m.db",
                "{tmp}/afile", ""):
        add("3 boundary", [*RUN, "--mlflow", uri, *db])
    for opt, path in (("--compile-cache", "{tmp}/afile/sub"), ("--compile-cache", "{tmp}/alink-file"),
                      ("--checkpoint-dir", "{tmp}/afile/sub"), ("--data-dir", "{tmp}/alink-file")):
        extra = ["--checkpoint-every", "1"] if opt == "--checkpoint-dir" else []
        add("3 boundary", [*RUN, opt, path, *extra, *db])
    add("3 boundary", ["run", "--workload", "mnist_mlp", "--submission", "adam", "--data-dir",
                       "{tmp}/afile", *TINY, *db])
    add("3 boundary", [*RUN, *db], env={"CURVEBENCH_COMPILE_CACHE": "{tmp}/afile"})
    for flag in (["--cpus-per-group", "2"], ["--gpus-per-group", "1"], ["--max-retries", "1"],
                 ["--executor", "ray", "--partition", "x"],
                 ["--executor", "submitit", "--address", "h:1"]):
        add("4 ignored", ["sweep", "--workload", TOY, "--submission", "adam", *flag, *TINY, *db])
    add("4 ignored", [*RUN, "--checkpoint-every", "off", "--checkpoint-dir", "{tmp}/cdir", *db])
    add("4 ignored", ["sweep", "--workload", "uv:width=4", "--submission", "adam", "--data-dir",
                      "{tmp}/adir", *TINY, *db])
    add("4 ignored", ["score", "adam", "--workloads", "lowrank", "--seeds", "1", "--data-dir",
                      "{tmp}/adir", *db])
    add("5 mislead", ["sweep", "--workload", TOY, "--submission", "sgd", "--name", "{sw1id4}",
                      *TINY, *db])
    for ids in ("{run0}_", " ", "G123", "{run0}%25"):
        add("5 mislead", ["report", "--runs", ids, "--out", "{tmp}/rep", *db])
    add("6 files", ["report", "--db", "sqlite:///{tmp}/t6.db", "--out", "{tmp}/rep"], "either",
        no_db_created("t6.db"))
    add("6 files", ["export", "--db", "{tmp}/t7.db", "--out", "{tmp}/e"], "refuse", no_db_created("t7.db"))
    add("6 files", ["compare", "runs:a", "runs:b", "--db", "{tmp}/t8.db"], "refuse", no_db_created("t8.db"))
    add("6 files", ["refs", "freeze", "--workload", TOY, "--submission", "adam", "--runs", "abc",
                    "--db", "{tmp}/t9.db"], "refuse", no_db_created("t9.db"))

    # well-formed inputs that must keep working
    add("ok", ["workloads"], "accept")
    add("ok", ["workloads", "--json"], "accept", json_ok)
    add("ok", ["runs", *db], "accept")
    add("ok", ["runs", "show", "{run0}", *db], "accept")
    add("ok", ["runs", "--json", "--tag", "base", *db], "accept", json_ok)
    add("ok", ["compare", "runs:{run0}", "runs:{run1}", *db], "accept")
    add("ok", [*RUN, "--json", *db], "accept", json_ok)
    add("ok", ["sweep", "--workload", TOY, "--submission", "adam", "--hparam",
               "learning_rate=0.01|0.02", *TINY, *db], "accept")
    add("ok", ["export", "--out", "{tmp}/e", *db], "accept")
    add("ok", ["report", "--out", "{tmp}/rep", *db], "accept")
    add("ok", ["refs", "list", *db], "accept")
    add("ok", ["db", "upgrade", *db], "accept")
    add("ok", ["score", "adam", "--sweep", "sw1", *db], "either")
    add("ok", ["runs", "--db", "{tmp}/fresh.db"], "either")


CONFIGS = {
    "range_maxsteps_float": 'workloads = ["{toy}"]\nsubmission = "adam"\n[options]\nmax_steps = 5.7\n',
    "range_seedstart_neg": 'workloads = ["{toy}"]\nsubmission = "adam"\nseed_start = -4\n[options]\nmax_steps = 2\n',
    "range_seeds_huge": 'workloads = ["{toy}"]\nsubmission = "adam"\nseeds = 1000000000\n',
    "range_seeds_64": 'workloads = ["{toy}"]\nsubmission = "adam"\nseeds = 9223372036854775807\n',
    "range_eval_neg": 'workloads = ["{toy}"]\nsubmission = "adam"\n[options]\neval_every = -3\n',
    "range_div_neg": 'workloads = ["{toy}"]\nsubmission = "adam"\n[options]\ndivergence_factor = -1.0\n',
    "range_div_nan": 'workloads = ["{toy}"]\nsubmission = "adam"\n[options]\ndivergence_factor = nan\n',
    "range_hparam_neg": 'workloads = ["{toy}"]\nsubmission = "adam"\n[hparams]\nlearning_rate = [-0.1]\n[options]\nmax_steps = 2\n',
    "range_hparam_inf": 'workloads = ["{toy}"]\nsubmission = "adam"\n[hparams]\nlearning_rate = [inf]\n[options]\nmax_steps = 2\n',
    "type_maxsteps_str": 'workloads = ["{toy}"]\nsubmission = "adam"\n[options]\nmax_steps = "two"\n',
    "type_maxsteps_bool": 'workloads = ["{toy}"]\nsubmission = "adam"\n[options]\nmax_steps = true\n',
    "type_seeds_str": 'workloads = ["{toy}"]\nsubmission = "adam"\nseeds = "3"\n',
    "type_seeds_list_str": 'workloads = ["{toy}"]\nsubmission = "adam"\nseeds = ["a"]\n',
    "type_workloads_int": 'workloads = 5\nsubmission = "adam"\n',
    "type_workloads_table": 'submission = "adam"\n[workloads]\na = 1\n',
    "type_submission_int": 'workloads = ["{toy}"]\nsubmission = 7\n',
    "type_submissions_str": 'workloads = ["{toy}"]\nsubmissions = "adam"\n',
    "type_name_int": 'workloads = ["{toy}"]\nsubmission = "adam"\nname = 12\n',
    "type_tag_list": 'workloads = ["{toy}"]\nsubmission = "adam"\ntag = ["a"]\n',
    "type_options_list": 'workloads = ["{toy}"]\nsubmission = "adam"\noptions = [1]\n',
    "type_hparams_str": 'workloads = ["{toy}"]\nsubmission = "adam"\nhparams = "lr"\n',
    "type_hparams_nested": 'workloads = ["{toy}"]\nsubmission = "adam"\n[hparams.learning_rate]\nx = 1\n',
    "type_chunk_int": 'workloads = ["{toy}"]\nsubmission = "adam"\n[options]\nchunk_mode = 3\n',
    "type_stop_str": 'workloads = ["{toy}"]\nsubmission = "adam"\n[options]\nstop_at_target = "yes"\n',
    "type_curv_int": 'workloads = ["{toy}"]\nsubmission = "adam"\n[options]\ncurvature = 5\n',
    "type_unknown_key": 'workloads = ["{toy}"]\nsubmission = "adam"\nmax_step = 2\n',
    "type_bad_toml": 'workloads = ["{toy}"\n',
    "type_binary": "\x00\x01\x02",
    "type_int_huge": 'workloads = ["{toy}"]\nsubmission = "adam"\n[options]\nmax_steps = 99999999999999999999\n',
    "named_sw1": 'workloads = ["{toy}"]\nsubmission = "adam"\nname = "sw1"\n[options]\nmax_steps = 2\n',
    "type_date": 'workloads = ["{toy}"]\nsubmission = "adam"\n[options]\nmax_steps = 1979-05-27\n',
}

SUBMISSIONS = {
    "print": ('print("hello from submission.py")\n', ""),
    "print_init": ("", "init"),
    "print_update": ("", "update"),
    "exit0": ("import sys\nsys.exit(0)\n", ""),
    "exit3": ("import sys\nsys.exit(3)\n", ""),
    "exit0_update": ("", "exit"),
    "wrong_shape": ("", "shape"),
    "wrong_tree": ("", "tree"),
    "wrong_dtype": ("", "dtype"),
    "raise_import": ("raise RuntimeError('broken at import')\n", ""),
    "syntax": ("def (:\n", ""),
    "keyboard": ("raise KeyboardInterrupt\n", ""),
    "sys_modules": ("import sys\nsys.modules['harness'] = None\n", ""),
    "returns_none": ("", "none"),
    "nan_params": ("", "nan"),
}

UPDATE_EDITS = {
    "init": ("def init_optimizer_state(workload, params, model_state, hparams, rng):\n",
             "def init_optimizer_state(workload, params, model_state, hparams, rng):\n"
             "    print('init called')\n"),
    "update": ("    return optax.apply_updates(params, updates), new_model_state",
               "    print('update called')\n    return optax.apply_updates(params, updates), new_model_state"),
    "exit": ("    return optax.apply_updates(params, updates), new_model_state",
             "    import sys; sys.exit(0)\n    return optax.apply_updates(params, updates), new_model_state"),
    "shape": ("    return optax.apply_updates(params, updates), new_model_state",
              "    params = jax.tree_util.tree_map(lambda p: p.sum(), params)\n"
              "    return params, new_model_state"),
    "tree": ("    return optax.apply_updates(params, updates), new_model_state",
             "    return {'x': 1.0}, new_model_state"),
    "dtype": ("    return optax.apply_updates(params, updates), new_model_state",
              "    params = jax.tree_util.tree_map(lambda p: p.astype('int32'), params)\n"
              "    return params, new_model_state"),
    "none": ("    return optax.apply_updates(params, updates), new_model_state, opt_state, {\"loss\": loss}",
             "    return None"),
    "nan": ("    return optax.apply_updates(params, updates), new_model_state",
            "    params = jax.tree_util.tree_map(lambda p: p * float('nan'), params)\n"
            "    return params, new_model_state"),
}


# ---------------------------------------------------------------- fixture
def make_fixture(root: Path, checkout: Path, python: str) -> dict[str, str]:
    """A seeded database (runs, a sweep `sw1`), damaged files, submissions, configs."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "CURVEBENCH_COMPILE_CACHE": "off"}
    db = root / "seeded.db"

    def cli(*args):
        subprocess.run([python, "-m", "harness.cli", *args, "--db", str(db)], env=env, check=True,
                       cwd=root, capture_output=True, timeout=600)

    cli("run", "--workload", TOY, "--submission", "adam", "--seeds", "2", "--tag", "base", *TINY)
    cli("run", "--workload", TOY, "--submission", "adam", "--max-steps", "6", "--eval-every", "1",
        "--seed-start", "5", "--quiet")
    cli("run", "--workload", TOY, "--submission", "sgd", *TINY)
    cli("sweep", "--workload", TOY, "--submission", "adam", "--name", "sw1", *TINY)
    con = sqlite3.connect(db)
    rows = con.execute("select id, max_steps, submission from runs order by started_at").fetchall()
    con.close()
    ids = {"run0": rows[0][0], "run1": rows[1][0], "runlong": rows[2][0], "runsgd": rows[3][0]}
    con = sqlite3.connect(db)
    ids["sw1id4"] = con.execute("select id from sweeps where name = 'sw1'").fetchone()[0][:4]
    con.close()
    ids["run0p"] = ids["run0"][:8]
    ids["run0_"] = "_" + ids["run0"][1:6]
    ids["run0pct"] = ids["run0"][:3] + "%"
    corrupt = root / "corrupt.db"
    data = bytearray(db.read_bytes())
    page = 4096
    for p in range(1, len(data) // page):
        data[p * page + 10: p * page + 400] = os.urandom(390)
    corrupt.write_bytes(bytes(data))
    subs = root / "subs"
    adam = checkout / "submissions" / "adam"
    for name, (prefix, edit) in SUBMISSIONS.items():
        d = subs / name
        shutil.copytree(adam, d)
        text = (adam / "submission.py").read_text()
        if edit:
            old, new = UPDATE_EDITS[edit]
            assert old in text, (name, old)
            text = text.replace(old, new)
        (d / "submission.py").write_text(text.replace('"""\n\nimport jax', '"""\n\n' + prefix + "import jax", 1)
                                         if prefix else text)
    alg = checkout / "tests" / "algoperf_submissions"
    first = sorted(p for p in alg.iterdir() if p.is_dir()) if alg.is_dir() else []
    ids["sub:algoperf"] = str(first[0]) if first else str(adam)
    for name in SUBMISSIONS:
        ids["sub:" + name] = str(subs / name)
    for name, text in CONFIGS.items():
        (root / f"{name}.toml").write_text(text.replace("{toy}", TOY))
    (root / "notadb.txt").write_text("this is not a database\n" * 100)
    (root / "empty.db").write_bytes(b"")
    (root / "bad.jsonl").write_text('{"kind": "header"\n')
    header = {"kind": "reference_set", "n_runs": 50}
    (root / "badcount.jsonl").write_text(json.dumps(header) + "\n")
    (root / "badcount2.jsonl").write_text('{"n_runs": -1}\n{"run": 1}\n')
    return ids


def prepare(root: Path, case_dir: Path) -> None:
    shutil.copy(root / "seeded.db", case_dir / "db.db")
    (case_dir / "adir").mkdir()
    (case_dir / "afile").write_text("the user's file\n")
    (case_dir / "alink-file").symlink_to(case_dir / "afile")
    mine = case_dir / "mine"
    mine.mkdir()
    (mine / "index.html").write_text("my page")
    (mine / "01-my-figure.svg").write_text("<svg/>")
    for f in root.glob("*.toml"):
        shutil.copy(f, case_dir / f.name)
    for f in ("notadb.txt", "empty.db", "bad.jsonl", "badcount.jsonl", "badcount2.jsonl"):
        shutil.copy(root / f, case_dir / f)


def expand(s: str, case_dir: Path, root: Path, ids: dict[str, str]) -> str:
    s = s.replace("{db}", str(case_dir / "db.db")).replace("{tmp}", str(case_dir))
    s = s.replace("{corrupt}", str(root / "corrupt.db"))
    for k, v in ids.items():
        s = s.replace("{" + k + "}", v)
    return s


def classify(case: Case, rc: int | None, out: str, err: str, case_dir: Path) -> str:
    if rc is None or rc < 0 or rc in (134, 139):
        return "hang or crash"
    if "Traceback (most recent call last)" in err or "Exception ignored" in err or rc == 3:
        return "traceback"
    effect_ok = True
    if case.check is not None:
        try:
            effect_ok = case.check(out, err, case_dir)
        except Exception:
            effect_ok = False
    error_line = any(line.startswith("error:") for line in err.splitlines())
    if case.expect == "interrupt":
        if rc == 130 and error_line and effect_ok:
            return "one-line error"
        return "wrongly accepted" if rc == 0 else ("one-line error" if error_line and effect_ok
                                                   else "traceback")
    if rc == 0:
        if case.expect in ("accept", "either") and effect_ok:
            return "correctly accepted"
        return "wrongly accepted"
    if error_line:
        if case.expect == "accept":
            return "wrongly refused"
        return "one-line error" if effect_ok else "wrongly accepted"
    return "traceback"


def run_case(i: int, case: Case, root: Path, ids: dict[str, str], python: str, checkout: Path,
             timeout: float) -> tuple[int, str, str, str]:
    case_dir = Path(tempfile.mkdtemp(prefix=f"case{i:03d}-", dir=root))
    prepare(root, case_dir)
    argv = [expand(a, case_dir, root, ids) for a in case.argv]
    env = {**os.environ, "PYTHONPATH": str(checkout), "CURVEBENCH_COMPILE_CACHE": "off",
           "COLUMNS": "120"}
    env.pop("CURVEBENCH_DB", None)
    env.pop("CURVEBENCH_DEBUG", None)
    for k, v in (case.env or {}).items():
        env[k] = expand(v, case_dir, root, ids)
    start = time.time()
    proc = subprocess.Popen([python, "-m", "harness.cli", *argv], cwd=case_dir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace", start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        if case.sigint_after is not None:
            try:
                out, err = proc.communicate(timeout=case.sigint_after)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGINT)
                out, err = proc.communicate(timeout=timeout)
        else:
            out, err = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        rc = None
    outcome = classify(case, rc, out, err, case_dir)
    if case.sigint_after is not None and case.expect == "interrupt" and rc == 0:
        outcome = "correctly accepted" if case.sigint_after > 3 and runs_not_running(out, err, case_dir) \
            else outcome  # finished before the signal came: fine only if late
    last = (err.strip().splitlines() or [""])[-1][:150]
    shutil.rmtree(case_dir, ignore_errors=True)
    return i, outcome, f"rc={rc} {time.time() - start:.1f}s", last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--only", default=None, help="only the classes starting with this text")
    parser.add_argument("--range", default=None, metavar="START:END",
                        help="only the inputs numbered START to END-1 (as --list numbers them)")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="write per-input outcomes here")
    args = parser.parse_args()
    build_cases()
    cases = [c for c in CASES if args.only is None or c.cls.startswith(args.only)]
    if args.range:
        start, _, end = args.range.partition(":")
        cases = cases[int(start or 0):int(end) if end else None]
    if args.list:
        for i, c in enumerate(cases):
            print(i, c.cls, c.expect, " ".join(repr(a) if " " in a or not a else a for a in c.argv)[:200])
        print(len(cases), "inputs")
        return 0
    checkout = args.checkout.resolve()
    root = Path(tempfile.mkdtemp(prefix="hostile-"))
    ids = make_fixture(root, checkout, sys.executable)
    results: dict[int, tuple[str, str, str]] = {}
    with cf.ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_case, i, c, root, ids, sys.executable, checkout, args.timeout)
                   for i, c in enumerate(cases)]
        for f in cf.as_completed(futures):
            i, outcome, info, last = f.result()
            results[i] = (outcome, info, last)
            if args.verbose or outcome not in ("one-line error", "correctly accepted"):
                print(f"[{i:3d}] {cases[i].cls:11s} {outcome:18s} {info:14s} "
                      f"{' '.join(cases[i].argv)[:90]!r} :: {last}", flush=True)
    shutil.rmtree(root, ignore_errors=True)
    totals = collections.Counter(o for o, _, _ in results.values())
    per_class: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for i, (o, _, _) in results.items():
        per_class[cases[i].cls][o] += 1
    print(f"\n{len(cases)} inputs")
    for o in OUTCOMES:
        print(f"  {o:20s} {totals[o]}")
    for cls in sorted(per_class):
        print(f"  {cls:12s} " + ", ".join(f"{o}: {n}" for o, n in per_class[cls].items()))
    if args.json:
        args.json.write_text(json.dumps({str(i): {"class": cases[i].cls, "argv": cases[i].argv,
                                                  "outcome": r[0], "info": r[1], "last": r[2]}
                                         for i, r in sorted(results.items())}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
