"""`curvebench sweep --config FILE`: what the command line and the config file each decide
(harness.grid.plan_sweep), the grid's axes, and the curvature option group declared once
(harness/cli/options.py) on the commands that train."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest
import typer
from typer.testing import CliRunner

from harness import grid
from harness.cli.options import CURVATURE_OPTIONS, CurvatureFlags, with_curvature_options

CONFIG = textwrap.dedent("""\
    name = "from-file"
    tag = "file-tag"
    submissions = ["adam", "sgd"]
    seeds = [3, 5]
    workloads = ["mnist_mlp:width=32|64"]
    [hparams]
    learning_rate = [1e-3, 3e-3]
    [options]
    max_steps = 50
    eval_every = 5
    curvature = "hessian"
    db = "file.db"
""")


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(CONFIG)
    return grid.load_config(path)


def test_the_file_decides_what_the_command_line_leaves_out(config):
    plan = grid.plan_sweep(config, options={"max_steps": None, "db": None, "trace": None})
    assert plan.workloads == ("mnist_mlp:width=32", "mnist_mlp:width=64")
    assert plan.submissions == ("adam", "sgd")
    assert plan.hparams == ({"learning_rate": 1e-3}, {"learning_rate": 3e-3})
    assert plan.seeds == (3, 5) and (plan.name, plan.tag) == ("from-file", "file-tag")
    assert dict(plan.options) == {"max_steps": 50, "eval_every": 5, "curvature": "hessian",
                                  "db": "file.db"}


def test_what_the_command_line_gives_wins(config):
    plan = grid.plan_sweep(config, workloads=["fashion_mnist_mlp"], submissions=["lion"],
                           hparams=["weight_decay=0|0.1"], seeds=2, seed_start=7, name="cli",
                           tag="cli-tag",
                           options={"max_steps": 10, "stop_at_target": False, "db": None})
    assert plan.workloads == ("fashion_mnist_mlp",) and plan.submissions == ("lion",)
    assert plan.hparams == ({"weight_decay": 0}, {"weight_decay": 0.1})
    assert plan.seeds == (7, 8) and (plan.name, plan.tag) == ("cli", "cli-tag")
    # False is given (--no-stop-at-target), only None is "not given"
    assert dict(plan.options) == {"max_steps": 10, "eval_every": 5, "curvature": "hessian",
                                  "db": "file.db", "stop_at_target": False}


def test_without_a_file_one_seed_from_seed_start_and_the_command_lines_grid():
    plan = grid.plan_sweep(grid.SweepConfig(), workloads=["mnist_mlp:width=1|2"],
                           submissions=["adam"], seed_start=4)
    assert plan.seeds == (4,) and plan.hparams == ({},) and plan.options == {}
    assert plan.workloads == ("mnist_mlp:width=1", "mnist_mlp:width=2")
    assert (plan.name, plan.tag) == (None, None)


def test_a_sweep_needs_a_workload_and_a_submission_from_one_or_the_other(config):
    with pytest.raises(grid.GridError, match="no workload: give --workload"):
        grid.plan_sweep(grid.SweepConfig(), submissions=["adam"])
    with pytest.raises(grid.GridError, match="no submission: give --submission"):
        grid.plan_sweep(grid.SweepConfig(), workloads=["mnist_mlp"])
    with pytest.raises(grid.GridError, match="empty value"):
        grid.plan_sweep(config, hparams=["learning_rate=1e-3|"])
    with pytest.raises(ValueError, match="not sweep options: tga"):
        grid.plan_sweep(config, options={"tga": "x"})


def test_grid_axes_are_the_hparams_that_vary_in_first_seen_order():
    cells = [{"lr": 1, "wd": 0, "b1": 0.9}, {"lr": 2, "wd": 0, "b1": 0.9},
             {"lr": 1, "wd": 0, "b1": 0.9, "nesterov": True}]
    assert grid.grid_axes(cells) == ["lr", "nesterov"]
    assert grid.grid_axes([{"lr": 1}]) == [] and grid.grid_axes([]) == []


def test_the_curvature_options_take_the_place_of_the_group_and_arrive_as_one_dict():
    app = typer.Typer(add_completion=False)
    received = {}

    @app.command()
    @with_curvature_options
    def train(first: str = "a", curvature_flags: CurvatureFlags = None, last: int = 0) -> None:
        """A command with the curvature group between two options."""
        received.update(first=first, flags=curvature_flags, last=last)

    res = CliRunner().invoke(app, ["--curvature", "hessian,ggn", "--lanczos-order", "auto:40",
                                   "--cov-centered", "--last", "3"])
    assert res.exit_code == 0, res.output
    assert received["first"] == "a" and received["last"] == 3
    assert received["flags"] == {**dict.fromkeys(CURVATURE_OPTIONS), "curvature": "hessian,ggn",
                                 "lanczos_order": "auto:40", "cov_centered": True}
    names = [p.name for p in typer.main.get_command(app).params]
    assert names == ["first", *CURVATURE_OPTIONS, "last"]


def test_every_curvature_option_sets_a_field_of_the_librarys_options():
    from harness.curvature.settings import CurvatureOptions

    fields = [f.name for f in dataclasses.fields(CurvatureOptions)]
    assert sorted(field for _, field in CURVATURE_OPTIONS.values()) == sorted(fields)
    assert set(grid.OPTION_KEYS) >= set(CURVATURE_OPTIONS)


def test_curvature_request_from_the_flags():
    from harness.cli.options import curvature_request

    flags = dict.fromkeys(CURVATURE_OPTIONS)
    assert curvature_request(flags) is None
    request = curvature_request({**flags, "curvature": "hessian", "curvature_every": "every:5",
                                 "lanczos_order": "7"})
    assert request.every == "every:5"
    assert list(request.config["kinds"]) == ["hessian"] and request.config["lanczos_order"] == 7
