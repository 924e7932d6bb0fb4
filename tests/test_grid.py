"""The sweep grammar and its TOML config form (pure text: no JAX, no training)."""

from __future__ import annotations

import pytest

from harness.grid import (GridError, load_config, parse_hparam_grid, parse_workload_grid,
                          parse_workload_list, single_values)
from tests.conftest import REPO


def test_workload_grid_is_the_product_over_knobs_first_knob_outermost():
    assert parse_workload_grid("mnist_mlp:activation=relu|gelu,width=100|200") == [
        "mnist_mlp:activation=relu,width=100", "mnist_mlp:activation=relu,width=200",
        "mnist_mlp:activation=gelu,width=100", "mnist_mlp:activation=gelu,width=200"]
    assert parse_workload_grid(" mnist_mlp ") == ["mnist_mlp"]
    assert parse_workload_grid("mnist_mlp:width=200") == ["mnist_mlp:width=200"]


def test_several_workload_grids_add_up_and_semicolons_separate_variants():
    cells = parse_workload_list(["mnist_mlp:batchnorm=0|1,depth=3|5",
                                 "mnist_mlp:width=200,activation=gelu;fashion_mnist_mlp",
                                 "fashion_mnist_mlp"])
    assert cells == ["mnist_mlp:batchnorm=0,depth=3", "mnist_mlp:batchnorm=0,depth=5",
                     "mnist_mlp:batchnorm=1,depth=3", "mnist_mlp:batchnorm=1,depth=5",
                     "mnist_mlp:width=200,activation=gelu", "fashion_mnist_mlp"]


def test_hparam_grid_is_the_product_with_json_values():
    assert parse_hparam_grid(["learning_rate=1e-3|3e-3", "batch_size=null|64"]) == [
        {"learning_rate": 1e-3, "batch_size": None}, {"learning_rate": 1e-3, "batch_size": 64},
        {"learning_rate": 3e-3, "batch_size": None}, {"learning_rate": 3e-3, "batch_size": 64}]
    assert parse_hparam_grid([]) == [{}]
    assert parse_hparam_grid(["schedule=cosine"]) == [{"schedule": "cosine"}]


@pytest.mark.parametrize("text,shown", [
    ("mnist_mlp:width", "expected NAME[:KNOB=V1|V2,...]"),
    ("mnist_mlp:width=100||200", "expected NAME[:KNOB=V1|V2,...]"),
    ("mnist_mlp:", "expected NAME[:KNOB=V1|V2,...]"),
    (":width=100", "expected NAME[:KNOB=V1|V2,...]"),
    ("mnist_mlp:width=1,width=2", "list its values as width=V1|V2"),
    ("mnist_mlp,fashion_mnist_mlp", "separate them with ';'"),
    ("mnist_mlp:width=200,fashion_mnist_mlp", "separate them with ';'"),
])
def test_bad_workload_grids_fail_in_one_line_showing_the_valid_form(text, shown):
    with pytest.raises(GridError) as e:
        parse_workload_list([text])
    assert shown in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("items,shown", [
    (["learning_rate"], "expected NAME=V1|V2|..."),
    (["=1e-3"], "expected NAME=V1|V2|..."),
    (["learning_rate=1e-3|"], "expected NAME=V1|V2|..."),
    (["learning_rate=1e-3", "learning_rate=3e-3"], "learning_rate=V1|V2"),
])
def test_bad_hparam_grids_fail_in_one_line_showing_the_valid_form(items, shown):
    with pytest.raises(GridError) as e:
        parse_hparam_grid(items)
    assert shown in str(e.value) and "\n" not in str(e.value)


def test_single_cell_commands_point_grids_to_sweep():
    single_values(["mnist_mlp:width=200", "learning_rate=1e-3"], "run")
    with pytest.raises(GridError, match="curvebench sweep"):
        single_values(["learning_rate=1e-3|3e-3"], "run")


def test_shipped_config_is_the_papers_fourteen_rows(tmp_path):
    config = load_config(REPO / "examples" / "mnist_ablations.toml")
    assert len(config.workloads) == 14 and config.seeds == (0, 1, 2, 3, 4)
    assert "mnist_mlp:activation=hard_tanh,width=200" in config.workloads
    assert "mnist_mlp:batchnorm=1,depth=7" in config.workloads
    assert config.options["eval_every"] == 1 and config.submissions == ("adam",)


def test_config_tables_seed_lists_and_hparam_grids(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('submissions = ["adam", "sgd"]\nseeds = [3, 7]\n'
                    'workloads = [{ name = "mnist_mlp", batchnorm = [false, true] }, "uv"]\n'
                    '[hparams]\nlearning_rate = [0.1, 0.01]\n[options]\nmax_steps = 50\n')
    config = load_config(path)
    assert config.workloads == ("mnist_mlp:batchnorm=0", "mnist_mlp:batchnorm=1", "uv")
    assert config.seeds == (3, 7) and config.options == {"max_steps": 50}
    assert config.hparams == ({"learning_rate": 0.1}, {"learning_rate": 0.01})


@pytest.mark.parametrize("text,shown", [
    ("workloads = [\"mnist_mlp\"\n", "not valid TOML"),
    ("grid = 1\n", "unknown key grid; valid keys: name, tag"),
    ("[options]\nlearning_rate = 1\n", "unknown option learning_rate; valid options: max_steps"),
    ("seeds = 0\n", "seeds must be a count >= 1"),
    ("workloads = [{ width = [1] }]\n", "a workload table needs name"),
    ("workloads = [\"mnist_mlp:width=1||2\"]\n", "expected NAME[:KNOB=V1|V2,...]"),
])
def test_bad_config_files_fail_in_one_line(tmp_path, text, shown):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(GridError) as e:
        load_config(path)
    assert shown in str(e.value) and "\n" not in str(e.value)
