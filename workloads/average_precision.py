"""Mean average precision over tasks, computed exactly as OGB's `Evaluator('ogbg-molpcba')`.

OGB: for each task with at least one positive and one negative label, the
scikit-learn `average_precision_score` over the labeled (non-NaN) graphs; then the
plain mean of those per-task values. Reimplemented in numpy (same operations, same
order) so that scoring needs neither torch nor scikit-learn.
"""

from __future__ import annotations

import numpy as np


def average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Uninterpolated average precision of binary labels (0/1) given scores.

    The step integral sum_k (R_k - R_{k-1}) P_k over the distinct score thresholds,
    as scikit-learn's `average_precision_score` computes it.
    """
    y_true = np.asarray(y_true) == 1
    y_score = np.asarray(y_score)
    order = np.argsort(y_score, kind="stable")[::-1]
    y_score, y_true = y_score[order], y_true[order]
    distinct = np.flatnonzero(np.diff(y_score))
    thresholds = np.concatenate([distinct, [len(y_true) - 1]])
    tps = np.cumsum(y_true.astype(np.float64))[thresholds]
    fps = 1 + thresholds.astype(np.float64) - tps
    predicted = tps + fps
    precision = np.where(predicted != 0, tps / predicted, 0.0)
    recall = tps / tps[-1] if tps[-1] != 0 else np.ones_like(tps)
    precision = np.concatenate([precision[::-1], [1.0]])
    recall = np.concatenate([recall[::-1], [0.0]])
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def mean_average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """OGB's molpcba metric: mean AP over tasks having both classes; NaN labels ignored.

    Raises ValueError, as OGB raises RuntimeError, when no task has both classes.
    """
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score)
    if y_true.shape != y_score.shape or y_true.ndim != 2:
        raise ValueError(f"y_true {y_true.shape} and y_score {y_score.shape} must both be "
                         "(num_graphs, num_tasks)")
    ap_list = []
    for task in range(y_true.shape[1]):
        column = y_true[:, task]
        if np.sum(column == 1) > 0 and np.sum(column == 0) > 0:
            labeled = column == column
            ap_list.append(average_precision(column[labeled], y_score[labeled, task]))
    if not ap_list:
        raise ValueError("no task has both a positive and a negative label; "
                         "average precision is undefined")
    return sum(ap_list) / len(ap_list)
