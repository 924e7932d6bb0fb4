"""Real molecules for the ogbg tests: the first NCI compounds bundled with rdkit, as graphs.

Labels are synthetic (seeded) with missing entries, as molpcba's labels are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.data.ogbg import NUM_TASKS, graphs_from_smiles


def nci_smiles(count: int) -> list[str]:
    """The first `count` SMILES of rdkit's Data/NCI/first_5K.smi."""
    rdconfig = pytest.importorskip("rdkit.RDConfig", reason="real molecules come from rdkit's data")
    pytest.importorskip("ogb.utils", reason="graphs from SMILES use OGB's smiles2graph")
    path = Path(rdconfig.RDDataDir) / "NCI" / "first_5K.smi"
    lines = path.read_text().splitlines()[:count]
    return [line.split()[0] for line in lines]


def synthetic_labels(count: int, seed: int, missing: float = 0.5) -> np.ndarray:
    """(count, 128) labels, 15% positive, `missing` of them NaN."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((count, NUM_TASKS)) < 0.15).astype(np.float32)
    labels[rng.random(labels.shape) < missing] = np.nan
    return labels


def molecule_graphs(count: int = 48, seed: int = 0):
    """`count` real NCI molecules as a GraphSet with synthetic labels."""
    smiles = nci_smiles(count)
    return graphs_from_smiles(smiles, synthetic_labels(len(smiles), seed))
