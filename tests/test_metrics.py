import numpy as np
import pytest

from leakage_core.metrics import (
    class_acc,
    class_acc_per_class,
    label_confusion,
    le_acc,
    le_recall,
    ln_acc,
    metrics_table,
    summarize,
)

TRUE = np.array([6, 3, 1, 0])
PRED = np.array([5, 2, 0, 3])  # class 3 predicted but absent, class 2 present but missed


def test_ln_acc_hand_computed():
    assert ln_acc(TRUE, PRED) == pytest.approx((5 + 2 + 0 + 0) / 10)
    assert ln_acc(TRUE, TRUE) == 1.0


def test_le_acc_is_over_all_classes():
    # presence correct for classes 0, 1; wrong for 2 (missed) and 3 (false presence)
    assert le_acc(TRUE, PRED) == pytest.approx(2 / 4)
    # absent class predicted absent counts as correct
    assert le_acc(np.array([5, 5, 0]), np.array([4, 6, 0])) == 1.0


def test_le_recall_ignores_false_presence():
    assert le_recall(TRUE, PRED) == pytest.approx(2 / 3)
    everything = np.array([3, 3, 2, 2])
    assert le_recall(TRUE, everything) == 1.0 and le_acc(TRUE, everything) == 0.75


def test_class_acc_per_client_with_absent_class():
    true_b = np.array([[6, 3, 1, 0], [10, 0, 0, 0]])
    pred_b = np.array([[5, 2, 0, 3], [8, 2, 0, 0]])
    per_class = class_acc_per_class(true_b, pred_b)
    np.testing.assert_allclose(per_class[:3], [13 / 16, 2 / 3, 0.0])
    assert np.isnan(per_class[3])  # the client never had class 3
    assert class_acc(true_b, pred_b) == pytest.approx(np.mean([13 / 16, 2 / 3, 0.0]))


def test_label_confusion_of_sorted_sequences():
    m = label_confusion(np.array([[2, 1, 0]]), np.array([[1, 1, 1]]))
    # true sorted: 0 0 1 ; predicted sorted: 0 1 2
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert label_confusion(np.array([TRUE]), np.array([PRED])).sum() == 10


def test_summarize_and_table():
    true_b = np.array([[6, 3, 1, 0], [10, 0, 0, 0]])
    s = summarize(true_b, true_b)
    assert s == {"ln_acc": 1.0, "le_acc": 1.0, "le_recall": 1.0, "class_acc": 1.0, "count_f1": 1.0}
    t = metrics_table(true_b, {"perfect": true_b, "null only": np.array([[10, 0, 0, 0], [10, 0, 0, 0]])})
    assert t.loc["null only", "ln_acc"] == pytest.approx((0.6 + 1.0) / 2)
    assert t.loc["null only", "class_acc"] == pytest.approx((16 / 16 + 0 + 0) / 3)
    # count-F1: null 2*16/(16+20), classes 1 and 2 predicted never: 0
    assert t.loc["null only", "count_f1"] == pytest.approx((32 / 36 + 0 + 0) / 3)


def test_bad_input():
    with pytest.raises(ValueError, match="one shape"):
        ln_acc(np.array([1, 2]), np.array([1, 2, 0]))
    with pytest.raises(ValueError, match="non-negative"):
        le_acc(np.array([1, -1]), np.array([0, 0]))
    with pytest.raises(ValueError, match="sum to"):
        ln_acc(np.array([1, 2]), np.array([1, 1]))
    with pytest.raises(ValueError, match="batches, C"):
        class_acc(TRUE, PRED)


def test_summarize_equals_the_per_batch_metrics_exactly():
    """summarize computes LnAcc, LeAcc and LeRecall of all batches at once: the same floats as batch by batch."""
    rng = np.random.default_rng(3)
    true = np.stack([rng.multinomial(100, rng.dirichlet(np.full(9, 0.3))) for _ in range(40)])
    pred = np.stack([rng.multinomial(100, rng.dirichlet(np.ones(9))) for _ in range(40)])
    s = summarize(true, pred)
    assert s["ln_acc"] == float(np.mean([ln_acc(t, p) for t, p in zip(true, pred)]))
    assert s["le_acc"] == float(np.mean([le_acc(t, p) for t, p in zip(true, pred)]))
    assert s["le_recall"] == float(np.mean([le_recall(t, p) for t, p in zip(true, pred)]))
    with pytest.raises(ValueError, match="sum to 99"):
        summarize(true, np.vstack([pred[:-1], pred[-1] - np.eye(9, dtype=int)[np.argmax(pred[-1])]]))
    with pytest.raises(ValueError, match="empty"):
        summarize(np.vstack([true, np.zeros(9, int)]), np.vstack([pred, np.zeros(9, int)]))


def test_the_per_batch_functions_are_summarizes_formulas_with_their_own_errors():
    """ln_acc, le_acc and le_recall apply the formulas summarize applies to every batch (one definition each): the
    same floats as the closed forms they replaced, and each keeps its own errors."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        t = rng.multinomial(50, rng.dirichlet(np.full(6, 0.4))).astype(float)
        p = rng.multinomial(50, rng.dirichlet(np.ones(6))).astype(float)
        assert ln_acc(t, p) == float(np.minimum(t, p).sum() / t.sum())
        assert le_acc(t, p) == float(np.mean((t > 0) == (p > 0)))
        assert le_recall(t, p) == float(np.sum((t > 0) & (p > 0)) / (t > 0).sum())
    # LeAcc needs neither a non-empty batch nor equal totals; LeRecall needs a class present, not equal totals
    assert le_acc([0, 0, 3], [1, 0, 0]) == pytest.approx(1 / 3) and le_acc([0, 0], [0, 0]) == 1.0
    assert le_recall([2, 0, 1], [5, 5, 0]) == 0.5
    with pytest.raises(ValueError, match="no class present"):
        le_recall([0, 0], [1, 0])
    with pytest.raises(ValueError, match="empty"):
        ln_acc([0, 0], [0, 0])
    with pytest.raises(ValueError, match="one batch"):
        le_recall(np.stack([TRUE, TRUE]), np.stack([PRED, PRED]))


def test_one_mapping_names_the_metrics_for_figures_and_the_explorer():
    from leakage_core.book import explorer, plots
    from leakage_core.metrics import ADVANTAGE_METRICS, METRIC_LABELS

    assert tuple(METRIC_LABELS) == ADVANTAGE_METRICS
    assert METRIC_LABELS["ln_acc"] == "LnAcc" and METRIC_LABELS["count_f1"] == "count-F1"
    assert plots.METRIC_LABELS is METRIC_LABELS and explorer.METRIC_LABELS is METRIC_LABELS
