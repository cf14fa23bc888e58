"""Over a session: how well the server knows a client's activity profile after k of its updates (from grid rows).

A client sends one update per batch, ``b = 0, ..., B-1`` in the order its sampler drew them. An honest-but-curious
server that sums the counts an attack reconstructed from the first ``k`` updates and normalises them holds an
estimate of the client's activity profile (its label shares),

    p_hat_k = sum_{b<k} pred_b / sum_{b<k} sum_c pred_bc,

and the total variation distance ``TV_k = 0.5 sum_c |p_hat_k,c - p_c|`` (0: the profile exactly; 1: disjoint)
says how far it is from the client's true profile ``p``. Noise a defence adds independently to every update
averages out in the sum, so the profile may leak even where each single update looks protected.

The truth, by default (``truth="session"``), is the profile of the client's whole session: the sum of the true
counts of all its B batches over their total, i.e. the label shares of every window the batches cover (all the
client's windows but the remainder a sampler leaves out of its last batch). It is what the client would call its
activity profile, and it is the same for every k, so the curve shows how fast the server approaches it.
``truth="first_k"`` compares with the profile of the first k batches instead (the windows the server has seen an
update of so far); the two coincide at ``k = B``.

Everything is computed from the rows of :func:`~leakage_core.study.run_grid` (or a precomputed grid,
:func:`~leakage_core.study.load_results`): no model is run. The blind references (``blind_prior``, N times the
population's shares; ``blind_uniform``, N/C per class) are attacks among the rows like any other (add them with
:func:`~leakage_core.study.add_blind_references` when the grid ran without them); :func:`session_summary` gives
every attack's TV beside the better reference's, and :func:`session_epsilons` what each defence's accountant gives for
one update and for the whole session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd

from ..attacks import is_blind
from ..defenses.accounting import DEFAULT_DELTA
from ..validation import AllOf, InstanceOf, NonEmpty, OneOf, SubsetOf, check_params
from .grid import SETTING_COLUMNS

if TYPE_CHECKING:  # pragma: no cover
    from ..defenses.base import Defense

#: what the server's estimate is compared with: the whole session's profile, or that of the first k batches
TRUTHS: tuple[str, ...] = ("session", "first_k")
#: the columns :func:`session_tv` needs besides the setting columns
_NEEDED: tuple[str, ...] = ("subject", "attack", "batch", "true", "pred")


def profile_tv(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Total variation distance ``0.5 sum_c |estimate_c - truth_c|`` between profiles (rows of shares summing to 1).

    ``estimate`` and ``truth`` broadcast against each other over their last axis (classes).
    """
    return 0.5 * np.abs(np.asarray(estimate, dtype=np.float64) - np.asarray(truth, dtype=np.float64)).sum(axis=-1)


def cumulative_profiles(counts: np.ndarray) -> np.ndarray:
    """``(B, C)`` profiles after each of ``B`` batches: row ``k-1`` is the sum of the first ``k`` rows of
    ``counts`` (``(B, C)``, non-negative, every row summing to more than 0) over its total."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] == 0 or np.any(c < 0) or np.any(c.sum(axis=1) <= 0):
        raise ValueError(
            f"counts must be a non-empty (batches, C) array of non-negative counts, each batch with at least one "
            f"window; got shape {c.shape}."
        )
    total = np.cumsum(c, axis=0)
    return total / total.sum(axis=1, keepdims=True)


def _setting_columns(results: pd.DataFrame) -> list[str]:
    return [c for c in ("dataset", *SETTING_COLUMNS) if c in results.columns]


def session_tv(results: pd.DataFrame, truth: str = "session") -> pd.DataFrame:
    """The TV distance between the server's running estimate of each client's profile and the truth, per k.

    Introduced in Chapter 17.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows of :func:`~leakage_core.study.run_grid` (columns ``subject, attack, batch, true, pred`` and the setting
        columns); every (subject, setting, attack) must hold batches ``0, ..., B-1``, each once.
    truth : {"session", "first_k"}
        The whole session's profile (default) or that of the first k batches (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per (subject, setting, attack, k) with ``k = 1, ..., B``: columns ``subject``, the setting columns
        present in ``results`` (``dataset`` too), ``attack``, ``k``, ``n_updates`` (``B``) and ``tv``.
    """
    check_params({"truth": truth}, {"truth": OneOf(TRUTHS)})
    _check(results)
    keys = ["subject", *_setting_columns(results), "attack"]
    frames = []
    for key, grp in results.groupby(keys, sort=False, dropna=False):
        grp = grp.sort_values("batch")
        batches = grp["batch"].to_numpy()
        if not np.array_equal(batches, np.arange(batches.size)):
            shown = batches.tolist()[:8] + (["..."] if batches.size > 8 else [])
            raise ValueError(
                f"the rows of subject {key[0]}, attack {key[-1]!r} hold batches {shown}; a session needs every batch "
                "0, ..., B-1 once (pass the grid's rows of one setting each, without max_batches)."
            )
        true, pred = np.stack(grp["true"]), np.stack(grp["pred"])
        if truth == "session":
            reference = cumulative_profiles(true)[-1]
        else:
            reference = cumulative_profiles(true)
        tv = profile_tv(cumulative_profiles(pred), reference)
        frame = pd.DataFrame({"k": np.arange(1, batches.size + 1), "n_updates": batches.size, "tv": tv})
        frames.append(frame.assign(**dict(zip(keys, key))))
    return pd.concat(frames, ignore_index=True)[[*keys, "k", "n_updates", "tv"]]


def session_summary(tv: pd.DataFrame, by: Iterable[str] | None = None) -> pd.DataFrame:
    """Mean, std (``ddof=1``), min and max over clients of :func:`session_tv`'s TV, per setting, attack and k.

    Introduced in Chapter 17.

    When the rows hold blind references (:func:`leakage_core.attacks.is_blind`), every client's ``blind_tv`` is the
    better (smaller) of their TVs at the same setting and k, and ``adv_tv = blind_tv - tv`` how much closer the
    attack gets to the profile than the blind guess (positive: it leaks beyond it); both are summarised the same way.

    ``by``: the grouping columns besides ``k`` (default: ``attack`` and every setting column that takes more than one
    value). Returns a table indexed by ``by`` and ``k`` with columns ``(metric, stat)`` and ``("clients", "n")``.
    """
    check_params(
        {"tv": tv},
        {"tv": AllOf((InstanceOf(pd.DataFrame, "session_tv's table"), NonEmpty("a non-empty table from session_tv")))},
    )
    check_params({"columns": ["subject", "attack", "k", "tv"]}, {"columns": SubsetOf(tuple(tv.columns), "columns")})
    settings = _setting_columns(tv)
    if by is None:
        by = [c for c in settings if tv[c].nunique(dropna=False) > 1] + ["attack"]
    by = list(by)
    check_params({"by": by}, {"by": SubsetOf(tuple(tv.columns), "columns of the table")})
    per = tv.copy()
    metrics = ["tv"]
    blind = per["attack"].map(is_blind)
    if blind.any():
        keys = ["subject", *settings, "k"]
        best = per[blind].groupby(keys, dropna=False)["tv"].min().rename("blind_tv")
        per = per.join(best, on=keys)
        per["adv_tv"] = per["blind_tv"] - per["tv"]
        metrics += ["blind_tv", "adv_tv"]
    grouped = per.groupby([*by, "k"], sort=False, dropna=False)
    table = grouped[metrics].agg(["mean", "std", "min", "max"])
    table[("clients", "n")] = grouped["subject"].nunique()
    return table


def session_epsilons(tv: pd.DataFrame, defenses: Iterable["Defense"], delta: float = DEFAULT_DELTA) -> pd.DataFrame:
    """The (epsilon, delta) guarantee of one update and of each client's whole session under each defence.

    Introduced in Chapter 17.

    ``tv`` is :func:`session_tv`'s table (its ``defense`` column holds the defences' labels, ``n_updates`` the
    number of a client's updates ``B``); ``defenses`` the defence objects the labels name (e.g. the settings'
    ``defense`` of the grid). One row per client and setting under a defence: the setting columns, ``n_updates``,
    ``epsilon_update = defense.epsilon(delta, 1)`` and ``epsilon_session = defense.epsilon(delta, B)`` (the
    defence's accountant composing the client's B updates; floats, NaN where the defence gives no guarantee).
    ``delta`` defaults to :data:`~leakage_core.defenses.accounting.DEFAULT_DELTA`.

    Both use each defence's default adjacency, ``"replace"``: the guarantee that protects the *contents* of the unit
    (the paper's LDP: a batch's windows and labels; DP-SGD: one window and its label; randomized response: one
    label), not only its presence (:meth:`~leakage_core.defenses.base.Defense.epsilon`). ``epsilon_session`` is for
    a unit in all B updates: for the paper's LDP the contents of all the client's batches, for DP-SGD one window
    changed in every update; for randomized response it equals ``epsilon_update``.
    """
    from ..defenses.base import defense_label

    check_params({"columns": ["subject", "defense", "n_updates"]}, {"columns": SubsetOf(tuple(tv.columns), "columns")})
    by_label = {defense_label(d): d for d in defenses}
    keys = ["subject", *_setting_columns(tv)]
    cells = tv[tv["defense"] != "none"].drop_duplicates(keys)[[*keys, "n_updates"]]
    unknown = sorted(set(cells["defense"]) - set(by_label))
    if unknown:
        raise ValueError(f"no defence given for the labels {unknown}; pass the defence objects the results used.")
    out = cells.reset_index(drop=True)
    out["delta"] = delta
    out["epsilon_update"] = np.array([_float(by_label[label].epsilon(delta, 1)) for label in out["defense"]])
    out["epsilon_session"] = np.array(
        [_float(by_label[label].epsilon(delta, int(b))) for label, b in zip(out["defense"], out["n_updates"])]
    )
    return out


def _float(value: float | None) -> float:
    return np.nan if value is None else float(value)


def _check(results: pd.DataFrame) -> None:
    check_params(
        {"results": results},
        {
            "results": AllOf(
                (
                    InstanceOf(pd.DataFrame, "a pandas DataFrame of attack rows (from run_grid or load_results)"),
                    NonEmpty("a non-empty table of attack rows"),
                )
            )
        },
    )
    check_params({"columns": list(_NEEDED)}, {"columns": SubsetOf(tuple(results.columns), "columns of the results")})
