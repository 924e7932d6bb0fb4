"""ogbg-molpcba sources: the OGB folder format, SMILES CSVs, TFDS examples, synthetic graphs."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas", reason="OGB's CSV folders are read with pandas: the ogb extra")

from harness.data.graphs import GraphSet
from harness.data.ogbg import (NUM_TASKS, SPLIT_FILES, graphs_from_tfds_examples,
                               load_ogbg_molpcba, read_ogb_folder, synthetic_graphs,
                               write_ogb_folder)
from harness.spec import DataUnavailable
from ogbg_molecules import molecule_graphs, nci_smiles, synthetic_labels

SPLITS = {"train": np.arange(0, 30), "validation": np.arange(30, 40), "test": np.arange(40, 48)}


@pytest.fixture(scope="module")
def molecules() -> GraphSet:
    return molecule_graphs(48, seed=0)


def _same_graphs(a: GraphSet, b: GraphSet) -> None:
    np.testing.assert_array_equal(a.labels, b.labels)  # NaN positions compare equal
    for field in ("n_node", "n_edge", "node_feat", "edge_feat", "senders", "receivers"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_ogb_folder_round_trip_keeps_graphs_labels_and_splits(molecules, tmp_path):
    root = write_ogb_folder(tmp_path / "ogbg_molpcba", molecules, SPLITS)
    dataset = load_ogbg_molpcba(str(tmp_path))  # the parent folder is accepted too
    assert dataset.source == f"ogb:{root}"
    for name, idx in SPLITS.items():
        _same_graphs(dataset.splits[name], molecules.take(idx))
    assert np.isnan(dataset.splits["train"].labels).any()
    assert dataset.size("validation") == 10
    stats = {s.stats for s in dataset.splits.values()}
    assert len(stats) == 1 and stats.pop().max_nodes == int(molecules.n_node.max())


def test_ogb_folder_reads_as_ogbs_own_reader(molecules, tmp_path):
    raw_reader = pytest.importorskip("ogb.io.read_graph_raw", reason="parity needs ogb")
    root = write_ogb_folder(tmp_path, molecules, SPLITS)
    theirs = raw_reader.read_csv_graph_raw(str(root / "raw"), add_inverse_edge=True)
    ours = read_ogb_folder(root).splits
    order = np.concatenate(list(SPLITS.values()))
    flat = [g for name in SPLIT_FILES for g in _graph_dicts(ours[name])]
    for i, ours_g in zip(order, flat):
        np.testing.assert_array_equal(ours_g["edge_index"], theirs[i]["edge_index"])
        np.testing.assert_array_equal(ours_g["edge_feat"], theirs[i]["edge_feat"])
        np.testing.assert_array_equal(ours_g["node_feat"], theirs[i]["node_feat"])


def _graph_dicts(graphs: GraphSet):
    nodes, edges = graphs.node_offsets, graphs.edge_offsets
    for g in range(len(graphs)):
        e = slice(edges[g], edges[g + 1])
        yield {"edge_index": np.stack([graphs.senders[e], graphs.receivers[e]]),
               "edge_feat": graphs.edge_feat[e], "node_feat": graphs.node_feat[nodes[g]: nodes[g + 1]]}


def test_smiles_graphs_match_ogb_smiles2graph(molecules):
    from ogb.utils import smiles2graph
    smiles = nci_smiles(48)
    for g, graph in zip((0, 17, 47), _pick(_graph_dicts(molecules), (0, 17, 47))):
        ref = smiles2graph(smiles[g])
        np.testing.assert_array_equal(graph["edge_index"], ref["edge_index"])
        np.testing.assert_array_equal(graph["node_feat"], ref["node_feat"])


def _pick(items, wanted):
    return [item for i, item in enumerate(items) if i in wanted]


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DataUnavailable, match="pcba.zip"):
        load_ogbg_molpcba()
    with pytest.raises(DataUnavailable, match="no OGB dataset folder"):
        load_ogbg_molpcba(str(tmp_path))
    with pytest.raises(DataUnavailable, match="unknown ogbg_molpcba source 'zip'"):
        load_ogbg_molpcba(str(tmp_path), source="zip")


def test_missing_raw_file_is_named(molecules, tmp_path):
    root = write_ogb_folder(tmp_path, molecules, SPLITS)
    (root / "raw" / "edge-feat.csv.gz").unlink()
    with pytest.raises(DataUnavailable, match="edge-feat.csv.gz is missing"):
        read_ogb_folder(root)


def test_bad_label_table_and_split_index_are_rejected(molecules, tmp_path):
    root = write_ogb_folder(tmp_path, molecules, SPLITS)
    pd.DataFrame(np.zeros((48, 12))).to_csv(root / "raw" / "graph-label.csv.gz", header=False,
                                            index=False, compression="gzip")
    with pytest.raises(ValueError, match=r"shape \(48, 12\)"):
        read_ogb_folder(root)
    root = write_ogb_folder(tmp_path / "b", molecules, {**SPLITS, "test": [47, 48]})
    with pytest.raises(ValueError, match="test.csv.gz: graph index out of range"):
        read_ogb_folder(root)


def test_smiles_csv_source(tmp_path):
    smiles = nci_smiles(12)
    labels = synthetic_labels(12, seed=1)
    table = pd.DataFrame(labels, columns=[f"task{i}" for i in range(NUM_TASKS)])
    table.insert(0, "smiles", smiles)
    table.insert(1, "split", ["train"] * 8 + ["valid"] * 2 + ["test"] * 2)
    path = tmp_path / "molecules.csv"
    table.to_csv(path, index=False)
    dataset = load_ogbg_molpcba(str(path), source="smiles")
    assert [dataset.size(s) for s in ("train", "validation", "test")] == [8, 2, 2]
    np.testing.assert_array_equal(dataset.splits["test"].labels, labels[10:])
    table.loc[3, "smiles"] = "C1CC(("
    table.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"molecule 3: cannot parse SMILES 'C1CC\(\('"):
        load_ogbg_molpcba(str(path), source="smiles")


def test_tfds_examples_convert_to_the_same_graphs(molecules):
    examples = [{"num_nodes": np.array([g["node_feat"].shape[0]]),
                 "node_feat": g["node_feat"].astype(np.float32),
                 "edge_feat": g["edge_feat"].astype(np.float32),
                 "edge_index": g["edge_index"].T.astype(np.int64),
                 "labels": label}
                for g, label in zip(_graph_dicts(molecules), molecules.labels)]
    _same_graphs(graphs_from_tfds_examples(examples), molecules)


def test_graph_set_rejects_edges_leaving_their_graph():
    graphs = synthetic_graphs(3, np.random.default_rng(0))
    receivers = graphs.receivers.copy()
    receivers[0] = graphs.n_node[0]  # the first node of the next graph, in local numbering
    with pytest.raises(ValueError, match="edges point outside their graph"):
        GraphSet(graphs.labels, graphs.n_node, graphs.n_edge, graphs.node_feat,
                 graphs.edge_feat, graphs.senders, receivers)
    with pytest.raises(ValueError, match="node rows"):
        GraphSet(graphs.labels, graphs.n_node, graphs.n_edge, graphs.node_feat[1:],
                 graphs.edge_feat, graphs.senders, graphs.receivers)
