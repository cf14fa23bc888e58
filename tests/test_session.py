"""The session-level analysis: the server's running estimate of a client's profile against the truth, per k."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dataclasses import dataclass

from leakage_core.defenses import Defense
from leakage_core.study import (
    cumulative_profiles,
    load_results,
    profile_tv,
    session_epsilons,
    session_summary,
    session_tv,
)

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _rows(subject: int, true: np.ndarray, preds: dict[str, np.ndarray], **setting) -> pd.DataFrame:
    """Grid-like rows of one client: ``true`` and each attack's ``pred`` are (B, C) count arrays."""
    rows = [
        {"subject": subject, "attack": a, "batch": b, "true": true[b], "pred": p[b], **setting}
        for a, p in preds.items()
        for b in range(len(true))
    ]
    return pd.DataFrame(rows)


def test_tv_of_profiles():
    assert profile_tv([1, 0], [0, 1]) == 1.0 and profile_tv([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert np.allclose(profile_tv([[0.2, 0.8], [1, 0]], [0.5, 0.5]), [0.3, 0.5])
    assert np.allclose(cumulative_profiles([[2, 0], [0, 2]]), [[1, 0], [0.5, 0.5]])
    with pytest.raises(ValueError, match="at least one window"):
        cumulative_profiles([[0, 0], [1, 1]])


def test_an_exact_attack_reaches_the_sessions_profile_at_the_last_update():
    rng = np.random.default_rng(0)
    true = rng.multinomial(50, [0.6, 0.3, 0.1], size=6)
    tv = session_tv(_rows(1, true, {"exact": true}, sampler="sequential", model="tinyhar"))
    assert list(tv.k) == [1, 2, 3, 4, 5, 6] and (tv.n_updates == 6).all()
    assert tv.tv.iloc[-1] == pytest.approx(0.0) and tv.tv.iloc[0] > 0  # one batch is not the whole session
    profile = true.sum(axis=0) / true.sum()
    assert tv.tv.iloc[1] == pytest.approx(0.5 * np.abs(true[:2].sum(axis=0) / 100 - profile).sum())
    first_k = session_tv(_rows(1, true, {"exact": true}), truth="first_k")
    assert np.allclose(first_k.tv, 0.0)  # against the batches seen so far, an exact attack is exact at every k


def test_a_constant_guess_has_the_tv_of_its_profile():
    true = np.array([[3, 1, 0, 0], [0, 0, 2, 2], [1, 1, 1, 1]])
    guess = np.tile([1, 1, 1, 1], (3, 1))  # the uniform profile at every batch
    tv = session_tv(_rows(7, true, {"uniform": guess}))
    profile = true.sum(axis=0) / true.sum()  # (4, 2, 3, 3) / 12
    assert np.allclose(tv.tv, 0.5 * np.abs(0.25 - profile).sum())


def test_columns_rows_and_the_summary_with_the_blind_reference():
    true = np.array([[4, 0], [0, 4], [2, 2]])
    attack = np.array([[4, 0], [1, 3], [2, 2]])
    parts = []
    for subject in (1, 2):
        for sampler in ("shuffle", "balanced"):
            preds = {"close": attack, "blind_uniform": np.full((3, 2), 2)}
            parts.append(_rows(subject, true, preds, dataset="wetlab", sampler=sampler, model="tinyhar"))
    tv = session_tv(pd.concat(parts, ignore_index=True))
    assert list(tv.columns) == ["subject", "dataset", "model", "sampler", "attack", "k", "n_updates", "tv"]
    assert len(tv) == 2 * 2 * 2 * 3
    summary = session_summary(tv)
    assert summary.index.names == ["sampler", "attack", "k"]
    row = summary.loc[("shuffle", "close", 2)]
    close_tv = 0.5 * (abs(5 / 8 - 0.5) + abs(3 / 8 - 0.5))  # after two updates; the session's profile is (1/2, 1/2)
    blind_tv = 0.0  # the uniform guess is this session's profile exactly
    assert row[("tv", "mean")] == pytest.approx(close_tv) and row[("clients", "n")] == 2
    assert row[("blind_tv", "mean")] == pytest.approx(blind_tv)
    assert row[("adv_tv", "mean")] == pytest.approx(blind_tv - close_tv) and row[("tv", "std")] == 0.0
    assert "blind_tv" not in session_summary(tv[tv.attack == "close"]).columns.get_level_values(0)


@dataclass(frozen=True)
class Linear(Defense):
    """A test-only defence whose guarantee grows by ``per`` with every update (basic composition)."""

    name = "test_linear"
    stage = "update"
    per: float = 0.5

    def epsilon(self, delta, updates=1):
        return self.per * updates


@dataclass(frozen=True)
class Nothing(Defense):
    """A test-only defence without a guarantee."""

    name = "test_nothing"
    stage = "update"


def test_session_epsilons_compose_the_clients_updates():
    true = np.array([[2, 2], [1, 3], [4, 0]])
    parts = [_rows(1, true, {"a": true}, defense=label) for label in ("none", Linear(0.5).label, Nothing().label)]
    parts.append(_rows(2, true[:2], {"a": true[:2]}, defense=Linear(0.5).label))
    tv = session_tv(pd.concat(parts, ignore_index=True))
    eps = session_epsilons(tv, [Linear(0.5), Nothing()], delta=1e-6)
    assert list(eps.subject) == [1, 1, 2] and list(eps.n_updates) == [3, 3, 2] and (eps.delta == 1e-6).all()
    assert np.allclose(eps.epsilon_update, [0.5, np.nan, 0.5], equal_nan=True)
    assert np.allclose(eps.epsilon_session, [1.5, np.nan, 1.0], equal_nan=True)  # NaN: no guarantee
    with pytest.raises(ValueError, match="no defence given"):
        session_epsilons(tv, [Linear(0.5)])


def test_clear_errors():
    true = np.array([[1, 1], [2, 0]])
    rows = _rows(1, true, {"a": true})
    with pytest.raises(ValueError, match=r"every batch 0, \.\.\., B-1 once"):
        session_tv(rows[rows.batch != 0])
    with pytest.raises(ValueError, match=r"every batch 0, \.\.\., B-1 once"):
        session_tv(pd.concat([rows, rows]))
    with pytest.raises(ValueError, match="truth"):
        session_tv(rows, truth="all")
    with pytest.raises(ValueError, match="non-empty"):
        session_tv(rows.iloc[:0])
    with pytest.raises(ValueError, match="columns"):
        session_tv(rows.drop(columns="pred"))
    with pytest.raises(ValueError, match="by"):
        session_summary(session_tv(rows), by=["nope"])


def test_on_a_committed_grid():
    table = load_results("short_clients", "wetlab", root=RESULTS)
    table = table[table.sampler == "sequential"]
    tv = session_tv(table)
    groups = table.groupby(["subject", "model", "state", "attack"]).size()
    assert (
        len(tv) == groups.sum()
        and (tv.groupby(["subject", "model", "attack"]).k.max() == groups.droplevel("state")).all()
    )
    assert tv.tv.between(0, 1).all()
    last = tv[tv.k == tv.n_updates]
    prior = last[last.attack == "blind_prior"].tv  # the population's shares are not any one client's profile
    assert (prior > 0).all()


def test_session_epsilons_are_floats_nan_without_a_guarantee():
    true = np.array([[2, 2], [1, 3]])
    tv = session_tv(_rows(1, true, {"a": true}, defense=Nothing().label))
    eps = session_epsilons(tv, [Nothing()])
    assert eps["epsilon_update"].dtype == np.float64 and eps["epsilon_session"].dtype == np.float64
    assert eps["epsilon_update"].isna().all() and eps["epsilon_session"].isna().all()
    assert (eps.delta == 1e-5).all()  # the default, DEFAULT_DELTA
