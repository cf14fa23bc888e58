"""Pipeline stage 4: how much of a client's label histogram an attack recovered.

Contract: pure functions of true and predicted count arrays, ``(C,)`` for one batch or ``(batches, C)`` for
one client; bad shapes or negative counts raise ``ValueError``. Per batch: LnAcc (counts) and LeAcc
(existence); per client: ClassAcc, which weighs every class the client has equally and so is not dominated by
NULL, and count-F1. Reference: the metrics of the seed paper (Bock et al., 2025, eqs. 4 and 5, and its
ClassAcc). Chapter 4 introduces them, Chapter 7 discusses them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: what :func:`summarize` returns, per client
METRICS: tuple[str, ...] = ("ln_acc", "le_acc", "le_recall", "class_acc", "count_f1")
#: the metrics whose advantage over the blind guess is reported (``adv_<metric>``, :func:`advantage`)
ADVANTAGE_METRICS: tuple[str, ...] = ("ln_acc", "le_acc", "class_acc", "count_f1")
#: how figures, tables and the explorer name the metrics of :data:`ADVANTAGE_METRICS`
METRIC_LABELS: dict[str, str] = {"ln_acc": "LnAcc", "le_acc": "LeAcc", "class_acc": "ClassAcc", "count_f1": "count-F1"}


def _pair(true_counts, pred_counts) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(true_counts)
    p = np.asarray(pred_counts)
    if t.shape != p.shape or t.ndim not in (1, 2):
        raise ValueError(
            f"true and predicted counts must have one shape, (C,) or (batches, C); got {t.shape} and {p.shape}."
        )
    if np.any(t < 0) or np.any(p < 0):
        raise ValueError("counts must be non-negative.")
    return t.astype(np.float64), p.astype(np.float64)


def ln_acc(true_counts, pred_counts) -> float:
    """Label number accuracy of one batch: ``sum_c min(n_c, nhat_c) / N`` (paper eq. 5).

    Introduced in Chapter 4. ``N`` is the true batch size; the prediction must have the same total.
    """
    t, p = _pair(true_counts, pred_counts)
    if t.ndim != 1:
        raise ValueError("ln_acc takes one batch: two (C,) count vectors.")
    return float(_ln_acc_rows(t[None], p[None])[0])


def le_acc(true_counts, pred_counts) -> float:
    """Label existence accuracy (paper eq. 4): the fraction of all ``C`` classes whose presence
    (count > 0) is predicted correctly — absent classes predicted absent count as correct.

    Introduced in Chapter 4.
    """
    t, p = _pair(true_counts, pred_counts)
    if t.ndim != 1:
        raise ValueError("le_acc takes one batch: two (C,) count vectors.")
    return float(_le_acc_rows(t[None], p[None])[0])


def le_recall(true_counts, pred_counts) -> float:
    """The existence score the seed paper's code logged: ``|present_pred & present_true| / |present_true|``.

    Introduced in Chapter 7. A recall: predicting every class present scores 1.0.
    """
    t, p = _pair(true_counts, pred_counts)
    if t.ndim != 1:
        raise ValueError("le_recall takes one batch: two (C,) count vectors.")
    return float(_le_recall_rows(t[None], p[None])[0])


def class_acc_per_class(true_counts_per_batch, pred_counts_per_batch) -> np.ndarray:
    """Per class: ``sum_b min(n_bc, nhat_bc) / sum_b n_bc`` over one client's batches (NaN if absent).

    Introduced in Chapter 7.
    """
    t, p = _pair(true_counts_per_batch, pred_counts_per_batch)
    if t.ndim != 2:
        raise ValueError("class_acc takes (batches, C) arrays of one client's true and predicted counts.")
    total = t.sum(axis=0)
    hit = np.minimum(t, p).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, hit / np.where(total > 0, total, 1), np.nan)


def class_acc(true_counts_per_batch, pred_counts_per_batch) -> float:
    """ClassAcc of one client: the mean over classes present in the client of
    :func:`class_acc_per_class` — every class counts equally, however rare.

    Introduced in Chapter 4.
    """
    per_class = class_acc_per_class(true_counts_per_batch, pred_counts_per_batch)
    if np.all(np.isnan(per_class)):
        raise ValueError("the client has no windows.")
    return float(np.nanmean(per_class))


def count_f1_per_class(true_counts_per_batch, pred_counts_per_batch) -> np.ndarray:
    """Per class: the F1 of count matches over one client's batches (NaN if neither true nor predicted).

    Introduced in Chapter 7. With ``hits_c = sum_b min(n_bc, nhat_bc)``, recall ``hits_c / sum_b n_bc``
    (ClassAcc's per-class value) and precision ``hits_c / sum_b nhat_bc``, the F1 is
    ``2 hits_c / (sum_b n_bc + sum_b nhat_bc)``. Windows predicted for a class the client never did
    are charged to that class, which recall alone never does.
    """
    t, p = _pair(true_counts_per_batch, pred_counts_per_batch)
    if t.ndim != 2:
        raise ValueError("count_f1 takes (batches, C) arrays of one client's true and predicted counts.")
    hits = np.minimum(t, p).sum(axis=0)
    total = t.sum(axis=0) + p.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2 * hits / np.where(total > 0, total, 1), np.nan)


def count_f1(true_counts_per_batch, pred_counts_per_batch) -> float:
    """Macro count-F1 of one client: the mean of :func:`count_f1_per_class` over every class that the
    client has *or* that the attack predicted.

    Introduced in Chapter 7. A class-balanced count metric that charges spreading: windows put on classes
    the client never did cost precision in each of them (ClassAcc does not charge it). A uniform guess
    still scores high where the batches really are uniform (balanced sampling, Chapter 7).
    """
    per_class = count_f1_per_class(true_counts_per_batch, pred_counts_per_batch)
    if np.all(np.isnan(per_class)):
        raise ValueError("the client has no windows.")
    return float(np.nanmean(per_class))


def advantage(score, blind):
    """Leakage beyond the blind guess: ``(score - blind) / (1 - blind)``; NaN where ``blind >= 1``.

    Introduced in Chapter 6. 0: the gradient told the server nothing it could not guess; 1: perfect
    recovery; below 0: worse than guessing. ``blind`` is the better blind reference's score on the same
    batches (:mod:`leakage_core.attacks.baseline.blind`). Works on floats, arrays and pandas objects alike.
    """
    score = np.asarray(score, dtype=np.float64) if not isinstance(score, pd.Series) else score.astype(float)
    blind = np.asarray(blind, dtype=np.float64) if not isinstance(blind, pd.Series) else blind.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (score - blind) / (1.0 - blind)
    out = out.where(blind < 1) if isinstance(out, pd.Series) else np.where(blind < 1, out, np.nan)
    return float(out) if np.ndim(out) == 0 else out


def label_confusion(true_counts_per_batch, pred_counts_per_batch) -> np.ndarray:
    """``(C, C)`` confusion matrix of label-sorted, concatenated labels (the paper's Fig. 4).

    Introduced in Chapter 7. For every batch, the true and the predicted counts are expanded into
    label sequences sorted by class (``[0, 0, 1, 2, 2, ...]``), paired position by position and
    counted (row = true, column = predicted). Each batch must predict as many windows as it has.
    The diagonal then holds ``min``-like matches; the off-diagonal shows which classes an attack
    confuses with which (it depends on the arbitrary sort order, which is why ClassAcc is the number
    to report).
    """
    t, p = _pair(true_counts_per_batch, pred_counts_per_batch)
    t, p = np.atleast_2d(t).astype(np.int64), np.atleast_2d(p).astype(np.int64)
    c_ = t.shape[1]
    out = np.zeros((c_, c_), dtype=np.int64)
    for tb, pb in zip(t, p):
        if tb.sum() != pb.sum():
            raise ValueError(f"a batch predicts {pb.sum()} windows but has {tb.sum()}.")
        np.add.at(out, (np.repeat(np.arange(c_), tb), np.repeat(np.arange(c_), pb)), 1)
    return out


def class_acc_sorted_per_class(true_counts_per_batch, pred_counts_per_batch) -> np.ndarray:
    """Per class: the share of its windows whose partner in the label-sorted pairing has its label.

    For every batch the true and predicted labels are sorted by class,
    paired position by position and concatenated over the client's batches (as in
    :func:`label_confusion`); class ``c``'s value is ``diag[c] / (windows of class c)``, NaN where the
    client has no window of ``c``. See :func:`class_acc_sorted`.
    """
    conf = label_confusion(true_counts_per_batch, pred_counts_per_batch)
    total = conf.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.diag(conf) / np.where(total > 0, total, 1.0), np.nan)


def class_acc_sorted(true_counts_per_batch, pred_counts_per_batch) -> float:
    """ClassAcc as the seed paper's *text* describes it: position-wise pairing of sorted label lists.

    Introduced in Chapter 12. The paper describes ClassAcc as the class-wise accuracy between the
    label-sorted, concatenated reconstructed labels and the ground truth. Read literally, each batch's
    true and predicted labels are sorted (``[0, 0, 1, 2, ...]``), paired position by position and
    concatenated over the client's batches; per class, the share of its true windows paired with a
    prediction of the same class (:func:`class_acc_sorted_per_class`); then the mean over the classes
    the client has (as :func:`class_acc`).

    The paper's *code* computes something else, which :func:`class_acc` implements: per batch, every
    true label is matched to an unused equal predicted label (a multiset match, i.e.
    ``min(n_bc, nhat_bc)`` hits for class ``c``), summed over batches, divided per class by the
    class's windows and averaged with ``nanmean`` (github.com/mariusbock/leakage_har,
    ``single_step_leakage.py`` and ``multi_step_leakage.py``, ``Leakage.main``: ``per_class_correct`` /
    ``final_classAvgAcc``). The code uses the position-wise pairing only for its confusion matrices
    (the paper's Fig. 4, :func:`label_confusion`). Chapter 12 compares both readings with the paper's
    Table 1.

    Position-wise pairing is stricter: a class's hits can never exceed ``min(n_bc, nhat_bc)``, and
    one miscounted class shifts every later position of the batch, so a batch with every class
    present but one count off by one can lose hits in all classes sorted after it. Hence
    ``class_acc_sorted <= class_acc``, with equality when every batch is predicted exactly.

    Parameters
    ----------
    true_counts_per_batch, pred_counts_per_batch : array_like
        ``(batches, C)`` true and predicted counts of one client; each batch's prediction must have
        as many windows as the batch.

    Returns
    -------
    float
        The mean over the client's classes of :func:`class_acc_sorted_per_class`.
    """
    per_class = class_acc_sorted_per_class(true_counts_per_batch, pred_counts_per_batch)
    if np.all(np.isnan(per_class)):
        raise ValueError("the client has no windows.")
    return float(np.nanmean(per_class))


def summarize(true_counts_per_batch, pred_counts_per_batch) -> dict[str, float]:
    """LnAcc, LeAcc and LeRecall averaged over a client's batches, and the client's ClassAcc and count-F1.

    Keys: :data:`METRICS`. ``(batches, C)`` arrays with at least one batch; each prediction sums to its batch.
    """
    t, p = _pair(true_counts_per_batch, pred_counts_per_batch)
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError("summarize takes (batches, C) arrays with at least one batch.")
    ln, le, recall = _per_batch(t, p)
    return {
        "ln_acc": float(np.mean(ln)),
        "le_acc": float(np.mean(le)),
        "le_recall": float(np.mean(recall)),
        "class_acc": class_acc(t, p),
        "count_f1": count_f1(t, p),
    }


def _per_batch(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`ln_acc`, :func:`le_acc` and :func:`le_recall` of every batch of checked ``(batches, C)`` float arrays
    of counts, with their errors: the formulas those functions apply to their one batch."""
    return _ln_acc_rows(t, p), _le_acc_rows(t, p), _le_recall_rows(t, p)


def _ln_acc_rows(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """LnAcc (paper eq. 5) of every row of checked ``(batches, C)`` counts; each batch non-empty, each prediction
    summing to its batch (else ``ValueError``)."""
    n = t.sum(axis=1)
    if np.any(n <= 0):
        raise ValueError("the true batch is empty (N = 0).")
    wrong = np.flatnonzero(p.sum(axis=1) != n)
    if wrong.size:
        b = wrong[0]
        raise ValueError(f"predicted counts sum to {p[b].sum():g} but the batch has N = {n[b]:g} windows.")
    return np.minimum(t, p).sum(axis=1) / n


def _le_acc_rows(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """LeAcc (paper eq. 4) of every row of checked ``(batches, C)`` counts."""
    return np.mean((t > 0) == (p > 0), axis=1)


def _le_recall_rows(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """LeRecall of every row of checked ``(batches, C)`` counts; each batch with a class present (else
    ``ValueError``)."""
    present = t > 0
    n_present = present.sum(axis=1)
    if np.any(n_present == 0):
        raise ValueError("the true batch has no class present.")
    return np.sum(present & (p > 0), axis=1) / n_present


def metrics_table(true_counts_per_batch, preds: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per attack: :func:`summarize` of its predictions. Introduced in Chapter 6."""
    return pd.DataFrame({name: summarize(true_counts_per_batch, p) for name, p in preds.items()}).T
