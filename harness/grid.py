"""Grids of trials as text: the `curvebench sweep` grammar and its TOML config-file form.

A workload grid is ``NAME[:KNOB=V1|V2|...,KNOB=...]``: ``|`` separates one knob's values, ``,``
separates knobs, and the grid is the product over knobs (first knob outermost), e.g.
``mnist_mlp:activation=relu|gelu,width=100|200`` is four variants. A hyperparameter grid is
one ``NAME=V1|V2|...`` per option, the product over names; values are JSON (numbers,
true/false) or else text, as `--hparam` reads them. Several grids add up (duplicates dropped).

This module only reads text: it imports no JAX and no workload, so a malformed grid is
reported at once. Whether a workload, knob or hyperparameter exists is checked later, against
the registry and the submission (harness.experiment.validate_requests).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import GridError

WORKLOAD_FORM = "NAME[:KNOB=V1|V2,...], e.g. mnist_mlp:activation=relu|gelu,width=100|200"
HPARAM_FORM = "NAME=V1|V2|..., e.g. learning_rate=1e-3|3e-3"
SEVERAL_FORM = ("several workloads: separate them with ';' or repeat the option (',' only "
                "separates one variant's knobs), e.g. 'mnist_mlp:width=200,activation=gelu;"
                "fashion_mnist_mlp'")
#: run options a config file's [options] table may set (the `sweep` command's option names)
OPTION_KEYS = ("max_steps", "eval_every", "chunk_mode", "stop_at_target", "divergence_factor",
               "data_dir", "data_source", "db", "curvature", "curvature_every",
               "curvature_batch", "curvature_split", "lanczos_order", "lanczos_probes",
               "ritz_tol", "trace", "trace_probes", "cov_batches", "cov_batch_size",
               "cov_centered", "curvature_vectors", "compile_cache", "max_group_size")
CONFIG_KEYS = ("name", "tag", "submission", "submissions", "seeds", "seed_start", "workloads",
               "hparams", "options")
#: the largest seed: seeds are stored in 32-bit integer columns (PostgreSQL's `integer`)
MAX_SEED = 2**31 - 1
#: the most trials one command may start (seeds x grid cells); more is split into sweeps
MAX_TRIALS = 10_000
#: the type and least value of each [options] entry, as the sweep command declares them
#: (int: an integer, not 5.7 or true; float: any finite number; str|int: text or an integer)
OPTION_TYPES: dict[str, tuple[str, float | None]] = {
    "max_steps": ("int", 1), "eval_every": ("int", 1), "chunk_mode": ("str", None),
    "stop_at_target": ("bool", None), "divergence_factor": ("float", 0),
    "data_dir": ("str", None), "data_source": ("str", None), "db": ("str", None),
    "curvature": ("str", None), "curvature_every": ("str", None),
    "curvature_batch": ("str|int", 1), "curvature_split": ("str", None),
    "lanczos_order": ("str|int", 1), "lanczos_probes": ("int", 1), "ritz_tol": ("float", 0),
    "trace": ("str", None), "trace_probes": ("int", 0), "cov_batches": ("int", 2),
    "cov_batch_size": ("str|int", 1), "cov_centered": ("bool", None),
    "curvature_vectors": ("int", 0), "compile_cache": ("str", None), "max_group_size": ("int", 1)}


def _values(text: str, what: str, form: str) -> list[str]:
    values = [v.strip() for v in text.split("|")]
    if not all(values):
        raise GridError(f"empty value in {what}; expected {form}")
    return values


def parse_workload_grid(text: str) -> list[str]:
    """``name:k=a|b,j=c`` -> ``["name:k=a,j=c", "name:k=b,j=c"]`` (one variant spec per cell)."""
    name, colon, rest = text.strip().partition(":")
    name = name.strip()
    if "," in name:
        raise GridError(f"bad workload grid {text!r}; {SEVERAL_FORM}")
    if not name or "|" in name or "=" in name:
        raise GridError(f"bad workload grid {text!r}; expected {WORKLOAD_FORM}")
    if colon and not rest.strip():
        raise GridError(f"no knobs after ':' in {text!r}; expected {WORKLOAD_FORM}")
    knobs: dict[str, list[str]] = {}
    for item in (p.strip() for p in rest.split(",")) if colon else ():
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise GridError(f"bad knob {item!r} in {text!r}; expected {WORKLOAD_FORM} "
                            f"({SEVERAL_FORM})")
        if key in knobs:
            raise GridError(f"knob {key!r} given twice in {text!r}; list its values as "
                            f"{key}=V1|V2")
        knobs[key] = _values(raw, f"knob {key!r} of {text!r}", WORKLOAD_FORM)
    return [_variant(name, cell) for cell in product_of(knobs)]


def parse_workload_list(items: Iterable[str]) -> list[str]:
    """Several workload grids, each option possibly holding ';'-separated ones: their cells.
    An option that names none (';', ' ') is refused, never read as "every workload"."""
    items = list(items)
    for item in items:
        if not any(piece.strip() for piece in item.split(";")):
            raise GridError(f"workload {item!r} names no workload; {SEVERAL_FORM}")
    return _unique(spec for item in items for piece in item.split(";") if piece.strip()
                   for spec in parse_workload_grid(piece))


def parse_value(raw: str) -> Any:
    """A hyperparameter value as `--hparam` reads it: JSON if it parses, else the text."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def parse_hparam_grid(items: Iterable[str]) -> list[dict[str, Any]]:
    """``["lr=1e-3|3e-3", "wd=0|1e-4"]`` -> the four dicts of the product ([{}] for none)."""
    axes: dict[str, list[Any]] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise GridError(f"bad --hparam {item!r}; expected {HPARAM_FORM}")
        if key in axes:
            raise GridError(f"hyperparameter {key!r} given twice; list its values as {key}=V1|V2")
        axes[key] = [parse_value(v) for v in _values(raw, f"--hparam {item!r}", HPARAM_FORM)]
    return product_of(axes)


def product_of(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, first axis outermost ([{}] for no axes)."""
    return [dict(zip(axes, cell)) for cell in itertools.product(*axes.values())]


def single_values(items: Iterable[str], command: str) -> None:
    """Refuse grids (``|``) in a command that runs one cell, pointing to `curvebench sweep`."""
    for item in items:
        if "|" in item:
            raise GridError(f"{command} takes one value per option, not the grid {item!r}; "
                            f"run a grid with `curvebench sweep` (same option, e.g. "
                            f"--hparam 'learning_rate=1e-3|3e-3')")


def _unique(items: Iterable[Any]) -> list[Any]:
    seen, out = set(), []
    for x in items:
        key = json.dumps(x, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(x)
    return out


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A sweep as a config file states it; unset fields fall back to the command line."""

    workloads: tuple[str, ...] = ()
    submissions: tuple[str, ...] = ()
    hparams: tuple[dict[str, Any], ...] = ({},)
    seeds: tuple[int, ...] | None = None
    name: str | None = None
    tag: str | None = None
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def _workload_entry(entry: Any, where: str) -> list[str]:
    if isinstance(entry, str):
        return parse_workload_grid(entry)
    if isinstance(entry, dict):
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise GridError(f"{where}: a workload table needs name = \"...\", e.g. "
                            "{ name = \"mnist_mlp\", width = [100, 200] }")
        axes = {k: [_knob_text(x) for x in (v if isinstance(v, list) else [v])]
                for k, v in entry.items() if k != "name"}
        return [_variant(name, cell) for cell in product_of(axes)]
    raise GridError(f"{where}: each workloads entry is a grid string ({WORKLOAD_FORM}) or a "
                    "table like { name = \"mnist_mlp\", width = [100, 200] }")


def _variant(name: str, knobs: Mapping[str, str]) -> str:
    return name + (":" + ",".join(f"{k}={v}" for k, v in knobs.items()) if knobs else "")


def _knob_text(value: Any) -> str:
    return str(int(value)) if isinstance(value, bool) else str(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def seed_range(start: Any, count: Any, where: str = "--seeds") -> tuple[int, ...]:
    """Seeds start..start+count-1, refused before anything is built if the count is not a
    whole number from 1 to MAX_TRIALS or a seed falls outside 0..MAX_SEED."""
    if not _is_int(start) or not 0 <= start <= MAX_SEED:
        raise GridError(f"{where}: the first seed {start!r} must be an integer from 0 to {MAX_SEED}")
    if not _is_int(count) or not 1 <= count <= MAX_TRIALS:
        raise GridError(f"{where}: {count!r} seeds; give a whole number from 1 to {MAX_TRIALS} "
                        "(more trials than one command should start: split the work)")
    if start + count - 1 > MAX_SEED:
        raise GridError(f"{where}: seeds {start}..{start + count - 1} pass {MAX_SEED}, the "
                        "largest seed stored; start lower")
    return tuple(range(start, start + count))


def check_option(key: str, value: Any, where: str) -> None:
    """A sweep option's value of the type and range OPTION_TYPES declares (GridError)."""
    kind, least = OPTION_TYPES[key]
    ok = {"int": _is_int(value), "bool": isinstance(value, bool), "str": isinstance(value, str),
          "str|int": isinstance(value, str) or _is_int(value),
          "float": (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value))}[kind]
    if ok and least is not None and not isinstance(value, str) and value < least:
        ok = False
    if not ok or (_is_int(value) and abs(value) >= 2**63):
        what = {"int": "an integer", "bool": "true or false", "str": "text",
                "str|int": "text or an integer", "float": "a finite number"}[kind]
        bound = f" >= {least}" if least is not None else ""
        raise GridError(f"{where}: {key} = {value!r}; expected {what}{bound}")


def _seeds(value: Any, start: int, where: str) -> tuple[int, ...]:
    if _is_int(value) and value >= 1:
        return seed_range(start, value, f"{where}: seeds")
    if (isinstance(value, list) and value and len(value) <= MAX_TRIALS
            and all(_is_int(s) and 0 <= s <= MAX_SEED for s in value)):
        return tuple(value)
    raise GridError(f"{where}: seeds must be a count >= 1 (seeds = 5) or a list of seeds "
                    "(seeds = [0, 1, 2])")


def load_config(path: str | Path) -> SweepConfig:
    """Read a sweep config file (TOML); see examples/mnist_ablations.toml."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise GridError(f"no sweep config file {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise GridError(f"{path}: not valid TOML ({e})") from None
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise GridError(f"{path}: unknown key {', '.join(unknown)}; valid keys: "
                        f"{', '.join(CONFIG_KEYS)}")
    workloads = data.get("workloads", [])
    if isinstance(workloads, (str, dict)):
        workloads = [workloads]
    if not isinstance(workloads, list):
        raise GridError(f"{path}: workloads = {workloads!r}; expected a list of workload grids, "
                        f"e.g. workloads = [\"mnist_mlp:width=100|200\"]")
    subs = data.get("submissions", [])
    if not isinstance(subs, list):
        raise GridError(f"{path}: submissions must be a list of folder paths or names, e.g. "
                        "submissions = [\"adam\", \"sgd\"]")
    specs = _unique(s for i, w in enumerate(workloads)
                    for s in _workload_entry(w, f"{path}: workloads[{i}]"))
    if "submission" in data:
        subs = [data["submission"], *subs]
    if not all(isinstance(s, str) for s in subs):
        raise GridError(f"{path}: submission(s) must be folder paths as strings")
    hparams = data.get("hparams", {})
    if not isinstance(hparams, dict):
        raise GridError(f"{path}: [hparams] must be a table: learning_rate = [1e-3, 3e-3]")
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise GridError(f"{path}: [options] must be a table, e.g. eval_every = 1")
    bad = sorted(set(options) - set(OPTION_KEYS))
    if bad:
        raise GridError(f"{path}: unknown option {', '.join(bad)}; valid options: "
                        f"{', '.join(OPTION_KEYS)}")
    for key, value in options.items():
        check_option(key, value, f"{path}: [options]")
    for key in ("name", "tag"):
        if key in data and not isinstance(data[key], str):
            raise GridError(f"{path}: {key} = {data[key]!r}; expected text, e.g. {key} = \"lr-grid\"")
    start = data.get("seed_start", 0)
    seed_range(start, 1, f"{path}: seed_start")
    seeds = _seeds(data["seeds"], start, str(path)) if "seeds" in data else None
    return SweepConfig(
        workloads=tuple(specs), submissions=tuple(_unique(subs)),
        hparams=tuple(product_of({k: v if isinstance(v, list) else [v]
                                  for k, v in hparams.items()})),
        seeds=seeds, name=data.get("name"), tag=data.get("tag"), options=options)


def cells(workloads: Sequence[str], submissions: Sequence[str],
          hparams: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """The grid's cells (workload variant, submission, hparams), workload outermost."""
    return [(w, s, dict(h)) for w in workloads for s in submissions for h in hparams]


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """A sweep's grid and options once the command line is laid over its config file."""

    workloads: tuple[str, ...]
    submissions: tuple[str, ...]
    hparams: tuple[dict[str, Any], ...]
    seeds: tuple[int, ...]
    name: str | None
    tag: str | None
    #: OPTION_KEYS name -> value, from the command line where given, else from the file; a
    #: name neither gives is absent (the library's default applies)
    options: Mapping[str, Any]


def plan_sweep(config: SweepConfig, *, workloads: Sequence[str] = (),
               submissions: Sequence[str] = (), hparams: Sequence[str] = (),
               seeds: int | None = None, seed_start: int = 0, name: str | None = None,
               tag: str | None = None, options: Mapping[str, Any] | None = None) -> SweepPlan:
    """`curvebench sweep`'s precedence: a workload grid, submission list or hparam grid given
    on the command line replaces the file's; each option given (not None) wins over the file's
    [options]; `seeds` counts from `seed_start`, else the file's seeds, else seed `seed_start`
    alone; name and tag fall back to the file's. GridError for a malformed grid, or when
    neither gives a workload or a submission."""
    unknown = sorted(set(options or {}) - set(OPTION_KEYS))
    if unknown:
        raise ValueError(f"not sweep options: {', '.join(unknown)}")
    specs = parse_workload_list(workloads) or list(config.workloads)
    grid = parse_hparam_grid(hparams) if hparams else list(config.hparams)
    subs = list(submissions) or list(config.submissions)
    if not specs:
        raise GridError(f"no workload: give --workload {WORKLOAD_FORM!r} or a --config file")
    if not subs:
        raise GridError("no submission: give --submission FOLDER (repeat for several) or a "
                        "--config file")
    return SweepPlan(
        workloads=tuple(specs), submissions=tuple(subs), hparams=tuple(grid),
        seeds=(seed_range(seed_start, seeds) if seeds is not None
               else config.seeds or (seed_start,)),
        name=name or config.name, tag=tag or config.tag,
        options={**config.options, **{k: v for k, v in (options or {}).items() if v is not None}})


def grid_axes(hparams: Sequence[Mapping[str, Any]]) -> list[str]:
    """The hyperparameter names whose value differs between the cells' hparams (a name some
    cells lack counts as None there), in first-seen order: the grid's axes."""
    names = dict.fromkeys(k for h in hparams for k in h)
    return [k for k in names if len({json.dumps(h.get(k), default=str) for h in hparams}) > 1]
