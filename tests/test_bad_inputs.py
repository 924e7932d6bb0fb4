"""Every bad input the CLI can get gives one line on stderr, `error: ...` with the key words, the
right exit code, and loses no row (counts of every table before and after, integrity check).

Run as a script (`python3 tests/test_bad_inputs.py`) to print the tally: cases tried, one-line
errors, rows lost. The cases go through `harness.errors.run_cli`, the `curvebench` entry point.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from harness.cli import app  # noqa: E402
from harness.data.idx import write_idx  # noqa: E402
from harness.db import open_database  # noqa: E402
from harness.db.database import _make_engine  # noqa: E402
from harness.errors import run_cli  # noqa: E402

ADAM = str(REPO / "submissions" / "adam")
RUN = ["run", "--workload", "mnist_mlp", "--submission", ADAM, "--max-steps", "4", "--eval-every", "2",
       "--quiet"]


def _idx_dir(root: Path, damage: str | None = None) -> Path:
    """The four MNIST IDX files (small, valid shapes), one of them damaged as asked."""
    base = root / "idx-valid"
    if not base.exists():  # written once (uncompressed: fast), copied per damage
        base.mkdir()
        rng = np.random.default_rng(0)
        for name, n in (("train", 10_010), ("t10k", 10)):
            write_idx(base / f"{name}-images-idx3-ubyte",
                      rng.integers(0, 255, (n, 28, 28), dtype=np.uint8))
            write_idx(base / f"{name}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    d = root / f"idx-{damage}"
    shutil.copytree(base, d)
    if damage == "labels":
        labels = np.zeros(10_010, np.uint8)
        labels[0] = 255
        write_idx(d / "train-labels-idx1-ubyte.gz", labels)
    target = d / "t10k-labels-idx1-ubyte.gz"
    if damage == "truncated":
        target.write_bytes(target.read_bytes()[:-12])
    elif damage == "corrupt":
        target.write_bytes(b"\x1f\x8b" + bytes(range(200)))
    elif damage == "zero-dim":
        with gzip.open(target, "wb") as f:
            f.write(bytes([0, 0, 0x08, 0]) + b"\x07")
    elif damage == "rank":
        write_idx(target, np.zeros((10, 2), np.uint8))
    return d


def _cifar_truncated(root: Path) -> Path:
    d = root / "cifar"
    d.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        payload = os.urandom(200_000)
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    (d / "cifar-10-python.tar.gz").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return d


def _submission(root: Path, name: str, edit) -> str:
    d = root / name
    shutil.copytree(ADAM, d)
    edit(d)
    return str(d)


def _raising(d: Path) -> None:
    src = (d / "submission.py").read_text()
    src = src.replace("def update_params(", "def update_params(*args, **kwargs):\n    return 1 / 0\n\n\n"
                      "def _unused_update_params(", 1)
    (d / "submission.py").write_text(src)


def _future_db(root: Path, name: str) -> str:
    path = root / f"{name}.db"
    open_database(str(path)).engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    return str(path)


def cases(root: Path, db: str) -> dict[str, tuple[list[str], int, tuple[str, ...]]]:
    """name -> (argv, exit code, key words of the one error line)."""
    subs = {
        "raising": _submission(root, "raising", _raising),
        "bad-json": _submission(root, "badjson", lambda d: (d / "hparams.json").write_text("{oops")),
        "nan-json": _submission(root, "nanjson", lambda d: (d / "hparams.json").write_text(
            '{"learning_rate": NaN, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "batch_size": null}')),
        "import-error": _submission(root, "importerr", lambda d: (d / "submission.py").write_text(
            "import no_such_module_anywhere\n")),
        "no-functions": _submission(root, "nofuncs", lambda d: (d / "submission.py").write_text("x = 1\n")),
    }
    run_at = RUN + ["--db", db]
    a_file = root / "a_file.txt"
    a_file.write_text("not a directory")
    return {
        "db url unparseable": (["runs", "--db", "foo://bar"], 2, ("cannot use --db",)),
        "db server unreachable": (["runs", "--db", "postgresql+psycopg://x@127.0.0.1:1/none"], 2,
                                  ("cannot open results database",)),
        "db future revision": (["runs", "--db", _future_db(root, "future1")], 2, ("newer than this curvebench",)),
        "db upgrade future revision": (["db", "upgrade", "--db", _future_db(root, "future2")], 2,
                                       ("newer than this curvebench",)),
        "db is a directory": (["runs", "--db", str(root)], 2, ("is a directory",)),
        "db is a text file": (["runs", "--db", str(a_file)], 2, ("not a SQLite database",)),
        "db directory missing": (["runs", "--db", str(root / "nowhere" / "x.db")], 2, ("does not exist",)),
        "submission raises": (["run", "--workload", "mnist_mlp", "--submission", subs["raising"],
                               "--max-steps", "4", "--quiet", "--db", db], 2,
                              ("submission's code raised ZeroDivisionError", "submission.py")),
        "submission folder missing": (["run", "--workload", "mnist_mlp", "--submission",
                                       str(root / "nope"), "--db", db], 2,
                                      ("no submission", "built-in name (adam")),
        "hparams.json invalid": (["run", "--workload", "mnist_mlp", "--submission", subs["bad-json"],
                                  "--db", db], 2, ("invalid JSON",)),
        "hparams.json NaN": (["run", "--workload", "mnist_mlp", "--submission", subs["nan-json"],
                              "--db", db], 2, ("non-finite number NaN",)),
        "submission import error": (["run", "--workload", "mnist_mlp", "--submission",
                                     subs["import-error"], "--db", db], 2, ("failed to import",)),
        "submission lacks functions": (["run", "--workload", "mnist_mlp", "--submission",
                                        subs["no-functions"], "--db", db], 2, ("lacks the submission",)),
        "hparam not a number": (run_at + ["--hparam", "learning_rate=abc"], 2, ("is a number",)),
        "hparam NaN": (run_at + ["--hparam", "learning_rate=NaN"], 2, ("finite",)),
        "hparam Infinity": (run_at + ["--hparam", "learning_rate=Infinity"], 2, ("finite",)),
        "hparam unknown": (run_at + ["--hparam", "momentum=0.9"], 2, ("no hyperparameter momentum",)),
        "hparam without =": (run_at + ["--hparam", "learning_rate"], 2, ("expected NAME=V1",)),
        "batch size 0": (run_at + ["--hparam", "batch_size=0"], 2, ("batch size 0",)),
        "batch size true": (run_at + ["--hparam", "batch_size=true"], 2, ("batch size True",)),
        "batch size text": (run_at + ["--hparam", "batch_size=big"], 2, ("batch size 'big'",)),
        "batch size 10^9": (run_at + ["--hparam", "batch_size=1000000000"], 2, ("needs about", "GiB")),
        "width 10^9": (["run", "--workload", "mnist_mlp:width=1000000000", "--submission", ADAM,
                        "--db", db, "--quiet"], 2, ("needs about", "smaller batch size or model")),
        "max steps 10^20": (["run", "--workload", "mnist_mlp", "--submission", ADAM, "--db", db,
                             "--max-steps", str(10**20)], 2, ("int32 step counter",)),
        "max steps 1e20": (["run", "--workload", "mnist_mlp", "--submission", ADAM, "--db", db,
                            "--max-steps", "1e20"], 2, ("valid integer",)),
        "eval every step of 2e8": (["run", "--workload", "mnist_mlp", "--submission", ADAM, "--db", db,
                                    "--max-steps", "200000000", "--eval-every", "1"], 2,
                                   ("evaluations", "--eval-every")),
        "seeds 0": (run_at + ["--seeds", "0"], 2, ("--seeds",)),
        "unknown workload": (["run", "--workload", "cifar_alexnet", "--submission", ADAM, "--db", db],
                             2, ("unknown workload",)),
        "bad knob value": (["run", "--workload", "mnist_mlp:activation=tanh", "--submission", ADAM,
                            "--db", db], 2, ("valid values",)),
        "chunk mode": (run_at + ["--chunk-mode", "fast"], 2, ("unknown chunk mode",)),
        "curvature kind": (run_at + ["--curvature", "bogus"], 2, ("bogus",)),
        "curvature schedule": (run_at + ["--curvature", "hessian", "--curvature-every", "every:0"], 2,
                               ("every:0",)),
        "idx truncated gz": (run_at + ["--data-dir", str(_idx_dir(root, "truncated"))], 2,
                             ("t10k-labels-idx1-ubyte.gz", "truncated or corrupt")),
        "idx corrupt gz": (run_at + ["--data-dir", str(_idx_dir(root, "corrupt"))], 2,
                           ("t10k-labels-idx1-ubyte.gz", "truncated or corrupt")),
        "idx zero-dimensional": (run_at + ["--data-dir", str(_idx_dir(root, "zero-dim"))], 2,
                                 ("t10k-labels-idx1-ubyte.gz", "0 dimensions")),
        "idx labels of rank 2": (run_at + ["--data-dir", str(_idx_dir(root, "rank"))], 2,
                                 ("t10k-labels-idx1-ubyte.gz", "labels have shape")),
        "idx labels 0..255": (run_at + ["--data-dir", str(_idx_dir(root, "labels"))], 2,
                              ("train-labels-idx1-ubyte.gz", "expected 0..9")),
        "idx folder empty": (run_at + ["--data-dir", str(root / "nowhere")], 2, ("lacks",)),
        "cifar archive truncated": (["run", "--workload", "cifar_simplecnn", "--submission", ADAM,
                                     "--db", db, "--data-dir", str(_cifar_truncated(root))], 2,
                                    ("cifar-10-python.tar.gz", "truncated or corrupt")),
        "curvature of unknown run": (["curvature", "nosuchrun", "--db", db], 2, ("no run with id",)),
        "score unknown origin": (["score", ADAM, "--origins", "bogus", "--db", db], 2, ("--origins",)),
        "score unknown sweep": (["score", ADAM, "--sweep", "nope", "--db", db], 2,
                                ("sweep 'nope' is not in the database",)),
        "refs export into a file": (["refs", "export", "--out", str(a_file), "--db", db], 2,
                                    ("no reference sets",)),
        "refs import missing": (["refs", "import", str(root / "none.jsonl"), "--db", db], 2,
                                ("cannot read reference file",)),
        "check runs and seeds": (["check", "--workload", "mnist_mlp", "--submission", ADAM, "--seeds",
                                  "2", "--runs", "x", "--db", db], 2, ("not both",)),
        "unknown command": (["frobnicate"], 2, ("No such command",)),
    }


def _counts(url: str) -> dict[str, int]:
    engine = _make_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        counts = {t.name: conn.scalar(sa.select(sa.func.count()).select_from(t))
                  for t in meta.sorted_tables}
        if url.startswith("sqlite"):
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    engine.dispose()
    return counts


def _populated(url: str) -> str:
    """A results database with a real short trial (run, evals, losses) in it."""
    database = open_database(url)
    args = RUN + ["--db", url]
    code, _, err = invoke(args)
    assert code == 0, err
    database.engine.dispose()
    return url


def invoke(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run_cli(app, argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    url = _populated(f"sqlite:///{root / 'results.db'}")
    return root, url, cases(root, url)


def _case_names() -> list[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return list(cases(Path(d), "sqlite:///" + str(Path(d) / "x.db")))


CASE_NAMES = _case_names()


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_input_gives_one_line_and_loses_nothing(setting, name):
    _, url, table = setting
    _check_case(url, table, name)


#: the cases that reach the database (writes, or a failed run's row)
DB_CASES = ("submission raises", "hparam NaN", "batch size 10^9", "max steps 10^20",
            "idx labels 0..255", "curvature of unknown run", "refs export into a file")


@pytest.mark.postgres
@pytest.mark.parametrize("name", DB_CASES)
def test_bad_input_on_postgresql_loses_nothing(name, tmp_path):
    from pg_server import Unavailable, fresh_database, server_url

    try:
        url = _populated(fresh_database(server_url()))
    except Unavailable as e:
        pytest.skip(f"no PostgreSQL server: {e}")
    _check_case(url, cases(tmp_path, url), name)


def _check_case(url: str, table: dict, name: str) -> None:
    argv, expected_code, words = table[name]
    before = _counts(url)
    code, _, err = invoke(argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert code == expected_code, (code, lines[0])
    after = _counts(url)
    lost = {t: before[t] - after.get(t, 0) for t in before if after.get(t, 0) < before[t]}
    assert not lost, lost
    if name == "submission raises":  # the failed run is kept, with its traceback
        engine = _make_engine(url)
        with engine.connect() as conn:
            status, error = conn.execute(sa.text(
                "SELECT status, error FROM runs WHERE submission = 'raising'")).one()
        engine.dispose()
        assert status == "failed" and error.startswith("Traceback") and "ZeroDivisionError" in error
        assert after["runs"] == before["runs"] + 1
    else:
        assert after == before


def test_debug_prints_the_traceback_too(setting):
    root, url, table = setting
    code, _, err = invoke(["--debug"] + table["submission raises"][0])
    assert code == 2 and "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("error: the submission's code raised")


def _immutable(path: Path, on: bool) -> bool:
    """chattr +i/-i: a file even root cannot write (where the filesystem and capability allow)."""
    if not shutil.which("chattr"):
        return False
    return subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True).returncode == 0


def test_read_only_database_gives_one_line_and_is_untouched(setting, tmp_path):
    _, url, _ = setting
    path = tmp_path / "results.db"
    shutil.copy(url.removeprefix("sqlite:///"), path)
    os.chmod(path, 0o444)
    if os.access(path, os.W_OK) and not _immutable(path, True):
        pytest.skip("cannot make a file read-only for this user here (root without chattr)")
    try:
        before = path.read_bytes()
        code, _, err = invoke(RUN + ["--db", str(path)])
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "read-only" in lines[0], err
        assert path.read_bytes() == before
    finally:
        _immutable(path, False)


def main() -> None:
    """Print the tally: every case, its exit code, whether one line, rows lost."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        url = _populated(f"sqlite:///{root / 'results.db'}")
        table = cases(root, url)
        one_line = lost_total = 0
        for name, (argv, expected, words) in table.items():
            before = _counts(url)
            code, _, err = invoke(argv)
            lines = [line for line in err.splitlines() if line.strip()]
            ok = len(lines) == 1 and lines[0].startswith("error: ") and all(w in lines[0] for w in words)
            after = _counts(url)
            lost = sum(max(0, before[t] - after.get(t, 0)) for t in before)
            one_line += ok and code == expected
            lost_total += lost
            print(f"{'ok ' if ok and code == expected else 'BAD'} exit {code} lost {lost}  {name}: "
                  f"{lines[-1][:110] if lines else '(nothing on stderr)'}")
        print(json.dumps({"cases": len(table), "one_line_with_right_exit_code": one_line,
                          "rows_lost": lost_total}))


if __name__ == "__main__":
    main()


def test_per_example_loss_of_the_wrong_shape_is_refused_while_tracing(tmp_path):
    """A (batch, 1) per-example loss would broadcast silently; the contract refuses it."""
    from harness.runner import run_trial
    from harness.spec import SpecError
    from harness.submissions import load_submission
    from workloads.mnist_mlp import MnistMlp

    class ColumnLoss(MnistMlp):
        def loss_per_example(self, outputs, batch):
            return super().loss_per_example(outputs, batch)[:, None]

    workload = ColumnLoss(width=8)
    data = workload.synthetic_dataset({"train": 64, "validation": 32}, seed=0)
    db = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    with pytest.raises(SpecError, match=r"loss_per_example returned shape \(\d+, 1\), expected"):
        run_trial(workload, load_submission(ADAM), data, 0, db=db, max_steps=2, eval_every=1)
    assert db.runs() == []  # the program is traced before any row is written: nothing to undo
