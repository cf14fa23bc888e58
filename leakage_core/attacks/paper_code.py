"""The seed paper's attacks as its public code ran them: the ``variant="paper_code"`` options.

Bock et al. ran their experiments with the public repository ``mariusbock/leakage_har``: a copy of the
``breaching`` library whose label strategies live in ``breaching/attacks/base_attack.py``, method
``_BaseAttacker._recover_label_information``, driven by ``single_step_leakage.py`` (FedSGD, strategies
``'wainakh-simple'``, ``'wainakh-whitebox'``, ``'ebi'``, ``'iLRG'``, ``'llbgAVG'``) and
``multi_step_leakage.py`` (FedAvg). This module re-implements, from a reading of that code (nothing
is copied), what those strategies compute, so the book can measure how much of the gap between its
numbers and the paper's each deviation from the published attacks explains. The correct attacks are
in :mod:`~leakage_core.attacks.weight_based`, :mod:`~leakage_core.attacks.bias_based` and
:mod:`~leakage_core.attacks.ilrg`; the registry exposes these variants as the option
``variant="paper_code"`` of ``llg``, ``llg_star``, ``llbg`` and ``ilrg`` (``variant="book"``, the
default, is the correct attack, unchanged).

Facts common to every strategy of that method (all checked against the code):

- it builds a *list of labels* and finally forces its length to ``N``: a longer list is cut to its
  first ``N`` entries, a shorter one is padded with labels drawn uniformly at random
  (``torch.randint``). The functions here return the counts of that final list, so the count
  contract (non-negative int64, summing to ``N``) holds by construction;
- stage 1 of LLG, LLG* and LLBG appends *every* class with a negative entry, in class-index order,
  with no cap; when more than ``N`` classes are negative the cut keeps the ``N`` lowest class
  indices (the book caps stage 1 at ``N``, most negative first);
- ``argmin`` returns the first index on ties, as here;
- for FedAvg, ``multi_step_leakage.py`` divides the shared parameter difference by the learning rate
  (its configs use one rate for training and for the local steps) and the method negates it, so the
  attacker works on ``-delta/lr``, the sum of the ``S`` step gradients, with ``N`` = all windows of
  the update: exactly :class:`~leakage_core.updates.LastLayerUpdate`'s convention;
- the code computes in float32, this module in float64 (except where float32 rounding *is* the
  result, LLG*'s estimates): this can only matter at exact ties.

EBI (strategy ``'ebi'``) is not repeated here: the code's counts equal the book's
:func:`~leakage_core.attacks.bias_based.ebi` (its only differences, compensating negative classes
beyond the cap and an unstable sort of stage 1, cannot change a count; tested).
"""
from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from ..updates.client import client_features
from ..updates.update import LastLayerUpdate
from ._common import (
    _greedy_picks, check_classifier_shape, check_option, check_update, classifier_arrays, classifier_shape, model_classifier,
    no_preparation,
)
from .bias_based import count_llbg, prepare_llbg
from .ilrg import count_ilrg, prepare_ilrg
from .weight_based import _dummy_windows, count_llg, count_with_impacts, prepare_llg_star

#: values of the ``variant`` option: the correct attack, or the attack as the paper's code ran it
VARIANTS: tuple[str, ...] = ("book", "paper_code")


# ---------------------------------------------------------------- shared pieces of the code's strategies


def _negative_in_index_order(v: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Stage 1 as the code does it: every negative class once, in class order.

    Returns the stage-1 classes and, when there are at least ``n`` of them, the final counts (the
    code's cut of its label list to the first ``n`` entries); otherwise ``None``.
    """
    negative = np.flatnonzero(v < 0)
    if negative.size >= n:
        counts = np.zeros(v.size, dtype=np.int64)
        counts[negative[:n]] = 1
        return negative, counts
    return negative, None


def _stale_index_stage2(v: np.ndarray, m: float, r: int) -> np.ndarray:
    """Stage 2 of the code's Wainakh strategies: ``r`` picks of ``argmin v``, each followed by
    ``v[C-1] -= m`` whatever was picked (the stage-1 loop variable, left at ``C - 1``, is compensated).

    Only ``v[C-1]`` ever changes, so: while ``v[C-1]`` is strictly below every other entry, class
    ``C-1`` is picked; every other pick is the lowest-index minimum of the other classes, which never
    changes. The values of ``v[C-1]`` are accumulated by the same subtractions as the loop.
    """
    counts = np.zeros(v.size, dtype=np.int64)
    if r <= 0:
        return counts
    last = v.size - 1
    if last == 0:
        counts[0] = r
        return counts
    other = int(np.argmin(v[:last]))
    steps = np.full(r, -float(m))
    steps[0] = v[last]
    picks_last = int(np.count_nonzero(np.add.accumulate(steps) < v[other]))
    counts[last] = picks_last
    counts[other] = r - picks_last
    return counts


def _wainakh_code_counts(g: np.ndarray, m: float, offset: np.ndarray | float, n: int) -> np.ndarray:
    """The recovery loop shared by ``'wainakh-simple'`` and ``'wainakh-whitebox'``.

    Stage 1: every class with ``g_c < 0`` (class order, uncapped) is added once and ``g_c -= m``;
    then ``g -= offset``; stage 2 with the stale index (:func:`_stale_index_stage2`).
    """
    v = np.asarray(g, dtype=np.float64).copy()
    negative, done = _negative_in_index_order(v, n)
    if done is not None:
        return done
    counts = np.zeros(v.size, dtype=np.int64)
    counts[negative] = 1
    v[negative] -= m
    v = v - offset
    return counts + _stale_index_stage2(v, m, n - negative.size)


def _llg_code_impact(update: LastLayerUpdate) -> float:
    g = update.weight_grad.sum(axis=1)
    return float((1.0 + 1.0 / update.num_classes) * g[g < 0].sum() / update.n_windows)


# ---------------------------------------------------------------- LLG ('wainakh-simple')


def llg_code(update: LastLayerUpdate) -> np.ndarray:
    """LLG as the seed paper's code ran it (strategy ``'wainakh-simple'``). Not used in a chapter yet.

    Reproduces ``breaching/attacks/base_attack.py``, ``_BaseAttacker._recover_label_information``,
    branch ``"wainakh" in label_strategy`` with ``'wainakh-simple'``, of github.com/mariusbock/leakage_har.
    Signal and impact are the book's :func:`~leakage_core.attacks.weight_based.llg`'s: weight-row sums
    ``g`` and ``m = (1 + 1/C) * sum_{g_c<0} g_c / N``, offset 0. It differs in the solver:

    - stage 2 compensates ``g[C-1]`` (the stage-1 loop index, left at its last value) instead of the
      class it just picked. Unless class ``C-1`` is the current minimum, the picked class never moves
      and **every remaining window goes to one class**; class ``C-1`` itself is picked only while it
      stays strictly below all others;
    - stage 1 takes every negative class in class order, uncapped; with more than ``N`` of them the
      code's final cut keeps the ``N`` lowest class indices.

    Parameters
    ----------
    update : LastLayerUpdate
        The attacked update (FedSGD gradient or the FedAvg sum of step gradients).

    Returns
    -------
    numpy.ndarray
        ``(C,)`` int64 counts, non-negative, summing to ``N``.
    """
    check_update(update)
    return _wainakh_code_counts(update.weight_grad.sum(axis=1), _llg_code_impact(update), 0.0, update.n_windows)


# ---------------------------------------------------------------- LLG* ('wainakh-whitebox')


def _dummy_gradient_sums(model, windows: np.ndarray, labels: np.ndarray, mode: str, seed: int) -> float:
    """Sum of *all* entries of the batch-mean weight gradient of ``windows`` labelled ``labels``, in
    float32 (the code's precision): zero in exact arithmetic (softmax identity), a rounding residue here."""
    import torch

    h = torch.as_tensor(client_features(model, windows, mode=mode, seed=seed), dtype=torch.float32)
    clf = model.classifier
    w = clf.weight.detach().to(torch.float32).cpu()
    b = clf.bias.detach().to(torch.float32).cpu()
    p = torch.softmax(h @ w.T + b, dim=1)
    y = torch.nn.functional.one_hot(torch.as_tensor(labels, dtype=torch.long), w.shape[0]).to(torch.float32)
    dw = (p - y).T @ h / h.shape[0]
    return float(dw.sum())


def prepare_llg_star_code(model=None, aux=None, n_dummy: int = 64, mode: str = "train", seed: int = 0) -> dict:
    """LLG*'s white-box estimates as the seed paper's code computed them. Not used in a chapter yet.

    Reproduces the ``'wainakh-whitebox'`` branch of ``_BaseAttacker._recover_label_information``
    (``breaching/attacks/base_attack.py``, github.com/mariusbock/leakage_har). For every class ``c``
    the code draws Gaussian dummy windows, labels them all ``c``, takes the weight gradient and sums
    it over **all its entries** (not over row ``c``); the sums, scaled by ``(1 + 1/C) / N / C`` and
    added over classes, are its single impact ``m``. For the offset of class ``c`` it labels ``C - 1``
    fresh dummies with the other classes, one each, again sums the whole weight gradient and divides
    by ``C - 1`` (a second division: the loss already averages). Both sums are exactly 0 by the
    softmax identity (``sum_c (p_kc - y_kc) = 0``), so ``m`` and the offsets are float32 rounding
    residues (~1e-9), not impacts. They are computed here the same way, in float32, so the book can
    show them; their exact values depend on the draws and summation order, their size does not.

    Parameters
    ----------
    model : torch.nn.Module
        The server's model (``model.features``, ``model.classifier``).
    aux : ignored
        Kept for the registry's protocol.
    n_dummy : int, default 64
        Dummy windows per class for the impact (the code used ``N``, the batch size; only the
        residue changes with it). :func:`count_llg_star_code` divides by the update's ``N``.
    mode : {"train", "eval"}
        Mode of the dummy forward pass (the code's single-step run used eval mode: its server
        payload carries a buffer list, so breaching switches its copy of the model to eval).
    seed : int
        Seeds the dummy draws and dropout.

    Returns
    -------
    dict
        ``impact_sums`` (C,), ``offset_sums`` (C,) and the classifier's shape.
    """
    w, _ = model_classifier(model)
    c_ = w.shape[0]
    if int(n_dummy) != n_dummy or n_dummy < 1:
        raise ValueError(f"n_dummy must be a positive integer, got {n_dummy!r}.")
    impact_sums = np.zeros(c_)
    offset_sums = np.zeros(c_)
    for c in range(c_):
        x = _dummy_windows(model, "gaussian", int(n_dummy), seed + 2 * c)
        impact_sums[c] = _dummy_gradient_sums(model, x, np.full(len(x), c), mode, seed + 2 * c)
        others = np.delete(np.arange(c_), c)
        x = _dummy_windows(model, "gaussian", c_ - 1, seed + 2 * c + 1)
        offset_sums[c] = _dummy_gradient_sums(model, x, others, mode, seed + 2 * c + 1)
    return {"impact_sums": impact_sums, "offset_sums": offset_sums, "classifier_shape": classifier_shape(model)}


def llg_star_code_estimates(update: LastLayerUpdate, prepared: dict) -> tuple[float, np.ndarray]:
    """The code's LLG* impact ``m`` and per-class offsets ``s`` for this update's ``N``.

    Not used in a chapter yet. ``m = (1 + 1/C) / (N C) * sum_c impact_sums[c]`` and
    ``s_c = offset_sums[c] / (C - 1)`` (see :func:`prepare_llg_star_code`): both ~0.
    """
    c_, n = update.num_classes, update.n_windows
    m = (1.0 + 1.0 / c_) * float(np.sum(prepared["impact_sums"])) / n / c_
    return m, np.asarray(prepared["offset_sums"], dtype=np.float64) / max(c_ - 1, 1)


def count_llg_star_code(update: LastLayerUpdate, prepared: dict) -> np.ndarray:
    """LLG* as the seed paper's code ran it (``'wainakh-whitebox'``). Not used in a chapter yet.

    Reproduces the recovery part of ``_BaseAttacker._recover_label_information``
    (``breaching/attacks/base_attack.py``, github.com/mariusbock/leakage_har) with the estimates of
    :func:`prepare_llg_star_code`: stage 1 adds every class with a negative weight-row sum once
    (class order, uncapped; cut to the ``N`` lowest indices), compensated by ``m ~ 0``; the offsets
    ``s ~ 0`` are subtracted; stage 2 compensates the stale index ``C - 1`` by ``m ~ 0``. In effect:
    one window per negative row sum and **all remaining windows on the single most negative row
    sum**. The correct LLG* (:func:`~leakage_core.attacks.weight_based.llg_star`) measures a per-class
    impact on the class's own row and an offset on the others, and compensates the picked class.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` int64 counts, non-negative, summing to ``N``.
    """
    check_update(update)
    check_classifier_shape(prepared["classifier_shape"], update)
    m, s = llg_star_code_estimates(update, prepared)
    return _wainakh_code_counts(update.weight_grad.sum(axis=1), m, s, update.n_windows)


def llg_star_code(update: LastLayerUpdate, model=None, n_dummy: int = 64, mode: str = "train", seed: int = 0) -> np.ndarray:
    """LLG* as the seed paper's code ran it: :func:`prepare_llg_star_code` then
    :func:`count_llg_star_code`. Not used in a chapter yet.
    """
    check_update(update)
    classifier_arrays(model, update)
    return count_llg_star_code(update, prepare_llg_star_code(model, None, n_dummy, mode, seed))


# ---------------------------------------------------------------- LLBG ('llbgAVG')


def _check_code_confidence(confidence) -> float:
    if confidence is None:
        return 0.0
    if isinstance(confidence, (str, tuple, list, np.ndarray)) or not np.isscalar(confidence):
        raise ValueError(
            "with variant='paper_code', confidence is the code's one constant approx_avg_conf for every class: "
            f"None (its config's 0.0) or a number in [0, 1]; got {confidence!r}."
        )
    conf = float(confidence)
    if not 0.0 <= conf <= 1.0:
        raise ValueError(f"confidence must lie in [0, 1], got {conf}.")
    return conf


def llbg_code(update: LastLayerUpdate, confidence: float | None = None) -> np.ndarray:
    """LLBG as the seed paper's code ran it (strategy ``'llbgAVG'``). Not used in a chapter yet.

    Reproduces the ``'llbgAVG'`` branch of ``_BaseAttacker._recover_label_information``
    (``breaching/attacks/base_attack.py``, github.com/mariusbock/leakage_har). Compared with the
    published LLBG (:func:`~leakage_core.attacks.bias_based.llbg`, ``impact="analytic"``):

    - the per-window impact is LLG's empirical estimate ``m = (1 + 1/C) * sum_{b_c<0} b_c / N``
      (a comment in the code: the analytic impact was "too high" for DeepConvLSTM and TinyHAR),
      scaled by ``1 - conf`` with one constant ``conf`` for every class (``approx_avg_conf`` of the
      attack config, 0.0 in ``breaching/config/attack/_default_optimization_attack.yaml``);
    - no offset is subtracted (the line subtracting ``S / C`` is commented out). With one impact for
      every class a uniform offset cannot change a greedy pick, so this alone changes no count;
    - stage 1 takes every negative class in class order, uncapped (cut to the ``N`` lowest indices).

    With ``confidence=None`` (0.0) the counts equal the book's ``llbg(update, impact="empirical")``
    except when more than ``N`` classes are negative (tested). Stage 2 is the correct greedy one.

    Parameters
    ----------
    update : LastLayerUpdate
        The attacked update.
    confidence : float or None
        The code's ``approx_avg_conf`` (``None``: its config's 0.0); 1.0 makes the impact 0, so every
        window after stage 1 goes to ``argmin b``.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` int64 counts, non-negative, summing to ``N``.
    """
    check_update(update)
    conf = _check_code_confidence(confidence)
    b = update.bias_grad
    c_, n = update.num_classes, update.n_windows
    negative, done = _negative_in_index_order(b, n)
    if done is not None:
        return done
    step = (1.0 + 1.0 / c_) * b[negative].sum() / n * (1.0 - conf)  # <= 0
    v = b.copy()
    v[negative] -= step
    counts = np.zeros(c_, dtype=np.int64)
    counts[negative] = 1
    return counts + _greedy_picks(v, np.full(c_, step), n - negative.size)


# ---------------------------------------------------------------- iLRG ('iLRG')


def ilrg_code_solution(update: LastLayerUpdate) -> np.ndarray:
    """The real-valued counts the code's iLRG solves for (before its rounding). Not used in a chapter yet.

    Least squares (pseudo-inverse) of ``sum_j n_j = N`` and ``sum_j (1/C - delta_ij) n_j = N b_i``:
    iLRG's system with every class's probability vector replaced by the uniform one. ``b`` is the
    update's bias gradient as is: for FedAvg the sum of the ``S`` step gradients, **not divided by**
    ``S`` (the book divides). When ``sum_i b_i = 0`` the solution is ``n_i = N (1/C - b_i)``.
    """
    c_, n = update.num_classes, update.n_windows
    a = np.vstack([np.ones((1, c_)), np.full((c_, c_), 1.0 / c_) - np.eye(c_)])
    rhs = np.concatenate([[float(n)], n * update.bias_grad])
    return np.linalg.pinv(a) @ rhs


def ilrg_code(update: LastLayerUpdate, seed: int = 0) -> np.ndarray:
    """iLRG as the seed paper's code ran it (strategy ``'iLRG'``). Not used in a chapter yet.

    Reproduces the ``'iLRG'`` branch of ``_BaseAttacker._recover_label_information``
    (``breaching/attacks/base_attack.py``, github.com/mariusbock/leakage_har; adapted there from
    BUAA-CST/iLRG). Compared with the published iLRG (:func:`~leakage_core.attacks.ilrg.ilrg`):

    - uniform probabilities for every class instead of the model's (:func:`ilrg_code_solution`);
    - for FedAvg the summed bias gradient is not divided by ``S``: with the untrained model's
      ``b_i ~ S/C - S n_i/N`` the estimate becomes ``S n_i - (S - 1) N / C``;
    - rounding: negatives set to 0, ``numpy.round`` (half to even), and a class whose rounded count
      exceeds ``N`` is set to **0**. The code computes a total repair but does not use it: the labels
      are filled in class order from the rounded counts, cut when ``N`` is reached (the highest
      classes lose windows when the total is too large), and a shortfall is filled by the method's
      final padding with labels drawn **uniformly at random**.

    The random padding is reproduced with a generator seeded by ``seed`` and the update's bias
    gradient, so a call is deterministic and different updates get different draws. (The repository
    holds two versions of this file; in one, the class-order fill stops at a hard-coded 100 instead
    of ``N``. They agree for ``N <= 100``, the single-step batch size; for FedAvg's ``N = 500`` that
    version would keep at most 100 labels and draw the other 400 at random. This function follows
    the ``N`` version.)

    Parameters
    ----------
    update : LastLayerUpdate
        The attacked update.
    seed : int
        Seeds the random padding.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` int64 counts, non-negative, summing to ``N``.
    """
    check_update(update)
    c_, n = update.num_classes, update.n_windows
    x = ilrg_code_solution(update)
    rounded = np.round(np.where(x > 0, x, 0.0)).astype(np.int64)
    rounded[rounded > n] = 0
    before = np.cumsum(rounded) - rounded
    counts = np.minimum(rounded, np.maximum(n - before, 0))
    short = n - int(counts.sum())
    if short > 0:
        key = zlib.crc32(np.ascontiguousarray(update.bias_grad, dtype=np.float64).tobytes())
        rng = np.random.default_rng([int(seed), key])
        counts += np.bincount(rng.integers(0, c_, short), minlength=c_)
    return counts


# ---------------------------------------------------------------- the registry's variant dispatch


def _variant(variant) -> str:
    check_option("variant", variant, VARIANTS)
    return variant


def _require_default(variant: str, **given: tuple[Any, Any]) -> None:
    """Under ``variant="paper_code"``, options the code has no counterpart for must keep their defaults.

    ``given`` maps an option's name to ``(value, default)``; defaults are ``None``, strings or ints.
    """
    for name, (value, default) in given.items():
        if default is None:
            same = value is None
        elif isinstance(default, str):
            same = isinstance(value, str) and value == default
        else:
            same = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value == default
        if not same:
            raise ValueError(
                f"option {name}={value!r} has no counterpart in the paper's code; with variant='{variant}' "
                f"leave it at its default {default!r}."
            )


def prepare_llg_variant(model=None, aux=None, variant: str = "book") -> dict:
    """LLG's registry preparation: ``variant="book"`` (:func:`~leakage_core.attacks.weight_based.llg`)
    or ``"paper_code"`` (:func:`llg_code`). Not used in a chapter yet."""
    return {"variant": _variant(variant), "prepared": no_preparation(model, aux)}


def count_llg_variant(update: LastLayerUpdate, prepared: dict) -> np.ndarray:
    """LLG's counts for the prepared variant. Not used in a chapter yet."""
    if prepared["variant"] == "paper_code":
        return llg_code(update)
    return count_llg(update, prepared["prepared"])


def prepare_llg_star_variant(
    model=None,
    aux=None,
    dummy: str = "gaussian",
    n_dummy: int = 64,
    mode: str = "train",
    seed: int = 0,
    impacts: np.ndarray | None = None,
    stage1: str = "paper",
    variant: str = "book",
) -> dict:
    """LLG*'s registry preparation, book (:func:`~leakage_core.attacks.weight_based.prepare_llg_star`)
    or paper-code (:func:`prepare_llg_star_code`; ``n_dummy``, ``mode`` and ``seed`` apply, the code's
    dummies are Gaussian and ``dummy``, ``impacts``, ``stage1`` must keep their defaults).

    Not used in a chapter yet.
    """
    if _variant(variant) == "paper_code":
        _require_default(variant, dummy=(dummy, "gaussian"), impacts=(impacts, None), stage1=(stage1, "paper"))
        return {"variant": variant, "prepared": prepare_llg_star_code(model, aux, n_dummy, mode, seed)}
    return {"variant": variant, "prepared": prepare_llg_star(model, aux, dummy, n_dummy, mode, seed, impacts, stage1)}


def count_llg_star_variant(update: LastLayerUpdate, prepared: dict) -> np.ndarray:
    """LLG*'s counts for the prepared variant. Not used in a chapter yet."""
    if prepared["variant"] == "paper_code":
        return count_llg_star_code(update, prepared["prepared"])
    return count_with_impacts(update, prepared["prepared"])


def prepare_llbg_variant(
    model=None,
    aux=None,
    impact: str = "analytic",
    confidence: object = None,
    mode: str = "train",
    seed: int = 0,
    variant: str = "book",
) -> dict:
    """LLBG's registry preparation, book (:func:`~leakage_core.attacks.bias_based.prepare_llbg`) or
    paper-code (:func:`llbg_code`: ``confidence`` is the code's constant ``approx_avg_conf``, ``None``
    meaning its 0.0; ``impact`` may be left at its default or set to ``"empirical"``, what the code
    uses either way; ``mode`` and ``seed`` must keep their defaults).

    Not used in a chapter yet.
    """
    if _variant(variant) == "paper_code":
        check_option("impact", impact, ("analytic", "empirical"))
        _require_default(variant, mode=(mode, "train"), seed=(seed, 0))
        return {"variant": variant, "prepared": {"confidence": _check_code_confidence(confidence)}}
    return {"variant": variant, "prepared": prepare_llbg(model, aux, impact, confidence, mode, seed)}


def count_llbg_variant(update: LastLayerUpdate, prepared: dict) -> np.ndarray:
    """LLBG's counts for the prepared variant. Not used in a chapter yet."""
    if prepared["variant"] == "paper_code":
        return llbg_code(update, prepared["prepared"]["confidence"])
    return count_llbg(update, prepared["prepared"])


def prepare_ilrg_variant(model=None, aux=None, probabilities="model", variant: str = "book", seed: int = 0) -> dict:
    """iLRG's registry preparation, book (:func:`~leakage_core.attacks.ilrg.prepare_ilrg`) or
    paper-code (:func:`ilrg_code`: always uniform probabilities, so ``probabilities`` may only be left
    at its default or set to ``"uniform"``; ``seed`` seeds the code's random padding and is unused by
    the book variant).

    Not used in a chapter yet.
    """
    if _variant(variant) == "paper_code":
        if not (isinstance(probabilities, str) and probabilities in ("model", "uniform")):
            raise ValueError("with variant='paper_code' iLRG always uses uniform probabilities: "
                             "leave probabilities at its default or pass 'uniform'.")
        return {"variant": variant, "prepared": {"seed": int(seed)}}
    return {"variant": variant, "prepared": prepare_ilrg(model, aux, probabilities)}


def count_ilrg_variant(update: LastLayerUpdate, prepared: dict) -> np.ndarray:
    """iLRG's counts for the prepared variant. Not used in a chapter yet."""
    if prepared["variant"] == "paper_code":
        return ilrg_code(update, prepared["prepared"]["seed"])
    return count_ilrg(update, prepared["prepared"])
