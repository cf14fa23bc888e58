"""LLG* as the seed paper's code ran it (strategy ``'wainakh-whitebox'``): ``variant="paper_code"`` of ``llg_star``.

Contract: needs the server's model; ``prepare`` computes the code's dummy-gradient sums once
(:class:`DummyGradientSums`, float32 as the code), ``count`` runs the code's solver with the impact and
offsets they give (both rounding residues, ~0). Reference: github.com/mariusbock/leakage_har,
``breaching/attacks/base_attack.py``, ``_BaseAttacker._recover_label_information``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...federated.client import MODES, client_features, model_classifier
from ...federated.update import LastLayerUpdate
from .._common import check_classifier_shape, check_count, check_model_fits, check_option, check_update
from ..base import Attack, Needs
from ..registry import register_variant
from ..weight.llg_star import dummy_windows
from ._solvers import PAPER_CODE, _wainakh_code_counts


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


@dataclass(frozen=True)
class DummyGradientSums:
    """The code's LLG* estimates before scaling: per class, the summed dummy gradient of the impact and
    of the offset probe, and the classifier's ``(C, d)`` (``None``: not checked)."""

    impact_sums: np.ndarray
    offset_sums: np.ndarray
    classifier_shape: tuple[int, int] | None = None

    def estimates(self, update: LastLayerUpdate) -> tuple[float, np.ndarray]:
        """The code's impact ``m = (1 + 1/C) / (N C) * sum_c impact_sums[c]`` and offsets
        ``s_c = offset_sums[c] / (C - 1)`` for this update's ``N``: both ~0."""
        c_, n = update.n_classes, update.n_windows
        m = (1.0 + 1.0 / c_) * float(np.sum(self.impact_sums)) / n / c_
        return m, np.asarray(self.offset_sums, dtype=np.float64) / max(c_ - 1, 1)


def prepare_llg_star_code(
    model=None, aux=None, n_dummy: int = 64, mode: str = "train", seed: int = 0
) -> DummyGradientSums:
    """LLG*'s white-box estimates as the seed paper's code computed them.

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
        Kept for the prepare protocol.
    n_dummy : int, default 64
        Dummy windows per class for the impact (the code used ``N``, the batch size; only the
        residue changes with it). :meth:`DummyGradientSums.estimates` divides by the update's ``N``.
    mode : {"train", "eval"}
        Mode of the dummy forward pass (the code's single-step run used eval mode: its server
        payload carries a buffer list, so breaching switches its copy of the model to eval).
    seed : int
        Seeds the dummy draws and dropout.
    """
    w, _ = model_classifier(model)
    c_ = w.shape[0]
    if int(n_dummy) != n_dummy or n_dummy < 1:
        raise ValueError(f"n_dummy must be a positive integer, got {n_dummy!r}.")
    impact_sums = np.zeros(c_)
    offset_sums = np.zeros(c_)
    for c in range(c_):
        x = dummy_windows(model, "gaussian", int(n_dummy), seed + 2 * c)
        impact_sums[c] = _dummy_gradient_sums(model, x, np.full(len(x), c), mode, seed + 2 * c)
        others = np.delete(np.arange(c_), c)
        x = dummy_windows(model, "gaussian", c_ - 1, seed + 2 * c + 1)
        offset_sums[c] = _dummy_gradient_sums(model, x, others, mode, seed + 2 * c + 1)
    return DummyGradientSums(impact_sums, offset_sums, tuple(w.shape))


def llg_star_code_estimates(update: LastLayerUpdate, prepared: DummyGradientSums) -> tuple[float, np.ndarray]:
    """The code's LLG* impact ``m`` and per-class offsets ``s`` for this update's ``N`` (see
    :meth:`DummyGradientSums.estimates`)."""
    return prepared.estimates(update)


def count_llg_star_code(update: LastLayerUpdate, prepared: DummyGradientSums) -> np.ndarray:
    """LLG* as the seed paper's code ran it (``'wainakh-whitebox'``), from its prepared estimates.

    Reproduces the recovery part of ``_BaseAttacker._recover_label_information``
    (``breaching/attacks/base_attack.py``, github.com/mariusbock/leakage_har) with the estimates of
    :func:`prepare_llg_star_code`: stage 1 adds every class with a negative weight-row sum once
    (class order, uncapped; cut to the ``N`` lowest indices), compensated by ``m ~ 0``; the offsets
    ``s ~ 0`` are subtracted; stage 2 compensates the stale index ``C - 1`` by ``m ~ 0``. In effect:
    one window per negative row sum and **all remaining windows on the single most negative row
    sum**. The correct LLG* (:func:`~leakage_core.attacks.weight.llg_star.llg_star`) measures a per-class
    impact on the class's own row and an offset on the others, and compensates the picked class.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` int64 counts, non-negative, summing to ``N``.
    """
    check_update(update)
    check_classifier_shape(prepared.classifier_shape, update)
    m, s = prepared.estimates(update)
    return _wainakh_code_counts(update.weight_grad.sum(axis=1), m, s, update.n_windows)


@register_variant("llg_star", PAPER_CODE)
@dataclass(eq=False)
class LLGStarPaperCode(Attack):
    """LLG* as the paper's code ran it (see :func:`prepare_llg_star_code` and :func:`count_llg_star_code`).

    ``n_dummy``, ``mode`` and ``seed`` are LLG*'s options; the code's dummies are Gaussian, so through
    the registry ``dummy``, ``impacts`` and ``stage1`` must keep their defaults.
    """

    n_dummy: int = 64
    mode: str = "train"
    seed: int = 0

    needs = Needs.MODEL
    examples = ({"n_dummy": 8, "mode": "eval"},)

    def _check(self) -> None:
        check_count("n_dummy", self.n_dummy)
        check_option("mode", self.mode, MODES)
        check_count("seed", self.seed, low=0)

    def _prepare(self, model, aux) -> DummyGradientSums:
        return prepare_llg_star_code(model, None, self.n_dummy, self.mode, self.seed)

    def _count(self, update: LastLayerUpdate, preparation: DummyGradientSums) -> np.ndarray:
        return count_llg_star_code(update, preparation)


def llg_star_code(
    update: LastLayerUpdate, model=None, n_dummy: int = 64, mode: str = "train", seed: int = 0
) -> np.ndarray:
    """LLG* as the seed paper's code ran it: :func:`prepare_llg_star_code` then :func:`count_llg_star_code`."""
    check_model_fits(model, update)
    return LLGStarPaperCode(n_dummy=n_dummy, mode=mode, seed=seed).prepare(model).count(update)
