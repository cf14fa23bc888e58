"""The defences chapter's table and figure: defense_table (leakage_core.study) and plot_privacy_utility."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from leakage_core.study import NO_BIAS, defense_names, defense_table, score

C = 3
UNIFORM = np.array([4, 3, 3])
PRIOR = np.array([5, 3, 2])
SETTING = {"dataset": "wetlab", "batch_size": 10, "n_steps": 1, "ldp": "none", "epochs": 1, "train_lr": 1e-3}


def _true(subject: int, b: int) -> np.ndarray:
    rng = np.random.default_rng(100 * subject + b)
    return rng.multinomial(10, [0.6, 0.3, 0.1])


def _cell(defense: str, model: str, state: str, sampler: str, bias: bool = True, damage: int = 0) -> pd.DataFrame:
    """Rows of one setting for subjects 1 and 2, four batches each: ``llbg`` exact but for ``damage`` windows moved
    from the first to the last class, ``llg`` always the reversed truth, and the two blind references."""
    rows = []
    for subject in (1, 2):
        for b in range(4):
            t = _true(subject, b)
            moved = min(damage + subject - 1, int(t[0])) if damage else 0
            preds = {
                "llbg": t + np.array([-moved, 0, moved]),
                "llg": t[::-1].copy(),
                "blind_uniform": UNIFORM,
                "blind_prior": PRIOR,
            }
            for attack, pred in preds.items():
                rows.append(
                    {
                        "subject": subject,
                        "attack": attack,
                        "batch": b,
                        "true": t,
                        "pred": np.asarray(pred),
                        "model": model,
                        "state": state,
                        "sampler": sampler,
                        "bias": bias,
                        "defense": defense,
                        **SETTING,
                    }
                )
    return pd.DataFrame(rows)


TOPK = "top-k 10%"
DPSGD = "DP-SGD z=1, C=1"


def _results() -> pd.DataFrame:
    cells = []
    for model in ("deepconvlstm", "tinyhar"):
        for sampler in ("shuffle", "balanced"):
            for state in ("untrained", "trained"):
                cells.append(_cell("none", model, state, sampler))
                cells.append(_cell("none", model, state, sampler, bias=False, damage=1))
                cells.append(_cell(TOPK, model, state, sampler, damage=2))
            cells.append(_cell(DPSGD, model, "trained", sampler, damage=4))
    return pd.concat(cells, ignore_index=True)


def _fold(model, held_out, f1, seconds, **extra):
    return {"dataset": "wetlab", "model": model, "held_out": held_out, "macro_f1": f1, "wall_time_s": seconds, **extra}


def _record() -> dict:
    folds = []
    for model, shift in (("deepconvlstm", 0.0), ("tinyhar", 0.1)):
        folds += [_fold(model, s, 0.8 + shift + 0.01 * s, 10.0 * s) for s in (1, 2)]  # undefended, attacked
        folds += [_fold(model, s, 0.7 + shift + 0.01 * s, 11.0, bias=False) for s in (1, 2)]
        folds += [
            _fold(model, s, 0.5 + shift + 0.02 * s, 20.0, defense=TOPK, attacked=False, epsilon=None, delta=None)
            for s in (1, 2)
        ]
        folds += [_fold(model, s, 0.4 + shift, 300.0, defense=DPSGD, epsilon=4.0 + s, delta=1e-5) for s in (1, 2)]
        folds.append(_fold(model, 3, 0.0, 1.0))  # a fold whose client is not attacked: left out
    settings = [{"model": m, "state": "trained", "sampler": "shuffle", "bias": True} for m in ("deepconvlstm",)]
    settings += [{"model": "deepconvlstm", "state": "trained", "sampler": "shuffle", "bias": True, "defense": DPSGD}]
    settings += [{"model": "deepconvlstm", "state": "trained", "sampler": "shuffle", "bias": False}]
    settings += [{"model": "deepconvlstm", "state": "trained", "sampler": "shuffle", "bias": True, "defense": TOPK}]
    defenses = [
        {
            "defense": DPSGD,
            "stage": "training",
            "key": {"defense": "dp_sgd", "noise_multiplier": 1.0},
            "epsilon_per_update": 3.5,
            "delta": 1e-5,
        },
        {
            "defense": TOPK,
            "stage": "update",
            "key": {"defense": "topk", "fraction": 0.1},
            "epsilon_per_update": None,
            "delta": 1e-5,
        },
    ]
    return {"trained_folds": folds, "settings": settings, "defenses": defenses}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return defense_table(_results(), _record())


def test_defense_names_name_the_classifier_without_bias():
    rows = pd.DataFrame({"defense": ["none", "none", TOPK], "bias": [True, False, True]})
    assert defense_names(rows).tolist() == ["none", NO_BIAS, TOPK]
    assert defense_names(pd.DataFrame({"bias": [False]})).tolist() == [NO_BIAS]


def test_index_order_and_columns(table):
    assert table.index.names == ["defense", "model", "state", "sampler"]
    # defences in the record's settings order; other keys in order of first appearance
    assert list(dict.fromkeys(table.index.get_level_values("defense"))) == ["none", DPSGD, NO_BIAS, TOPK]
    assert list(table.xs("none", level="defense").index[:4]) == [
        ("deepconvlstm", "untrained", "shuffle"),
        ("deepconvlstm", "untrained", "balanced"),
        ("deepconvlstm", "trained", "shuffle"),
        ("deepconvlstm", "trained", "balanced"),
    ]
    assert len(table) == 3 * 8 + 4
    for m in ("ln_acc", "class_acc"):
        assert {f"attack_{m}", f"adv_{m}", f"adv_{m}_min", f"adv_{m}_max"} <= set(table.columns)
    assert table["family"].to_dict()[(DPSGD, "tinyhar", "trained", "shuffle")] == "dp_sgd"
    assert table.loc[(NO_BIAS, "tinyhar", "trained", "shuffle"), ["family", "stage"]].tolist() == ["no_bias", "model"]
    assert table.loc[("none", "tinyhar", "trained", "shuffle"), ["family", "stage"]].tolist() == ["none", ""]
    assert (table["clients"] == 2).all()


def test_strongest_attack_and_its_advantage_are_score_s(table):
    results = _results()
    row = table.loc[("none", "deepconvlstm", "untrained", "shuffle")]
    assert row["attack_ln_acc"] == "llbg" and row["adv_ln_acc"] == pytest.approx(1.0)
    assert row["adv_ln_acc_min"] == pytest.approx(1.0) and row["adv_ln_acc_max"] == pytest.approx(1.0)
    # a damaged llbg: the numbers are score()'s per-client advantages, mean and min-max over the two clients
    cell = results[(results.defense == TOPK) & (results.model == "tinyhar") & (results.state == "trained")]
    cell = cell[cell.sampler == "balanced"]
    per = score(cell, by=["attack"], per_client=True).set_index(["attack", "subject"])
    best = per["adv_class_acc"].groupby("attack").mean().drop(["blind_uniform", "blind_prior"]).idxmax()
    got = table.loc[(TOPK, "tinyhar", "trained", "balanced")]
    assert got["attack_class_acc"] == best
    assert got["adv_class_acc"] == pytest.approx(per.loc[best, "adv_class_acc"].mean())
    assert got["adv_class_acc_min"] == pytest.approx(per.loc[best, "adv_class_acc"].min())
    assert got["adv_class_acc_max"] == pytest.approx(per.loc[best, "adv_class_acc"].max())
    assert got["adv_ln_acc_min"] < got["adv_ln_acc_max"]  # the clients differ (damage grows with the subject)


def test_candidate_attacks_can_be_restricted():
    t = defense_table(_results(), _record(), metrics=["ln_acc"], attacks=["llg"])
    assert (t["attack_ln_acc"] == "llg").all() and "attack_class_acc" not in t.columns


def test_cost_columns(table):
    # undefended: the attacked folds; no bias: the bias-free folds; top-k (update stage): the every-step folds
    assert table.loc[("none", "tinyhar", "trained", "shuffle"), "macro_f1"] == pytest.approx(0.915)
    assert table.loc[("none", "tinyhar", "trained", "shuffle"), "macro_f1_min"] == pytest.approx(0.91)
    assert table.loc[("none", "deepconvlstm", "trained", "balanced"), "train_s"] == pytest.approx(15.0)
    assert table.loc[(NO_BIAS, "deepconvlstm", "trained", "shuffle"), "macro_f1"] == pytest.approx(0.715)
    top = table.loc[(TOPK, "deepconvlstm", "trained", "shuffle")]
    assert top["macro_f1"] == pytest.approx(0.53) and top["macro_f1_max"] == pytest.approx(0.54)
    assert top["train_s"] == 20.0 and top["folds"] == 2
    assert np.isnan(top["epsilon_update"]) and np.isnan(top["epsilon_training"])
    dp = table.loc[(DPSGD, "tinyhar", "trained", "balanced")]
    assert dp["epsilon_update"] == 3.5 and dp["epsilon_training"] == 6.0 and dp["macro_f1"] == pytest.approx(0.5)
    untrained = table.xs("untrained", level="state")
    assert untrained[["macro_f1", "macro_f1_min", "macro_f1_max", "train_s", "epsilon_training"]].isna().all().all()
    assert np.isnan(table.loc[("none", "tinyhar", "trained", "shuffle"), "epsilon_update"])


def test_a_provenance_record_and_pooled_models():
    prov = {"grids": {"defenses-wetlab.csv.gz": _record()}}
    t = defense_table(_results(), prov, by=("state", "sampler"))
    assert t.index.names == ["defense", "state", "sampler"]
    # pooled over both models' folds
    assert t.loc[(TOPK, "trained", "shuffle"), "macro_f1"] == pytest.approx(0.58)
    with pytest.raises(ValueError, match="no grid"):
        defense_table(_results(), {"grids": {}})


def test_clear_errors():
    results = _results()
    with pytest.raises(ValueError, match="blind reference"):
        defense_table(results[~results.attack.str.startswith("blind")], _record())
    with pytest.raises(ValueError, match="metrics"):
        defense_table(results, _record(), metrics=["bogus"])
    with pytest.raises(ValueError, match="none of the attacks"):
        defense_table(results, _record(), attacks=["ilrg"])
    with pytest.raises(ValueError, match="non-empty"):
        defense_table(results.iloc[:0], _record())


def test_privacy_utility_chart(table):
    import matplotlib.pyplot as plt

    from leakage_core.book import plot_privacy_utility

    fig, axes = plot_privacy_utility(table)
    assert axes.shape == (2, 2)  # models x samplers (trained rows)
    assert [ax.get_title() for ax in axes[0]] == ["deepconvlstm, shuffle", "deepconvlstm, balanced"]
    ax = axes[0, 0]
    assert axes[-1, 0].get_xlabel() == "macro-F1 (held-out client)" and ax.get_xlabel() == ""
    assert "advantage" in axes[0, 0].get_ylabel() and "LnAcc" in axes[0, 0].get_ylabel()
    # one marker with error bars per defence (4 trained defences) and a line at 0
    assert len(ax.containers) == 4
    assert any(np.allclose(line.get_ydata(), 0) for line in ax.get_lines())
    assert not ax.texts  # no labels by default: the legend names the defences
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["none", DPSGD, NO_BIAS, TOPK]
    markers = {h.get_label(): (h.get_marker(), h.get_color()) for h in legend.legend_handles}
    assert markers["none"][1] == "black" and markers[TOPK][1] != markers[DPSGD][1]
    # the point of top-k: x = macro-F1, y = the strongest attack's mean advantage
    row = table.loc[(TOPK, "deepconvlstm", "trained", "shuffle")]
    container = ax.containers[3]
    x, y = container.lines[0].get_data()
    assert x[0] == pytest.approx(row["macro_f1"]) and y[0] == pytest.approx(row["adv_ln_acc"])
    plt.close(fig)

    fig, axes = plot_privacy_utility(table, metric="class_acc", samplers=["balanced"], models=["tinyhar"], labels=True)
    ax = axes[0, 0]
    assert axes.shape == (1, 1) and "ClassAcc" in ax.get_ylabel()
    assert {t.get_text() for t in ax.texts} == {"none", DPSGD, NO_BIAS, TOPK}
    plt.close(fig)
    # below the y range: a downward triangle at the lower limit, with its value written
    low = table.xs("trained", level="state")["adv_ln_acc"].min()
    fig, axes = plot_privacy_utility(table, ylim=(low + 0.01, 1.05), samplers=["shuffle", "balanced"], labels=True)
    marked = [t.get_text() for ax in axes.ravel() for t in ax.texts]
    assert any(t.endswith(f" ({low:.1f})") for t in marked) and axes[0, 0].get_ylim()[1] == 1.05
    assert any(c.lines[0].get_marker() == "v" for ax in axes.ravel() for c in ax.containers)
    plt.close(fig)
    with pytest.raises(ValueError, match="metric"):
        plot_privacy_utility(table, metric="le_recall")
    with pytest.raises(ValueError, match="no rows"):
        plot_privacy_utility(table, samplers=["sequential"])


def test_precomputed_scores_give_the_same_table(table):
    results = _results()
    named = results.assign(defense=defense_names(results))
    per = score(named, by=["defense", "model", "state", "sampler", "attack"], per_client=True)
    pd.testing.assert_frame_equal(defense_table(results, _record(), scores=per), table)
    with pytest.raises(ValueError, match="scores lacks"):
        defense_table(results, _record(), scores=per.drop(columns="adv_ln_acc"))


def test_the_change_of_macro_f1_is_paired_by_fold(table):
    top = table.loc[(TOPK, "deepconvlstm", "trained", "shuffle")]
    # folds 1 and 2: 0.52 - 0.81 and 0.54 - 0.82
    assert top["change"] == pytest.approx(-0.285) and top["change_min"] == pytest.approx(-0.29)
    assert top["change_max"] == pytest.approx(-0.28)
    assert table.loc[("none", "tinyhar", "trained", "shuffle"), "change"] == 0.0
    assert table.xs("untrained", level="state")["change"].isna().all()


def test_merged_records_of_two_grids_give_the_table_of_one():
    # the DP-SGD rows and folds in a grid of their own (as defenses_dpsgd): merged, the same table as one grid's
    from leakage_core.study import merge_records

    whole, results = _record(), _results()
    is_dp = lambda entry: entry.get("defense") == DPSGD  # noqa: E731
    main = {key: [e for e in whole[key] if not is_dp(e)] for key in whole}
    dp = {key: [e for e in whole[key] if is_dp(e)] for key in whole}
    main["grid"], dp["grid"] = "defenses", "defenses_dpsgd"
    merged = merge_records(main, dp)
    assert merged["grids"] == ["defenses", "defenses_dpsgd"]
    assert len(merged["trained_folds"]) == len(whole["trained_folds"])
    # the undefended folds live in the main grid only: without them DP-SGD's change of macro-F1 is not defined
    alone = defense_table(results[results.defense == DPSGD], dp)
    assert alone["change"].isna().all() and alone["macro_f1"].notna().all()
    got = defense_table(results, merged)
    dp_rows = got.xs(DPSGD, level="defense")
    assert dp_rows["change"].notna().all()
    assert dp_rows["change"].to_numpy() == pytest.approx(
        defense_table(results, whole).xs(DPSGD, level="defense")["change"].to_numpy()
    )
    # an entry in both records is kept once
    assert merge_records(main, main)["trained_folds"] == main["trained_folds"]
    with pytest.raises(ValueError, match="trained_folds"):
        merge_records({"grids": {}})
    with pytest.raises(ValueError, match="different datasets"):
        merge_records({**main, "dataset_fingerprint": "a"}, {**dp, "dataset_fingerprint": "b"})
    with pytest.raises(ValueError, match="at least one"):
        merge_records()


def _with_lengths(record: dict, long_f1: float = 0.6, long_base: float | None = 0.9) -> dict:
    """``record`` with every fold trained for 1 epoch, plus DP-SGD folds of 10 epochs (macro-F1 ``long_f1``) and,
    unless ``long_base`` is None, undefended folds of 10 epochs (as merge_records of grids of two lengths gives)."""
    folds = [{**f, "epochs": 1} for f in record["trained_folds"]]
    for model in ("deepconvlstm", "tinyhar"):
        folds += [_fold(model, s, long_f1, 3000.0, defense=DPSGD, epsilon=9.0, delta=1e-5, epochs=10) for s in (1, 2)]
        if long_base is not None:
            folds += [_fold(model, s, long_base, 100.0, epochs=10) for s in (1, 2)]
    return {**record, "trained_folds": folds}


def test_a_defence_with_several_training_lengths_in_the_results_is_refused():
    results = _results()
    long = results[results.defense == DPSGD].assign(epochs=10)
    with pytest.raises(ValueError, match=r"'DP-SGD z=1, C=1' trained for several numbers of epochs \[1, 10\]") as err:
        defense_table(pd.concat([results, long], ignore_index=True), _with_lengths(_record()))
    assert "pass one training length at a time" in str(err.value) and "\n" not in str(err.value)


def test_the_folds_are_those_of_the_results_training_length(table):
    record = _with_lengths(_record())
    cols = ["macro_f1", "change", "folds", "train_s", "epsilon_training"]
    short = defense_table(_results(), record)  # every row trained for 1 epoch: the 1-epoch folds, as without epochs
    pd.testing.assert_frame_equal(short[cols], table[cols])
    results = _results()
    results.loc[results.defense == DPSGD, "epochs"] = 10  # the DP-SGD rows of a longer grid, with the 1-epoch rest
    long = defense_table(results, record).xs(("trained", "shuffle"), level=("state", "sampler"))
    dp = long.xs(DPSGD, level="defense")
    assert (dp["macro_f1"] == 0.6).all() and (dp["epsilon_training"] == 9.0).all() and (dp["train_s"] == 3000).all()
    # its change is against the undefended folds of the same length (0.9), not the 1-epoch ones
    assert dp["change"].to_numpy() == pytest.approx([0.6 - 0.9] * 2)
    assert long.xs("none", level="defense")["macro_f1"].to_numpy() == pytest.approx([0.815, 0.915])  # 1 epoch
    # no undefended fold of that length: no change, rather than one against another training length
    alone = defense_table(results, _with_lengths(_record(), long_base=None)).xs(DPSGD, level="defense")
    assert alone["change"].isna().all() and (alone["macro_f1"] == 0.6).all()


def test_folds_of_several_lengths_that_the_results_do_not_tell_apart_are_refused():
    results = _results().drop(columns="epochs")
    with pytest.raises(ValueError, match=r"trained folds of the defence '.*' .* for several numbers of epochs") as err:
        defense_table(results, _with_lengths(_record()))
    assert "pass one training length at a time" in str(err.value)
    table = defense_table(
        results, {**_record(), "trained_folds": [{**f, "epochs": 1} for f in _record()["trained_folds"]]}
    )
    assert table["macro_f1"].notna().any()


def test_the_options_are_keyword_only():
    import inspect

    from leakage_core.book import plot_privacy_utility

    for fn, positional in ((defense_table, ["results", "record"]), (plot_privacy_utility, ["table"])):
        params = inspect.signature(fn).parameters.values()
        assert [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD] == positional
    with pytest.raises(TypeError):
        defense_table(_results(), _record(), ["ln_acc"])
