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
