"""Tables the study chapters show, computed from results and provenance (no attack is run here)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..attacks import BLIND


def distinct_labels_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean distinct labels per batch of the results' clients, per dataset and sampler, next to the real data's.

    Introduced in Chapter 9. Computed from the ``true`` counts of one model, state and attack (the batches
    do not depend on them); the real datasets' figures are those the generator is calibrated to
    (:data:`leakage_core.data.profiles.TARGETS`, for batches of 100 windows; NaN where the dataset papers
    give none or for other batch sizes). Batches of one size only: pass rows of one ``batch_size``.
    """
    from ..data.profiles import TARGETS
    from ..federated.sampling import batch_composition

    if results["batch_size"].nunique() != 1:
        raise ValueError("pass the rows of one batch size (e.g. results[results.batch_size == 100]).")
    first = results[["model", "state", "attack"]].iloc[0]
    one = results[(results.model == first.model) & (results.state == first.state) & (results.attack == first.attack)]
    study_values = one.groupby(["dataset", "sampler"])["true"].apply(
        lambda t: float(batch_composition(np.stack(t.to_list()))["distinct"].mean())
    )
    n = int(results["batch_size"].iloc[0])  # the real figures are for batches of 100 windows
    real = {
        (d, s): TARGETS[d].get(f"distinct_labels_{s}", (np.nan,))[0] if n == 100 else np.nan
        for d, s in study_values.index
    }
    return pd.DataFrame({"study clients": study_values, "real dataset": pd.Series(real)}).rename_axis(
        ["dataset", "sampler"]
    )


def leakage_table(summary: pd.DataFrame, metric: str = "class_acc") -> pd.DataFrame:
    """One metric of a :func:`leakage_core.study.score` summary next to the blind guess and the advantage over it.

    Introduced in Chapter 7. Columns: ``score`` (mean over clients) and ``± sd`` (their standard
    deviation), ``blind`` (the better blind reference's mean score on the same batches), ``advantage``
    (mean of the per-client advantage) with ``adv min`` and ``adv max`` over clients, and ``beyond blind``:
    True when the advantage is above 0 for *every* client (the gradient told the server more than it could
    guess, whatever the client), False when it is at or below 0 for every client, NaN when clients
    disagree or no blind reference was run. The index is the summary's.
    """
    if (f"adv_{metric}", "mean") not in summary.columns:
        raise ValueError(
            f"the summary has no advantage for {metric!r}: run the blind references "
            f"({', '.join(BLIND)}) with the attacks (they are in BOOK_ATTACKS)."
        )
    adv = summary[f"adv_{metric}"]
    verdict = np.where(adv["min"] > 0, 1.0, np.where(adv["max"] <= 0, 0.0, np.nan))
    out = pd.DataFrame(
        {
            "score": summary[(metric, "mean")],
            "± sd": summary[(metric, "std")],
            "blind": summary[(f"blind_{metric}", "mean")],
            "advantage": adv["mean"],
            "adv min": adv["min"],
            "adv max": adv["max"],
            "beyond blind": pd.Series(verdict, index=summary.index).map({1.0: True, 0.0: False}),
        },
        index=summary.index,
    )
    return out


#: the quantities of :func:`training_length_table`, in its order
TRAINING_LENGTH_METRICS: tuple[str, ...] = ("macro_f1", "ln_acc", "class_acc")


def _fold_records(provenance: Mapping[str, Any], grid: str, datasets: Sequence[str]) -> list[dict]:
    """The trained-fold records of ``<grid>-<dataset>`` in a provenance record (or of one grid's record)."""
    if "trained_folds" in provenance:
        return list(provenance["trained_folds"])
    grids = provenance.get("grids", {})
    if not datasets:
        raise ValueError("results without a dataset column: pass one grid's record (with trained_folds).")
    files = [f"{grid}-{d}.csv.gz" for d in datasets]
    missing = [f for f in files if f not in grids]
    if missing:
        raise ValueError(f"the provenance record has no grid {missing}; it has {sorted(grids)}.")
    return [fold for f in files for fold in grids[f]["trained_folds"]]


def training_length_table(
    results: pd.DataFrame,
    provenance: Mapping[str, Any],
    by: Sequence[str] = ("model", "epochs"),
    grid: str = "training_length",
) -> pd.DataFrame:
    """Held-out macro-F1 and every attack's LnAcc and ClassAcc per training length: mean and std over folds.

    Introduced in Chapter 9. One fold is one attacked client with its leave-one-subject-out model. Per
    client, LnAcc and ClassAcc are computed over all its batches with :func:`leakage_core.study.score`
    (``per_client=True``; the samplers are pooled unless ``"sampler"`` is in ``by``), and the macro-F1 of
    its model on it is looked up in the trained folds of ``provenance``; then mean, std (``ddof=1``) and
    the number of clients are taken over the clients.

    Parameters
    ----------
    results : pandas.DataFrame
        Trained rows, e.g. ``load_results("training_length", "wetlab")`` (or :func:`run_grid` output).
    provenance : mapping
        :func:`provenance` (the folds of ``<grid>-<dataset>.csv.gz`` are used) or one grid's record
        (a mapping with ``trained_folds``).
    by : sequence of str
        Grouping columns of ``results`` besides ``dataset`` (default: model and epochs).

    Returns
    -------
    pandas.DataFrame
        Tidy: columns ``[dataset,] *by, metric, attack, mean, std, n``; ``metric`` is ``"macro_f1"``
        (``attack`` empty), ``"ln_acc"`` or ``"class_acc"``; sorted by ``by``, metric and attack.
    """
    from .grid import score

    if results.empty or (results["state"] != "trained").any():
        raise ValueError("pass the rows of trained models only (macro-F1 exists for trained models).")
    keys = (["dataset"] if "dataset" in results.columns else []) + [c for c in by if c != "dataset"]
    per = score(results, by=keys + ["attack"], per_client=True)
    match = [c for c in ("dataset", "model", "epochs", "train_lr") if c in results.columns] + ["subject"]
    folds = pd.DataFrame(_fold_records(provenance, grid, sorted(set(results.get("dataset", [])))))
    folds = folds.rename(columns={"held_out": "subject"})[match + ["macro_f1"]].drop_duplicates(match)
    models = results[list(dict.fromkeys(keys + match))].drop_duplicates()
    f1 = models.merge(folds, on=match, how="left")
    if f1["macro_f1"].isna().any():
        lost = f1.loc[f1["macro_f1"].isna(), match].drop_duplicates().to_dict("records")
        raise ValueError(f"no trained-fold record (macro-F1) for {lost[:3]}{' ...' if len(lost) > 3 else ''}.")
    f1 = f1.groupby(keys + ["subject"], as_index=False)["macro_f1"].mean()
    long = [f1.rename(columns={"macro_f1": "value"}).assign(metric="macro_f1", attack="")]
    for metric in TRAINING_LENGTH_METRICS[1:]:
        long.append(per[keys + ["attack", "subject", metric]].rename(columns={metric: "value"}).assign(metric=metric))
    tidy = pd.concat(long, ignore_index=True)
    table = (
        tidy.groupby(keys + ["metric", "attack"], sort=False)["value"]
        .agg(mean="mean", std=lambda v: v.std(ddof=1), n="count")
        .reset_index()
    )
    attack_order = {a: i for i, a in enumerate([""] + list(dict.fromkeys(results["attack"])))}
    table["_m"] = table["metric"].map(TRAINING_LENGTH_METRICS.index)
    table["_a"] = table["attack"].map(attack_order)
    return table.sort_values(keys + ["_m", "_a"], ignore_index=True).drop(columns=["_m", "_a"])


#: the metrics :func:`defense_table` reports the strongest attack's advantage for, by default
DEFENSE_TABLE_METRICS: tuple[str, ...] = ("ln_acc", "class_acc")
#: the name :func:`defense_names` gives an undefended classifier without a bias (the ``no_bias`` defence's label)
NO_BIAS: str = "no bias"


def defense_names(results: pd.DataFrame) -> pd.Series:
    """The defence of every row as the book names it: the ``defense`` column, and ``"no bias"`` (:data:`NO_BIAS`)
    where the classifier has no bias and no other defence (the grid stores the ``no_bias`` defence as ``bias=False,
    defense="none"``, see :class:`~leakage_core.study.Setting`).

    Introduced in Chapter 17. Rows without a ``defense`` column count as ``"none"``, without a ``bias`` column as
    having a bias.
    """
    defense = results["defense"] if "defense" in results.columns else pd.Series("none", index=results.index)
    bias = results["bias"].astype(bool) if "bias" in results.columns else pd.Series(True, index=results.index)
    return defense.where(bias | (defense != "none"), NO_BIAS).rename("defense")


def _grid_record(record: Mapping[str, Any], grid: str, results: pd.DataFrame) -> Mapping[str, Any]:
    """One grid's record: ``record`` itself when it has ``trained_folds``, else its entry in a provenance record."""
    if "trained_folds" in record:
        return record
    datasets = sorted(set(results["dataset"])) if "dataset" in results.columns else []
    if len(datasets) != 1:
        raise ValueError("pass one grid's record (with trained_folds), or results of one dataset with provenance().")
    name = f"{grid}-{datasets[0]}.csv.gz"
    grids = record.get("grids", {})
    if name not in grids:
        raise ValueError(f"the provenance record has no grid {name!r}; it has {sorted(grids)}.")
    return grids[name]


def merge_records(*records: Mapping[str, Any]) -> dict[str, Any]:
    """One record for the rows of several grids of one dataset (e.g. ``defenses`` and ``defenses_dpsgd``).

    Introduced in Chapter 17. ``trained_folds``, ``defenses`` and ``settings`` are concatenated in the order of
    ``records`` (an entry equal to an earlier one is kept once; a fold trained again keeps its last record, as
    :func:`defense_table` reads folds); ``grids`` names the merged grids. Pass each grid's own record
    (``provenance()["grids"][file]``). Raises ``ValueError`` for no record, a record without ``trained_folds``
    (a whole provenance record) or records of different datasets.
    """
    if not records:
        raise ValueError("merge_records needs at least one grid record.")
    missing = [i for i, r in enumerate(records) if "trained_folds" not in r]
    if missing:
        raise ValueError(
            f"record(s) {missing} have no trained_folds: pass each grid's record, provenance()['grids'][file], "
            "not the whole provenance record."
        )
    fingerprints = {r.get("dataset_fingerprint") for r in records} - {None}
    if len(fingerprints) > 1:
        raise ValueError("the records are of different datasets (dataset_fingerprint differs); merge one dataset's.")
    merged: dict[str, Any] = {"grids": [r.get("grid") for r in records]}
    if fingerprints:
        merged["dataset_fingerprint"] = fingerprints.pop()
    for key in ("trained_folds", "defenses", "settings"):
        entries: list[Any] = []
        for record in records:
            entries += [e for e in record.get(key, []) if e not in entries]
        merged[key] = entries
    return merged


def _fold_name(fold: Mapping[str, Any]) -> str:
    """The defence a trained-fold record was trained under, named as :func:`defense_names` names rows."""
    if fold.get("defense") is not None:
        return str(fold["defense"])
    return "none" if fold.get("bias", True) else NO_BIAS


def _training_lengths(named: pd.DataFrame) -> dict[str, Any]:
    """The number of epochs of every defence's trained rows (``defense`` already named), ``{}`` without an
    ``epochs`` column; one clear ``ValueError`` when a defence's rows hold several (they would be pooled)."""
    if "epochs" not in named.columns:
        return {}
    trained = named[named["state"] == "trained"] if "state" in named.columns else named
    lengths = trained.groupby("defense", sort=False)["epochs"].unique()
    several = {d: sorted(v.tolist()) for d, v in lengths.items() if len(v) > 1}
    if several:
        d, epochs = next(iter(several.items()))
        raise ValueError(
            f"the results hold the defence {d!r} trained for several numbers of epochs {epochs}"
            f"{f' (and {len(several) - 1} more such defence(s))' if len(several) > 1 else ''}, which its rows would "
            f"pool: pass one training length at a time, e.g. results[results.epochs == {epochs[-1]}] with the "
            "record of those models."
        )
    return {d: v[0] for d, v in lengths.items()}


def _check_one_fold_length(folds: pd.DataFrame) -> None:
    """One clear ``ValueError`` when the folds hold one (defence, model, held-out client) at several numbers of
    epochs (a merged record of grids of different training lengths, results without an ``epochs`` column)."""
    per = folds.groupby(["defense", "model", "held_out"], sort=False)["epochs"].unique()
    several = per[per.map(len) > 1]
    if len(several):
        (d, model, held_out), epochs = next(iter(several.items()))
        raise ValueError(
            f"the record holds trained folds of the defence {d!r} ({model}, client {held_out}) for several numbers "
            f"of epochs {sorted(epochs.tolist())}, and the results do not say which one they are of: pass one "
            "training length at a time (results with their epochs column, e.g. results[results.epochs == "
            f"{max(epochs.tolist())}], and the record of those models)."
        )


def defense_table(
    results: pd.DataFrame,
    record: Mapping[str, Any],
    *,
    metrics: Sequence[str] = DEFENSE_TABLE_METRICS,
    by: Sequence[str] = ("model", "state", "sampler"),
    attacks: Sequence[str] | None = None,
    grid: str = "defenses",
    scores: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per defence and setting: the strongest attack's advantage over the blind guess, the model's cost, epsilon.

    Introduced in Chapter 17. The rows are scored with :func:`leakage_core.study.score` per client (grouped by the
    defence, ``by`` and the attack); the advantage of an attack is over the better blind reference on the same
    batches (:func:`leakage_core.study.add_advantage`), so ``results`` must hold the blind references. Per group and
    metric the strongest attack is the one of largest mean advantage over clients (ties: the first in the results'
    order).

    One training length per defence: the trained rows of a defence must share one ``epochs`` (else ``ValueError``:
    pass one training length at a time), and its trained folds are those of that length; a record with folds of
    one defence, model and client at several lengths that the results do not tell apart raises ``ValueError`` too.
    The options after ``record`` are keyword-only.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows of the defences grid (:func:`~leakage_core.study.load_results` ``("defenses", ...)`` or
        :func:`~leakage_core.study.run_grid`), one dataset; the defence of a row is :func:`defense_names`'.
    record : mapping
        The grid's record (``results/<grid>-<dataset>.json``: ``trained_folds``, ``defenses``), or
        :func:`~leakage_core.study.provenance` (the record of ``<grid>-<dataset>.csv.gz`` is used).
    metrics : sequence of str
        Metrics of :data:`~leakage_core.metrics.ADVANTAGE_METRICS` (default: LnAcc and ClassAcc).
    by : sequence of str
        Setting columns besides the defence (default: model, state, sampler).
    attacks : sequence of str or None
        The candidates for the strongest attack (default: every attack that reads the gradient).
    grid : str
        The grid's name, to find its record in a provenance record.
    scores : pandas.DataFrame or None
        The per-client scores of ``results`` when already computed, ``score(results.assign(defense=
        defense_names(results)), by=["defense", *by, "attack"], per_client=True)`` (saves scoring twice).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``defense`` and ``by`` (defences in the order of the record's settings). Columns: ``family`` (the
        defence's registry name; ``"none"``), ``stage``; per metric ``m``: ``attack_<m>`` (the strongest attack),
        ``adv_<m>`` (its mean advantage over clients), ``adv_<m>_min`` and ``adv_<m>_max`` (over clients);
        ``clients``; ``macro_f1``, ``macro_f1_min``, ``macro_f1_max`` (the held-out macro-F1 of the trained models
        over folds: the attacked model's, but for a defence of stage ``"update"`` the model trained with the defence
        applied to the classifier's gradient at every step, provenance records with ``attacked: False``: the cost of
        the defence on the last layer only, :meth:`~leakage_core.defenses.base.Defense.on_step`), ``change``,
        ``change_min``, ``change_max`` (its difference to the undefended model's macro-F1 on the same fold, of the
        same training length where the folds record it: mean, min and max over folds), ``folds``, ``train_s`` (mean
        training seconds per fold of those models); ``epsilon_update`` (the defence's epsilon of one update at the
        record's delta, from its ``defenses`` entry, for its default adjacency ``"replace"``: one window's or the
        batch's content replaced; label DP: one label replaced) and ``epsilon_training`` (the largest epsilon a
        fold's training recorded: DP-SGD's is Opacus's, Poisson sampling with one window *added or removed*, not
        the replace relation of ``epsilon_update``; label DP's is per label, one label replaced). NaN where not
        defined (macro-F1 and training of untrained rows; epsilon of a defence without a guarantee).
    """
    from ..attacks import is_blind
    from ..metrics import ADVANTAGE_METRICS
    from .grid import score

    by = [c for c in by if c != "defense"]
    unknown = sorted(set(metrics) - set(ADVANTAGE_METRICS))
    if not metrics or unknown:
        raise ValueError(f"metrics must be among {list(ADVANTAGE_METRICS)}, got {list(metrics)}.")
    if results.empty or "attack" not in results.columns:
        raise ValueError("results must be a non-empty table of attack rows (load_results('defenses', ...)).")
    if not results["attack"].map(is_blind).any():
        raise ValueError("the results hold no blind reference: run blind_uniform and blind_prior with the attacks.")
    if "dataset" in results.columns and results["dataset"].nunique() > 1:
        raise ValueError("the results hold several datasets; pass the rows of one.")
    rec = _grid_record(record, grid, results)
    named = results.assign(defense=defense_names(results))
    lengths = _training_lengths(named)
    keys = ["defense", *by]
    if scores is None:
        per = score(named, by=[*keys, "attack"], per_client=True)
    else:
        missing = sorted({*keys, "attack", "subject", *(f"adv_{m}" for m in metrics)} - set(scores.columns))
        if missing:
            raise ValueError(f"scores lacks the columns {missing}: pass score(..., per_client=True) of these results.")
        per = scores
    candidates = per[~per["attack"].map(is_blind)]
    if attacks is not None:
        candidates = candidates[candidates["attack"].isin(list(attacks))]
        if candidates.empty:
            raise ValueError(f"none of the attacks {list(attacks)} is in the results.")
    order = {a: i for i, a in enumerate(dict.fromkeys(results["attack"]))}
    spread = candidates.groupby([*keys, "attack"], sort=False)[[f"adv_{m}" for m in metrics]].agg(
        ["mean", "min", "max"]
    )
    table = None
    for m in metrics:
        stats = spread[f"adv_{m}"].reset_index()
        stats["_order"] = stats["attack"].map(order)
        best = stats.sort_values([*keys, "mean", "_order"], ascending=[True] * len(keys) + [False, True])
        best = best.drop_duplicates(keys).set_index(keys)
        part = pd.DataFrame(
            {
                f"attack_{m}": best["attack"],
                f"adv_{m}": best["mean"],
                f"adv_{m}_min": best["min"],
                f"adv_{m}_max": best["max"],
            }
        )
        table = part if table is None else table.join(part)
    table["clients"] = candidates.groupby(keys)["subject"].nunique()

    # the defences' provenance: stage, family, epsilon per update
    entries = {d["defense"]: d for d in rec.get("defenses", [])}
    names = table.index.get_level_values("defense")
    table.insert(
        0, "stage", [entries[n]["stage"] if n in entries else ("model" if n == NO_BIAS else "") for n in names]
    )
    table.insert(
        0,
        "family",
        [entries[n]["key"]["defense"] if n in entries else ("no_bias" if n == NO_BIAS else "none") for n in names],
    )
    table["epsilon_update"] = [
        np.nan if n not in entries or entries[n].get("epsilon_per_update") is None else entries[n]["epsilon_per_update"]
        for n in names
    ]

    # the trained models' cost: macro-F1 over folds, training seconds, the training's epsilon
    folds = pd.DataFrame(rec.get("trained_folds", []))
    cost_cols = ["macro_f1", "macro_f1_min", "macro_f1_max", "change", "change_min", "change_max", "folds", "train_s"]
    cost_cols.append("epsilon_training")
    for c in cost_cols:
        table[c] = np.nan
    if not folds.empty:
        folds = folds.assign(defense=[_fold_name(f) for f in rec["trained_folds"]])
        if "subject" in results.columns:
            folds = folds[folds["held_out"].isin(set(results["subject"]))]
        if "epsilon" not in folds.columns:
            folds["epsilon"] = np.nan
        folds["epsilon"] = pd.to_numeric(folds["epsilon"], errors="coerce")
        match = ["defense"] + (["model"] if "model" in by else [])
        # one training length per defence: the folds of its rows' length; the baseline of the same length
        length = ["epochs"] if "epochs" in folds.columns and folds["epochs"].notna().all() else []
        pool = folds
        if length:
            folds = folds[[lengths.get(d, e) == e for d, e in zip(folds["defense"], folds["epochs"])]]
            _check_one_fold_length(folds[folds["defense"].isin(set(names))])  # the table's defences
        folds = folds.drop_duplicates(["defense", "model", "held_out"], keep="last")
        same = ["model", "held_out", *length]
        base = pool[pool["defense"] == "none"].drop_duplicates(same, keep="last").set_index(same)["macro_f1"]
        folds = folds.assign(
            change=folds["macro_f1"].to_numpy() - folds.join(base.rename("_base"), on=same)["_base"].to_numpy()
        )
        cost = folds.groupby(match).agg(
            macro_f1=("macro_f1", "mean"),
            macro_f1_min=("macro_f1", "min"),
            macro_f1_max=("macro_f1", "max"),
            change=("change", "mean"),
            change_min=("change", "min"),
            change_max=("change", "max"),
            folds=("held_out", "size"),
            train_s=("wall_time_s", "mean"),
            epsilon_training=("epsilon", "max"),
        )
        trained = (
            table.index.get_level_values("state") == "trained" if "state" in by else np.ones(len(table), dtype=bool)
        )
        look = table.reset_index()[match]
        found = look.join(cost, on=match)
        for c in cost_cols:
            table[c] = np.where(trained, found[c].to_numpy(dtype=float), np.nan)

    # defences in the order of the record's settings (the baseline first), then the rest
    # and every other key in the order of its first appearance in the results
    settings = pd.DataFrame(rec.get("settings", []))
    if not settings.empty:
        settings["defense"] = settings.get("defense", pd.Series("none", index=settings.index)).fillna("none")
    first = list(dict.fromkeys(defense_names(settings))) if not settings.empty else []
    ranks = {"defense": {n: i for i, n in enumerate(first + [n for n in dict.fromkeys(names) if n not in first])}}
    ranks.update({c: {v: i for i, v in enumerate(dict.fromkeys(named[c]))} for c in by})
    table = table.reset_index()
    rank_cols = [f"_rank_{c}" for c in keys]
    for c, r in zip(keys, rank_cols):
        table[r] = table[c].map(ranks[c])
    table = table.sort_values(rank_cols, kind="stable").drop(columns=rank_cols)
    return table.set_index(keys)
