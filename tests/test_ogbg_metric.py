"""Mean average precision as OGB's Evaluator('ogbg-molpcba') computes it, without torch."""

from __future__ import annotations

import numpy as np
import pytest

from workloads.average_precision import average_precision, mean_average_precision


def test_average_precision_by_hand():
    # ranking: 0.9 (pos), 0.8 (neg), 0.7 (pos), 0.1 (neg): AP = 1/2 * (1/1 + 2/3)
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(5 / 6)
    # a tie between a positive and a negative counts as one threshold: precision 1/2 there
    assert average_precision([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert average_precision([0, 1, 1], [0.1, 0.2, 0.3]) == pytest.approx(1.0)


def test_tasks_without_both_classes_are_skipped_and_nan_ignored():
    y = np.array([[1, 0, np.nan], [0, 0, 1], [np.nan, 0, 1]])
    scores = np.array([[0.9, 0.2, 0.0], [0.1, 0.4, 0.3], [0.5, 0.3, 0.8]])
    # only task 0 has both classes, on its two labeled rows: perfectly ranked
    assert mean_average_precision(y, scores) == 1.0
    with pytest.raises(ValueError, match="no task has both"):
        mean_average_precision(y[:, 1:], scores[:, 1:])
    with pytest.raises(ValueError, match="must both be"):
        mean_average_precision(y, scores[:, :2])


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    y = (rng.random((257, 128)) < 0.12).astype(np.float64)
    y[rng.random(y.shape) < 0.6] = np.nan
    y[:, 7] = np.where(np.isnan(y[:, 7]), np.nan, 0.0)  # a task without positives
    y[:, 9] = np.nan  # a task without labels
    scores = rng.normal(size=y.shape).astype(np.float32)
    scores[:, 3] = np.round(scores[:, 3])  # many ties
    return y, scores


@pytest.mark.parametrize("seed", range(4))
def test_equals_ogbs_evaluator(seed):
    graphproppred = pytest.importorskip("ogb.graphproppred", reason="parity check needs ogb (and torch)")
    y, scores = _random_case(seed)
    expected = graphproppred.Evaluator("ogbg-molpcba").eval({"y_true": y, "y_pred": scores})["ap"]
    assert mean_average_precision(y, scores) == expected


def test_equals_scikit_learn_per_task():
    metrics = pytest.importorskip("sklearn.metrics", reason="per-task parity needs scikit-learn")
    y, scores = _random_case(11)
    for task in (0, 3, 50):
        labeled = ~np.isnan(y[:, task])
        assert average_precision(y[labeled, task], scores[labeled, task]) == \
            metrics.average_precision_score(y[labeled, task], scores[labeled, task])
