"""ogbg-molpcba sources; every source yields `GraphSet` splits train / validation / test.

- "ogb": the dataset folder as OGB distributes it (pcba.zip unpacked: raw/*.csv.gz and
  split/scaffold/*.csv.gz), read with pandas. Bonds are stored once in raw/edge.csv.gz
  and, as OGB's reader does (master.csv: add_inverse_edge=True), each becomes the two
  directed edges (i, j), (j, i), in that interleaved order.
- "tfds": TensorFlow Datasets' `ogbg_molpcba` (already directed both ways).
- "smiles": the user's own molecules, a CSV with a `smiles` column, a `split` column and
  one column per task, turned into graphs by OGB's `smiles2graph` (needs rdkit and ogb).

Node features are OGB's 9 integer atom features, edge features its 3 bond features.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from harness.data.graphs import GraphSet, with_shared_stats
from harness.errors import DataError
from harness.spec import Dataset, DataUnavailable

NAME = "ogbg_molpcba"
NUM_TASKS = 128
#: value counts of OGB's atom and bond features (ogb.utils.features.get_*_feature_dims()).
ATOM_FEATURE_DIMS = (119, 5, 12, 12, 10, 6, 6, 2, 2)
BOND_FEATURE_DIMS = (5, 6, 2)
OGB_URL = "http://snap.stanford.edu/ogb/data/graphproppred/csv_mol_download/pcba.zip"
RAW_FILES = ("edge.csv.gz", "node-feat.csv.gz", "edge-feat.csv.gz", "num-node-list.csv.gz",
             "num-edge-list.csv.gz", "graph-label.csv.gz")
#: our split name -> OGB's split file stem.
SPLIT_FILES = {"train": "train", "validation": "valid", "test": "test"}
SOURCES = ("ogb", "tfds", "tfds-download", "smiles")
#: how to get what the OGB sources import (ogb imports torch: its CPU build is enough)
_EXTRA = ("pip install torch --index-url https://download.pytorch.org/whl/cpu && "
          "pip install 'curvebench[ogb]'")


def _pandas():
    """pandas, which reads OGB's CSV files (millions of rows, far faster than numpy's reader);
    it comes with the `ogb` extra, so the core install does without it."""
    try:
        import pandas
    except ImportError:
        raise DataUnavailable(f"{NAME}'s CSV files are read with pandas: {_EXTRA}") from None
    return pandas


# -- the OGB dataset folder ------------------------------------------------------------


def find_ogb_folder(data_dir: str | os.PathLike) -> Path:
    """The folder holding raw/ and split/: `data_dir` itself or its ogbg_molpcba/ child."""
    base = Path(data_dir)
    for candidate in (base, base / NAME, base / "pcba"):
        if (candidate / "raw").is_dir() and (candidate / "split").is_dir():
            return candidate
    raise DataUnavailable(
        f"{NAME}: no OGB dataset folder (raw/ and split/scaffold/) at {base}. Download {OGB_URL}, "
        f"unzip it and pass the unpacked folder with --data-dir, or let OGB fetch it: "
        f"python -c \"from ogb.graphproppred import GraphPropPredDataset as D; "
        f"D('ogbg-molpcba', root='DIR')\" then --data-dir DIR/{NAME}")


def _read_csv(path: Path, dtype) -> np.ndarray:
    if not path.exists():
        raise DataUnavailable(f"{NAME}: {path} is missing; the OGB folder needs raw/"
                              f"{{{','.join(RAW_FILES)}}} and split/scaffold/{{train,valid,test}}.csv.gz")
    pd = _pandas()
    try:
        table = pd.read_csv(path, header=None, dtype=dtype)
    except pd.errors.EmptyDataError:  # e.g. an empty split
        return np.empty((0, 1), dtype)
    except (ValueError, pd.errors.ParserError, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a numeric CSV of the OGB format ({type(e).__name__}: {e})") from None
    return table.to_numpy()


def read_ogb_folder(data_dir: str | os.PathLike, split_type: str = "scaffold") -> Dataset:
    """Read the OGB-distributed ogbg-molpcba folder into train/validation/test GraphSets."""
    root = find_ogb_folder(data_dir)
    raw = root / "raw"
    bonds = _read_csv(raw / "edge.csv.gz", np.int64)
    node_feat = _read_csv(raw / "node-feat.csv.gz", np.int64)
    bond_feat = _read_csv(raw / "edge-feat.csv.gz", np.int64)
    n_node = _read_csv(raw / "num-node-list.csv.gz", np.int64)[:, 0]
    n_bond = _read_csv(raw / "num-edge-list.csv.gz", np.int64)[:, 0]
    labels = _read_csv(raw / "graph-label.csv.gz", np.float32)
    if labels.shape != (len(n_node), NUM_TASKS):
        raise DataError(f"{raw / 'graph-label.csv.gz'}: shape {labels.shape}, expected "
                         f"({len(n_node)} graphs, {NUM_TASKS} tasks)")
    if bonds.shape[1:] != (2,) or len(bond_feat) != len(bonds):
        raise DataError(f"{raw}: edge.csv.gz has shape {bonds.shape} and edge-feat.csv.gz "
                         f"{len(bond_feat)} rows; expected (E, 2) and E rows")
    senders = np.stack([bonds[:, 0], bonds[:, 1]], 1).reshape(-1)
    receivers = np.stack([bonds[:, 1], bonds[:, 0]], 1).reshape(-1)
    graphs = GraphSet(labels=labels, n_node=n_node.astype(np.int32),
                      n_edge=(2 * n_bond).astype(np.int32),
                      node_feat=node_feat.astype(np.int16),
                      edge_feat=np.repeat(bond_feat, 2, axis=0).astype(np.int16),
                      senders=senders.astype(np.int32), receivers=receivers.astype(np.int32))
    split_dir = root / "split" / split_type
    splits = {}
    for name, stem in SPLIT_FILES.items():
        idx = _read_csv(split_dir / f"{stem}.csv.gz", np.int64)[:, 0]
        if len(idx) and (idx.min() < 0 or idx.max() >= len(graphs)):
            raise DataError(f"{split_dir / stem}.csv.gz: graph index out of range 0..{len(graphs) - 1}")
        splits[name] = graphs.take(idx)
    return Dataset(name=NAME, source=f"ogb:{root}", splits=with_shared_stats(splits))


def write_ogb_folder(directory: str | os.PathLike, graphs: GraphSet,
                     split_idx: Mapping[str, Sequence[int]], split_type: str = "scaffold") -> Path:
    """Write graphs in OGB's on-disk molpcba format (tests and tools); returns the folder.

    Edges must come in OGB's interleaved pairs (i, j), (j, i) with equal features, as
    `smiles2graph` makes them; each pair is stored once, as a bond.
    """
    root = Path(directory)
    senders, receivers = graphs.senders, graphs.receivers
    paired = (len(senders) % 2 == 0 and np.array_equal(senders[0::2], receivers[1::2])
              and np.array_equal(receivers[0::2], senders[1::2])
              and np.array_equal(graphs.edge_feat[0::2], graphs.edge_feat[1::2])
              and not np.any(graphs.n_edge % 2))
    if not paired:
        raise DataError("edges are not in interleaved (i, j), (j, i) pairs; cannot store as bonds")
    pd = _pandas()
    (root / "raw").mkdir(parents=True, exist_ok=True)
    tables = {
        "edge.csv.gz": np.stack([senders[0::2], receivers[0::2]], 1),
        "node-feat.csv.gz": graphs.node_feat,
        "edge-feat.csv.gz": graphs.edge_feat[0::2],
        "num-node-list.csv.gz": graphs.n_node[:, None],
        "num-edge-list.csv.gz": (graphs.n_edge // 2)[:, None],
        "graph-label.csv.gz": graphs.labels,
    }
    for file, table in tables.items():
        pd.DataFrame(table).to_csv(root / "raw" / file, header=False, index=False,
                                   compression="gzip")
    split_dir = root / "split" / split_type
    split_dir.mkdir(parents=True, exist_ok=True)
    for name, stem in SPLIT_FILES.items():
        pd.DataFrame(np.asarray(split_idx[name], np.int64)).to_csv(
            split_dir / f"{stem}.csv.gz", header=False, index=False, compression="gzip")
    return root


# -- TFDS ------------------------------------------------------------------------------


def graphs_from_tfds_examples(examples: Iterable[Mapping[str, np.ndarray]]) -> GraphSet:
    """TFDS `ogbg_molpcba` examples (numpy dicts) as one GraphSet."""
    n_node, n_edge, nodes, edges, senders, receivers, labels = [], [], [], [], [], [], []
    for ex in examples:
        index = np.asarray(ex["edge_index"], np.int64).reshape(-1, 2)
        n_node.append(int(np.asarray(ex["num_nodes"]).reshape(-1)[0]))
        n_edge.append(len(index))
        nodes.append(np.asarray(ex["node_feat"]).reshape(-1, len(ATOM_FEATURE_DIMS)))
        edges.append(np.asarray(ex["edge_feat"]).reshape(-1, len(BOND_FEATURE_DIMS)))
        senders.append(index[:, 0])
        receivers.append(index[:, 1])
        labels.append(np.asarray(ex["labels"], np.float32).reshape(NUM_TASKS))
    if not n_node:
        raise DataError("no TFDS examples")
    return GraphSet(labels=np.stack(labels), n_node=np.asarray(n_node, np.int32),
                    n_edge=np.asarray(n_edge, np.int32),
                    node_feat=np.concatenate(nodes).astype(np.int16),
                    edge_feat=np.concatenate(edges).astype(np.int16),
                    senders=np.concatenate(senders).astype(np.int32),
                    receivers=np.concatenate(receivers).astype(np.int32))


def load_tfds(data_dir: str | None = None, download: bool = False) -> Dataset:
    """ogbg_molpcba through TensorFlow Datasets; downloads only when the user asks for it."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataUnavailable("source 'tfds' needs tensorflow-datasets: "
                              "pip install tensorflow-datasets tensorflow-cpu") from None
    splits = {}
    for name in SPLIT_FILES:
        try:
            ds = tfds.load("ogbg_molpcba", split=name, data_dir=data_dir, download=download)
        except Exception as e:  # tfds raises several types for "not prepared"
            raise DataUnavailable(f"TFDS ogbg_molpcba is not prepared ({e}); run "
                                  "`tfds build ogbg_molpcba` or pass --data-source tfds-download") from e
        splits[name] = graphs_from_tfds_examples(tfds.as_numpy(ds))
    return Dataset(name=NAME, source="tfds:ogbg_molpcba", splits=with_shared_stats(splits))


# -- molecules from SMILES -------------------------------------------------------------


def _smiles2graph():
    try:
        from ogb.utils import smiles2graph
    except ImportError:
        raise DataUnavailable(f"molecules from SMILES need OGB's smiles2graph (rdkit): {_EXTRA}") from None
    return smiles2graph


def graphs_from_smiles(smiles: Sequence[str], labels: np.ndarray) -> GraphSet:
    """Molecules as graphs via OGB's `smiles2graph`; labels (G, tasks) with NaN for missing."""
    smiles2graph = _smiles2graph()
    labels = np.asarray(labels, np.float32)
    if labels.shape[0] != len(smiles):
        raise DataError(f"{len(smiles)} molecules but {labels.shape[0]} label rows")
    mols = []
    for i, s in enumerate(smiles):
        try:
            mols.append(smiles2graph(s))
        except Exception as e:  # rdkit returns None for bad SMILES; smiles2graph then fails
            raise DataError(f"molecule {i}: cannot parse SMILES {s!r} ({type(e).__name__})") from e
    return GraphSet(
        labels=labels,
        n_node=np.asarray([m["num_nodes"] for m in mols], np.int32),
        n_edge=np.asarray([m["edge_index"].shape[1] for m in mols], np.int32),
        node_feat=np.concatenate([m["node_feat"] for m in mols]).astype(np.int16),
        edge_feat=np.concatenate([m["edge_feat"] for m in mols]).astype(np.int16),
        senders=np.concatenate([m["edge_index"][0] for m in mols]).astype(np.int32),
        receivers=np.concatenate([m["edge_index"][1] for m in mols]).astype(np.int32))


def load_smiles_csv(path: str | os.PathLike) -> Dataset:
    """A CSV of molecules: `smiles`, `split` (train/validation/test) and 128 task columns."""
    path = Path(path)
    if not path.is_file():
        raise DataUnavailable(f"source 'smiles' needs --data-dir pointing at a CSV file; {path} is not one")
    table = _pandas().read_csv(path)
    missing = {"smiles", "split"} - set(table.columns)
    if missing:
        raise DataError(f"{path}: missing column(s) {sorted(missing)}; expected smiles, split "
                         f"and {NUM_TASKS} task columns")
    tasks = [c for c in table.columns if c not in ("smiles", "split", "mol_id")]
    if len(tasks) != NUM_TASKS:
        raise DataError(f"{path}: {len(tasks)} task columns, expected {NUM_TASKS}")
    split = table["split"].replace({"valid": "validation"})
    unknown = sorted(set(split) - set(SPLIT_FILES))
    if unknown:
        raise DataError(f"{path}: unknown split value(s) {unknown}; use train, validation, test")
    graphs = graphs_from_smiles(list(table["smiles"]), table[tasks].to_numpy(np.float32))
    splits = {name: graphs.take(np.flatnonzero(split.to_numpy() == name)) for name in SPLIT_FILES}
    return Dataset(name=NAME, source=f"smiles:{path}", splits=with_shared_stats(splits))


# -- synthetic -------------------------------------------------------------------------


def synthetic_graphs(num_graphs: int, rng: np.random.Generator, missing: float = 0.6,
                     positive: float = 0.1) -> GraphSet:
    """Random molecule-sized graphs (a random tree plus a few rings), OGB feature ranges,
    labels positive with probability `positive` and missing (NaN) with `missing`."""
    n_node = rng.integers(2, 48, num_graphs).astype(np.int32)
    senders, receivers = [], []
    for n in n_node:
        child = np.arange(1, n)
        parent = rng.integers(0, child)
        extra = rng.integers(0, n, (int(rng.integers(0, 3)), 2))
        extra = extra[extra[:, 0] != extra[:, 1]]
        a = np.concatenate([child, extra[:, 0]])
        b = np.concatenate([parent, extra[:, 1]])
        senders.append(np.stack([a, b], 1).reshape(-1))
        receivers.append(np.stack([b, a], 1).reshape(-1))
    n_edge = np.asarray([len(s) for s in senders], np.int32)
    n_bond = int(n_edge.sum()) // 2
    bond_feat = np.stack([rng.integers(0, d, n_bond) for d in BOND_FEATURE_DIMS], 1)
    node_feat = np.stack([rng.integers(0, d, int(n_node.sum())) for d in ATOM_FEATURE_DIMS], 1)
    labels = (rng.random((num_graphs, NUM_TASKS)) < positive).astype(np.float32)
    labels[rng.random(labels.shape) < missing] = np.nan
    return GraphSet(labels=labels, n_node=n_node, n_edge=n_edge,
                    node_feat=node_feat.astype(np.int16),
                    edge_feat=np.repeat(bond_feat, 2, axis=0).astype(np.int16),
                    senders=np.concatenate(senders).astype(np.int32),
                    receivers=np.concatenate(receivers).astype(np.int32))


def synthetic_dataset(sizes: Mapping[str, int], seed: int = 0) -> Dataset:
    """Synthetic splits of the given sizes (contract tests and speed benchmarks)."""
    rng = np.random.default_rng(seed)
    splits = {name: synthetic_graphs(n, rng) for name, n in sizes.items()}
    return Dataset(name=f"synthetic-{NAME}", source="synthetic", splits=with_shared_stats(splits))


# -- entry point -----------------------------------------------------------------------


def load_ogbg_molpcba(data_dir: str | None = None, source: str | None = None) -> Dataset:
    """ogbg-molpcba from `source`: 'ogb' (default; --data-dir), 'tfds', 'tfds-download', 'smiles'."""
    source = source or ("ogb" if data_dir else None)
    if source is None:
        raise DataUnavailable(
            f"{NAME} is not shipped with curvebench and cannot be fetched offline. Download "
            f"{OGB_URL}, unzip it and pass --data-dir <unzipped folder>; or use "
            f"--data-source tfds (a prepared TFDS ogbg_molpcba) / tfds-download; or "
            f"--data-source smiles --data-dir molecules.csv for your own molecules")
    if source == "ogb":
        if not data_dir:
            raise DataUnavailable("source 'ogb' needs --data-dir pointing at the OGB ogbg_molpcba folder")
        return read_ogb_folder(data_dir)
    if source in ("tfds", "tfds-download"):
        return load_tfds(data_dir, download=source == "tfds-download")
    if source == "smiles":
        if not data_dir:
            raise DataUnavailable("source 'smiles' needs --data-dir pointing at a molecules CSV")
        return load_smiles_csv(data_dir)
    raise DataUnavailable(f"unknown {NAME} source {source!r}; valid: {', '.join(SOURCES)}")
