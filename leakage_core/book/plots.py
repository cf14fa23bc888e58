"""Figures for the book: one function per figure type, all returning matplotlib objects.

Part of pipeline stage 6 (:mod:`leakage_core.book`). Contract: every function draws values computed
elsewhere (counts, label arrays, class shares, metric summaries and tables of :mod:`leakage_core.study`),
computing only what the drawing needs (colours, label runs, row normalisation), and returns its axes (and
figure); matplotlib is imported on first use. Colours: matplotlib's ``tab20`` and ``tab20b`` palettes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..metrics import METRIC_LABELS

#: the colour of the NULL class in every figure
NULL_COLOR: tuple[float, float, float, float] = (0.85, 0.85, 0.85, 1.0)


def class_colors(class_names: Sequence[str]) -> dict[str, tuple]:
    """A stable colour per class name; NULL (index 0) is light grey and no activity is grey.

    Activities take the 18 non-grey colours of matplotlib's ``tab20`` (enough
    for WEAR's 18 activities), then those of ``tab20b``.
    """
    import matplotlib

    palette = [matplotlib.colormaps["tab20"](k) for k in range(20) if k not in (14, 15)]  # 14, 15 are greys
    palette += [matplotlib.colormaps["tab20b"](k) for k in range(20)]
    colors = {}
    for i, name in enumerate(class_names):
        colors[name] = NULL_COLOR if i == 0 else palette[(i - 1) % len(palette)]
    return colors


def plot_count_estimate(
    true_counts: np.ndarray,
    estimate: np.ndarray,
    class_names: Sequence[str],
    title: str = "",
    estimate_label: str = "estimate",
    ax=None,
):
    """Grouped bars: a batch's true label histogram next to an estimate of it.

    Introduced in Chapter 3 (the untrained-model reading of the bias gradient); reused by the
    attack chapters to show one recovered batch.
    """
    import matplotlib.pyplot as plt

    true_counts = np.asarray(true_counts, dtype=float)
    estimate = np.asarray(estimate, dtype=float)
    if true_counts.shape != estimate.shape or true_counts.shape[0] != len(class_names):
        raise ValueError("true_counts, estimate and class_names must all have length C.")
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 0.42 * len(class_names)), 3.4))
    pos = np.arange(len(class_names))
    ax.bar(pos - 0.2, true_counts, width=0.4, label="true count (secret)", color="0.35")
    ax.bar(pos + 0.2, estimate, width=0.4, label=estimate_label, color="tab:red", alpha=0.8)
    ax.set_xticks(pos, class_names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("windows in batch")
    ax.axhline(0, color="k", lw=0.6)
    ax.legend(frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax


def plot_value_histograms(values: dict[str, np.ndarray], xlabel: str, title: str = "", bins: int = 60, ax=None):
    """Overlaid, normalised histograms of several arrays (e.g. classifier input features per model).

    Introduced in Chapter 3.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 3.2))
    for name, v in values.items():
        ax.hist(np.ravel(v), bins=bins, density=True, histtype="stepfilled", alpha=0.45, label=name)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(frameon=False, fontsize=8)
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax


def plot_label_timelines(
    sample_labels: dict[int, np.ndarray], class_names: Sequence[str], sampling_rate: int = 50, title: str = "", ax=None
):
    """One row per subject: the activity over time as coloured spans (NULL light grey).

    Introduced in Chapter 2.

    Parameters
    ----------
    sample_labels : dict
        ``subject_id -> (T,)`` integer label per sample.
    class_names : sequence of str
        Class names, index 0 = NULL.
    sampling_rate : int
        Samples per second; the x axis is in minutes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colors = class_colors(class_names)
    if ax is None:
        _, ax = plt.subplots(figsize=(9.0, 0.45 * len(sample_labels) + 1.6))
    used: set[int] = set()
    for row, lab in enumerate(sample_labels.values()):
        lab = np.asarray(lab)
        change = np.flatnonzero(np.diff(lab)) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [lab.size]])
        for cls in np.unique(lab):
            sel = lab[starts] == cls
            spans = [(s / sampling_rate / 60, (e - s) / sampling_rate / 60) for s, e in zip(starts[sel], ends[sel])]
            ax.broken_barh(spans, (row - 0.4, 0.8), facecolors=colors[class_names[cls]])
            used.add(int(cls))
    ax.set_yticks(range(len(sample_labels)), [f"subject {s}" for s in sample_labels])
    ax.invert_yaxis()
    ax.set_xlabel("time (min)")
    ax.grid(False)
    handles = [Patch(color=colors[class_names[c]], label=class_names[c]) for c in sorted(used)]
    ax.legend(handles=handles, ncol=4, fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.32))
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax


def plot_class_shares(shares: "dict[str, object]", title: str = "", axes=None):
    """Horizontal bars of the share of samples per class, one panel per dataset.

    Introduced in Chapter 2. ``shares`` maps a dataset name to a pandas Series (class -> share).
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, len(shares), figsize=(4.6 * len(shares), 4.2))
    axes = np.atleast_1d(axes)
    for ax, (name, s) in zip(axes, shares.items()):
        s = s.sort_values()
        colors = ["0.6" if str(k).lower().startswith("null") else "tab:blue" for k in s.index]
        ax.barh([str(k) for k in s.index], 100 * s.to_numpy(), color=colors)
        ax.set_xlabel("share of samples (%)")
        ax.set_title(name)
        ax.tick_params(axis="y", labelsize=7)
    if title:
        axes[0].figure.suptitle(title)
    axes[0].figure.tight_layout()
    return axes


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str], title: str = "", ax=None):
    """Row-normalised confusion matrix (true rows, predicted columns) as a heat map.

    Introduced in Chapter 7 (the paper's Fig. 4 view of label-sorted batches).
    """
    import matplotlib.pyplot as plt

    m = np.asarray(matrix, dtype=float)
    if m.shape != (len(class_names), len(class_names)):
        raise ValueError("matrix must be C x C with one name per class.")
    rows = m.sum(axis=1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 4.2))
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=7)
    ax.set_xlabel("reconstructed label")
    ax.set_ylabel("true label")
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=9)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax


def plot_metric_bars(
    summary,
    metric: str,
    groups: Sequence[str],
    hues: Sequence[str],
    ax=None,
    group_level: str = "attack",
    hue_level: str = "sampler",
    colors: dict | None = None,
    ylabel: str | None = None,
    legend: bool = True,
    blind: bool = True,
):
    """Grouped bars of one metric's mean over clients, with the clients' min-max range as error bars.

    Introduced in Chapter 7.

    Parameters
    ----------
    summary : pandas.DataFrame
        From :func:`leakage_core.study.score` (columns ``(metric, "mean" | "min" | "max")``), indexed by at
        least ``group_level`` and ``hue_level`` (other index levels must be fixed beforehand).
    metric : str
        ``"ln_acc"``, ``"le_acc"``, ``"le_recall"``, ``"class_acc"``, ``"count_f1"``, or an advantage
        ``"adv_<m>"`` (then set the y limits afterwards: advantages can be negative).
    groups, hues : sequence of str
        Values of ``group_level`` along the x axis, and of ``hue_level`` as bars within a group.
    colors : dict, optional
        Hue value -> colour.
    blind : bool
        Mark the blind guess on every bar (a black tick at the better blind reference's mean score on the
        same batches, column ``blind_<metric>``) when the summary has it: the part of a bar above its tick
        is what the gradient told the server; a bar below its tick is worse than guessing.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.4))
    width = 0.8 / len(hues)
    for j, hue in enumerate(hues):
        rows = [summary.xs((g, hue), level=(group_level, hue_level)) for g in groups]
        mean = np.array([r[(metric, "mean")].iloc[0] for r in rows])
        low = np.array([r[(metric, "min")].iloc[0] for r in rows])
        high = np.array([r[(metric, "max")].iloc[0] for r in rows])
        x = np.arange(len(groups)) + (j - (len(hues) - 1) / 2) * width
        ax.bar(
            x,
            mean,
            width,
            label=str(hue),
            color=None if colors is None else colors.get(hue),
            yerr=np.vstack([mean - low, high - mean]),
            capsize=2,
            error_kw={"elinewidth": 0.8},
        )
        if blind and (f"blind_{metric}", "mean") in summary.columns:
            ref = np.array([r[(f"blind_{metric}", "mean")].iloc[0] for r in rows])
            ax.hlines(
                ref, x - width / 2, x + width / 2, colors="black", linewidth=2, label="blind guess" if j == 0 else None
            )
    ax.set_xticks(range(len(groups)), [str(g) for g in groups])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel or metric)
    ax.set_xlabel(group_level)
    if legend:
        ax.legend(title=hue_level, fontsize=8, ncols=len(hues) + 1)
    return ax


#: row titles of :func:`plot_training_length`
_TRAINING_LENGTH_LABELS = {
    "macro_f1": "macro-F1 (held-out client)",
    **{m: METRIC_LABELS[m] for m in ("ln_acc", "class_acc")},
}


def plot_training_length(
    table,
    attacks: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    axes=None,
    colors: dict | None = None,
):
    """Macro-F1 and attack scores against training epochs (log x axis), one column per model.

    Introduced in Chapter 9. Rows: the models' macro-F1 on their held-out clients, then LnAcc and
    ClassAcc of every attack; each point is the mean over folds with their standard deviation as error
    bar (attacks are nudged sideways so the bars stay apart).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`leakage_core.study.training_length_table` (columns ``model, epochs, metric, attack,
        mean, std``), for one dataset.
    attacks, models : sequence of str, optional
        Which attacks (lines) and models (columns) to draw, in this order (default: all in ``table``).
    axes : array of matplotlib Axes, optional
        ``(3, len(models))`` axes to draw into.
    colors : dict, optional
        Attack -> colour.

    Returns
    -------
    (matplotlib.figure.Figure, numpy.ndarray of Axes)
    """
    import matplotlib.pyplot as plt

    if "dataset" in table.columns and table["dataset"].nunique() > 1:
        raise ValueError("the table holds several datasets; pass the rows of one (table[table.dataset == ...]).")
    rows = ("macro_f1", "ln_acc", "class_acc")
    models = list(dict.fromkeys(table["model"])) if models is None else list(models)
    scored = table[table["metric"] != "macro_f1"]
    attacks = list(dict.fromkeys(scored["attack"])) if attacks is None else list(attacks)
    if axes is None:
        fig, axes = plt.subplots(
            len(rows), len(models), figsize=(4.2 * len(models), 7.5), sharex=True, sharey="row", squeeze=False
        )
    else:
        axes = np.asarray(axes).reshape(len(rows), len(models))
        fig = axes[0, 0].figure
    nudge = {a: 1.06 ** (j - (len(attacks) - 1) / 2) for j, a in enumerate(attacks)}
    for c, model in enumerate(models):
        mine = table[table["model"] == model]
        for r, metric in enumerate(rows):
            ax = axes[r, c]
            lines = (
                [("", "k")]
                if metric == "macro_f1"
                else [(a, None if colors is None else colors.get(a)) for a in attacks]
            )
            for attack, color in lines:
                pts = mine[(mine["metric"] == metric) & (mine["attack"] == attack)].sort_values("epochs")
                x = pts["epochs"].to_numpy(dtype=float) * nudge.get(attack, 1.0)
                ax.errorbar(
                    x,
                    pts["mean"],
                    yerr=pts["std"].fillna(0.0),
                    marker="o",
                    ms=3.5,
                    capsize=2,
                    lw=1.2,
                    color=color,
                    label=attack or "macro-F1",
                )
            ax.set_xscale("log")
            ax.set_ylim(0, 1.05)
            if r == 0:
                ax.set_title(model)
            if c == 0:
                ax.set_ylabel(_TRAINING_LENGTH_LABELS[metric])
            if r == len(rows) - 1:
                ax.set_xlabel("training epochs (log scale)")
                epochs = sorted(set(table["epochs"]))
                ax.set_xticks(epochs, [str(e) for e in epochs])
                ax.minorticks_off()
    handles, labels = axes[1, -1].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="center right", title="attack", fontsize=8)
        fig.subplots_adjust(right=0.82)
    return fig, axes


def plot_privacy_utility(
    table,
    *,
    metric: str = "ln_acc",
    state: str = "trained",
    samplers: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    ylim: tuple[float, float] | None = None,
    labels: bool = False,
    colors: dict | None = None,
    axes=None,
):
    """The privacy-utility chart: per defence, the model's macro-F1 against the strongest attack's advantage.

    Introduced in Chapter 17. One panel per model (rows) and sampler (columns); one marker per defence and strength
    at x = the mean macro-F1 of its trained models on their held-out clients (error bar: lowest to highest fold)
    and y = the mean advantage over the blind guess of the strongest attack (error bar: lowest to highest client).
    Colour: the defence's family; marker shape: its strength within the family (legend: one entry per defence). A
    dashed line at 0 marks the blind guess: a marker whose bar stays on or below it leaks nothing beyond what the
    server could guess on any client. Up and to the right leaks more and predicts better. The options after
    ``table`` are keyword-only.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`leakage_core.study.defense_table` (index ``defense`` and ``model``, ``state``, ``sampler`` where
        present; columns ``family``, ``macro_f1`` (``_min``, ``_max``), ``adv_<metric>`` (``_min``, ``_max``)).
    metric : str
        The metric whose advantage is drawn (the table must have ``adv_<metric>``).
    state : str
        The rows drawn (``"trained"``: the models whose macro-F1 is measured).
    samplers, models : sequence of str, optional
        Columns and rows of panels, in this order (default: all in the table, in its order).
    ylim : (low, high), optional
        The y range of every panel. A marker below ``low`` is drawn at ``low`` as a downward triangle (without its
        vertical bar; with ``labels`` its mean advantage is written next to its name).
    labels : bool
        Also write each defence's name next to its marker.
    colors : dict, optional
        Defence family -> colour (default: ``"none"`` black, the others ``tab10``).
    axes : array of matplotlib Axes, optional
        ``(len(models), len(samplers))`` axes to draw into.

    Returns
    -------
    (matplotlib.figure.Figure, numpy.ndarray of Axes) of shape ``(len(models), len(samplers))``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if f"adv_{metric}" not in getattr(table, "columns", ()):
        raise ValueError(f"the table has no advantage for metric {metric!r}; build it with metrics=[{metric!r}, ...].")
    frame = table.reset_index()
    if "state" in frame.columns:
        frame = frame[frame["state"] == state]
    if "model" not in frame.columns:
        frame = frame.assign(model="")
    if "sampler" not in frame.columns:
        frame = frame.assign(sampler="")
    samplers = list(dict.fromkeys(frame["sampler"])) if samplers is None else list(samplers)
    models = list(dict.fromkeys(frame["model"])) if models is None else list(models)
    frame = frame[frame["sampler"].isin(samplers) & frame["model"].isin(models) & frame["macro_f1"].notna()]
    if frame.empty:
        raise ValueError(f"the table has no rows with a macro-F1 for state {state!r}, {samplers} and {models}.")
    families = list(dict.fromkeys(frame["family"]))
    if colors is None:
        palette = [plt.get_cmap("tab10")(k) for k in range(10)]
        others = [f for f in families if f != "none"]
        colors = {"none": "black", **{f: palette[k % 10] for k, f in enumerate(others)}}
    shapes = ("o", "s", "^", "D", "P", "X")
    style = {}
    for name, family in dict.fromkeys(zip(frame["defense"], frame["family"])):
        rank = sum(1 for f in style.values() if f[1] == family)
        style[name] = (shapes[rank % len(shapes)], family)
    if axes is None:
        fig, axes = plt.subplots(
            len(models), len(samplers), figsize=(4.3 * len(samplers), 3.6 * len(models)), squeeze=False, sharex=True
        )
    else:
        axes = np.asarray(axes).reshape(len(models), len(samplers))
        fig = axes[0, 0].figure
    adv, name = f"adv_{metric}", METRIC_LABELS.get(metric, metric)
    for r, model in enumerate(models):
        for c, sampler in enumerate(samplers):
            ax = axes[r, c]
            rows = frame[(frame["model"] == model) & (frame["sampler"] == sampler)]
            for _, row in rows.iterrows():
                x, y = float(row["macro_f1"]), float(row[adv])
                marker, family = style[row["defense"]]
                below = ylim is not None and y < ylim[0]
                ax.errorbar(
                    [x],
                    [ylim[0] if below else y],
                    xerr=[[x - row["macro_f1_min"]], [row["macro_f1_max"] - x]],
                    yerr=None if below else [[y - row[f"{adv}_min"]], [row[f"{adv}_max"] - y]],
                    marker="v" if below else marker,
                    ms=5,
                    lw=0.9,
                    capsize=2,
                    color=colors.get(family, "grey"),
                )
                if labels:
                    text = f"{row['defense']}" + (f" ({y:.1f})" if below else "")
                    ax.annotate(
                        text, (x, ylim[0] if below else y), xytext=(4, 3), textcoords="offset points", fontsize=6.5
                    )
            ax.axhline(0.0, color="k", lw=0.8, ls="--")
            if ylim is not None:
                ax.set_ylim(ylim[0] - 0.04 * (ylim[1] - ylim[0]), ylim[1])
            ax.set_title(", ".join(v for v in (model, sampler) if v))
            if r == len(models) - 1:
                ax.set_xlabel("macro-F1 (held-out client)")
            if c == 0:
                ax.set_ylabel(f"advantage of the strongest attack\n({name}, over the blind guess)")
    handles = [
        Line2D([], [], color=colors.get(family, "grey"), marker=marker, ls="", label=str(d))
        for d, (marker, family) in style.items()
    ]
    fig.legend(handles=handles, loc="center right", title="defence", fontsize=7.5)
    fig.subplots_adjust(right=0.8)
    return fig, axes
