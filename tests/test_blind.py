"""Blind references (uniform, prior), the advantage over them, and the count-F1 metric."""

import numpy as np
import pandas as pd
import pytest

from leakage_core.attacks import ATTACKS, BLIND, blind_prior, blind_uniform, label_shares, counts_only_update, is_blind
from leakage_core.data import make_synthetic
from leakage_core.study import add_advantage
from leakage_core.study import Setting, add_blind_references, run_grid, score
from leakage_core.metrics import advantage, class_acc, count_f1, count_f1_per_class


@pytest.mark.parametrize("n,c", [(100, 9), (100, 19), (5, 9), (500, 19), (7, 7)])
def test_uniform_is_round_n_over_c_summing_to_n(n, c):
    counts = blind_uniform(counts_only_update(n, c))
    assert counts.sum() == n and counts.max() - counts.min() <= 1
    assert set(counts) <= {n // c, n // c + 1}


def test_blind_references_read_no_gradient():
    rng = np.random.default_rng(0)
    a = counts_only_update(100, 9)
    from leakage_core.federated import LastLayerUpdate

    b = LastLayerUpdate(rng.normal(size=(9, 4)), rng.normal(size=9), 100)
    shares = np.full(9, 1 / 9)
    for name in BLIND:
        opts = {"shares": shares} if name == "blind_prior" else {}
        np.testing.assert_array_equal(ATTACKS[name](a, **opts), ATTACKS[name](b, **opts))
        assert not ATTACKS[name].reads_gradient and ATTACKS[name].family == "baseline"
    assert is_blind("blind_prior") and is_blind("blind_uniform:x") and not is_blind("llbg")


def test_prior_is_n_times_the_other_subjects_shares():
    labels = np.array([0] * 50 + [3] * 30 + [8] * 20)
    np.testing.assert_allclose(label_shares(labels, 9)[[0, 3, 8]], [0.5, 0.3, 0.2])
    update = counts_only_update(10, 9)
    expected = np.zeros(9, dtype=np.int64)
    expected[[0, 3, 8]] = [5, 3, 2]
    np.testing.assert_array_equal(blind_prior(update, label_shares(labels, 9)), expected)
    via_aux = ATTACKS["blind_prior"](update, aux=(np.zeros((100, 2, 1)), labels))
    np.testing.assert_array_equal(via_aux, expected)


def test_prior_errors_name_the_fix():
    with pytest.raises(ValueError, match="shares=|aux="):
        ATTACKS["blind_prior"](counts_only_update(10, 9))
    with pytest.raises(ValueError, match="summing to 1"):
        blind_prior(counts_only_update(10, 9), np.ones(9))


def test_advantage_blind_guess_is_zero_truth_is_one():
    assert advantage(0.7, 0.7) == 0.0 and advantage(1.0, 0.7) == 1.0
    assert advantage(0.4, 0.7) < 0 and np.isnan(advantage(1.0, 1.0))
    # on score tables: the better blind reference scores 0, an exact "attack" 1
    true = np.array([[60, 40, 0, 0], [10, 10, 80, 0]])
    rows = []
    for name, preds in {
        "blind_uniform": [blind_uniform(counts_only_update(100, 4))] * 2,
        "blind_prior": [np.array([25, 25, 25, 25])] * 2,
        "exact": list(true),
    }.items():
        rows += [{"attack": name, "subject": 1, "true": t, "pred": p} for t, p in zip(true, preds)]
    table = score(pd.DataFrame(rows), by=["attack"])
    for m in ("ln_acc", "class_acc", "count_f1"):
        assert table.loc["exact", (f"adv_{m}", "mean")] == pytest.approx(1.0)
        assert table.loc["blind_uniform", (f"adv_{m}", "mean")] == pytest.approx(0.0)


def test_count_f1_charges_spreading_that_class_acc_does_not():
    true = np.array([[50, 50, 0, 0, 0, 0, 0, 0, 0, 0]])
    spread = np.array([[10] * 10])
    assert class_acc(true, spread) == pytest.approx(0.2)  # recall only: 10/50 per present class
    per = count_f1_per_class(true, spread)
    assert per[0] == pytest.approx(2 * 10 / 60) and per[5] == 0.0
    assert count_f1(true, spread) == pytest.approx(np.mean([2 * 10 / 60] * 2 + [0.0] * 8))
    assert count_f1(true, true) == 1.0
    # a client with a rare class: the uniform guess has ClassAcc 1 there but count-F1 charges the spread
    true = np.array([[97, 1, 1, 1]])
    uni = blind_uniform(counts_only_update(100, 4))[None]
    assert class_acc(true, uni) > 0.75 and count_f1(true, uni) < 0.5


def test_add_advantage_uses_the_better_reference_per_client_and_setting():
    per = pd.DataFrame(
        {
            "sampler": ["a"] * 3 + ["b"] * 3,
            "subject": [1] * 6,
            "attack": ["blind_uniform", "blind_prior", "x"] * 2,
            "ln_acc": [0.5, 0.6, 0.8, 0.9, 0.2, 0.95],
            "le_acc": [1.0] * 6,
            "class_acc": [0.5] * 6,
            "count_f1": [0.5] * 6,
            "le_recall": [1.0] * 6,
        }
    )
    out = add_advantage(per, ["sampler", "attack"])
    x = out[out.attack == "x"].set_index("sampler")
    assert x.loc["a", "blind_ln_acc"] == 0.6 and x.loc["a", "adv_ln_acc"] == pytest.approx(0.5)
    assert x.loc["b", "blind_ln_acc"] == 0.9 and x.loc["b", "adv_ln_acc"] == pytest.approx(0.5)
    assert x["adv_le_acc"].isna().all()  # blind LeAcc 1: no room to leak beyond it


def test_grid_computes_blind_rows_equal_to_add_blind_references():
    data = make_synthetic("wetlab", n_subjects=3, minutes=3, seed=0)
    settings = [Setting("tinyhar", sampler=s, batch_size=50) for s in ("shuffle", "sequential")]
    full = run_grid(data, settings, attacks=["ebi", *BLIND], progress=False)
    assert set(full.attack) == {"ebi", *BLIND}
    added = add_blind_references(full[full.attack == "ebi"].reset_index(drop=True), data)
    key = ["subject", "sampler", "attack", "batch"]
    a = full.sort_values(key).reset_index(drop=True)
    b = added.sort_values(key).reset_index(drop=True)
    assert len(a) == len(b)
    for col in ("true", "pred"):
        assert all(np.array_equal(x, y) for x, y in zip(a[col], b[col]))
    # the prior comes from the other subjects' labels, not the attacked client's
    s = 1
    others = np.concatenate([data.subjects[k].labels for k in data.subject_ids if k != s])
    row = a[(a.attack == "blind_prior") & (a.subject == s)].iloc[0]
    np.testing.assert_array_equal(
        row.pred, blind_prior(counts_only_update(50, data.n_classes), label_shares(others, data.n_classes))
    )
    table = score(full)
    assert ("adv_class_acc", "mean") in table.columns and ("count_f1", "mean") in table.columns


def test_blind_guesses_match_the_single_update_functions():
    from leakage_core.attacks import blind_guesses, blind_prior, blind_uniform, counts_only_update

    truth = np.array([[3, 0, 7], [0, 0, 10], [1, 1, 1]])
    shares = np.array([0.5, 0.25, 0.25])
    out = blind_guesses(truth, shares)
    for i, t in enumerate(truth):
        u = counts_only_update(int(t.sum()), 3)
        np.testing.assert_array_equal(out["blind_uniform"][i], blind_uniform(u))
        np.testing.assert_array_equal(out["blind_prior"][i], blind_prior(u, shares))
    assert out["blind_uniform"].sum(1).tolist() == [10, 10, 3]
    with pytest.raises(ValueError, match="non-empty"):
        blind_guesses(np.zeros((0, 3)), shares)


def test_add_blind_references_scores_its_own_rows():
    from leakage_core.metrics import ln_acc

    truth = [np.array([5, 0, 5]), np.array([0, 10, 0])]
    results = pd.DataFrame(
        {
            "subject": [1, 1],
            "attack": ["llbg", "llbg"],
            "batch": [0, 1],
            "true": truth,
            "pred": truth,
            "ln_acc": [1.0, 1.0],
        }
    )
    data = make_synthetic("wetlab", n_subjects=2, minutes=1, seed=0)
    rows = add_blind_references(
        results.assign(true=[np.pad(t, (0, 6)) for t in truth], pred=[np.pad(t, (0, 6)) for t in truth]), data
    )
    blind = rows[rows["attack"] == "blind_uniform"]
    assert len(blind) == 2
    assert [round(v, 6) for v in blind["ln_acc"]] == [
        round(ln_acc(t, p), 6) for t, p in zip(blind["true"], blind["pred"])
    ]
    assert (blind["ln_acc"] < 1).all()
