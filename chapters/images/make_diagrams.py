"""Draw the book's static diagrams as SVG files next to this script.

    python chapters/images/make_diagrams.py          # or: make diagrams

Matplotlib only, no data, no randomness: running it twice gives byte-identical files (the SVG ids use a
fixed hash salt and the files carry no date). The chapters include the SVGs with MyST ``{figure}``
directives; tests/test_diagrams.py checks that the committed files are up to date and that the layer
sizes drawn here are the ones ``leakage_core.models.architectures`` builds.

- ``federated_round.svg`` (Chapter 1): one federated round and the honest-but-curious server.
- ``last_layer.svg`` (Chapter 3): where the classifier the attacks read sits in DeepConvLSTM and TinyHAR.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

HERE = Path(__file__).resolve().parent

# Colours: NULL light grey as in every figure of the book (leakage_core.book.NULL_COLOR); activities
# from tab20 without its greys; the last layer in one accent colour throughout.
NULL_GREY = (0.85, 0.85, 0.85)
ACTIVITY = [matplotlib.colormaps["tab20"](k)[:3] for k in (0, 4, 2, 6, 8)]
ACCENT = "#d95f02"
ACCENT_FILL = "#fde0c5"
BOX_FILL = "#eef3f8"
EDGE = "#33475b"

# Layer sizes drawn in Figure 2 (checked against leakage_core.models.architectures by tests/test_diagrams.py).
WINDOW = 50
DEEPCONVLSTM = {"filters": 64, "kernel": 9, "time_steps": 18, "hidden": 128}
TINYHAR = {"filters": 20, "kernel": 9, "strides": (1, 2, 1, 2), "time_steps": 13, "hidden": 40}


def _style() -> None:
    plt.rcParams.update(
        {
            "svg.hashsalt": "leakage-har-diagrams",  # deterministic ids
            "svg.fonttype": "path",  # glyphs as paths: looks the same in every browser
            "font.family": "DejaVu Sans",
            "font.size": 9,
            "mathtext.fontset": "dejavusans",
        }
    )


def _box(ax, x, y, w, h, text="", fill=BOX_FILL, edge=EDGE, lw=1.2, size=9, weight="normal", style="round,pad=0.02"):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle=style, facecolor=fill, edgecolor=edge, linewidth=lw))
    if text:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight, linespacing=1.3)


def _arrow(ax, start, end, color=EDGE, lw=1.4, style="-|>", rad=0.0, ls="-"):
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=12,
            color=color,
            linewidth=lw,
            connectionstyle=f"arc3,rad={rad}",
            linestyle=ls,
            shrinkA=2,
            shrinkB=2,
        )
    )


def _save(fig, name: str, out_dir: Path) -> Path:
    path = Path(out_dir) / name
    fig.savefig(
        path,
        format="svg",
        bbox_inches="tight",
        pad_inches=0.05,
        metadata={"Date": None, "Creator": "chapters/images/make_diagrams.py"},
    )
    plt.close(fig)
    return path


def federated_round(out_dir: Path = HERE) -> Path:
    """Figure 1.1: server, three clients, the round's four steps, and the curious reading of one update."""
    fig, ax = plt.subplots(figsize=(11.5, 5.0))
    ax.set_xlim(0, 23)
    ax.set_ylim(-0.5, 10)
    ax.axis("off")

    # --- the federated round (left) ----------------------------------------------------------------
    _box(ax, 3.2, 7.6, 7.6, 1.9, "", fill="#e6ecf2", lw=1.5)
    ax.text(7.0, 9.05, "server", ha="center", va="center", fontsize=11, weight="bold")
    ax.text(
        7.0,
        8.3,
        r"global model $\theta$  (DeepConvLSTM or TinyHAR)"
        "\n"
        "④ average the clients' updates into the next $\\theta$",
        ha="center",
        va="center",
        fontsize=8.5,
        linespacing=1.5,
    )

    timelines = [  # (class index, length) runs; -1 = NULL
        [(-1, 3), (0, 5), (-1, 2), (1, 4), (-1, 2)],
        [(-1, 2), (2, 6), (-1, 4), (3, 4)],
        [(4, 3), (-1, 5), (0, 4), (-1, 4)],
    ]
    for k, (x0, runs) in enumerate(zip((0.2, 4.75, 9.3), timelines), start=1):
        _box(ax, x0, 0.5, 4.2, 3.2, "", fill="#f7f7f7", lw=1.2)
        ax.text(x0 + 2.1, 3.3, f"client {k}", ha="center", va="center", fontsize=10, weight="bold")
        ax.text(x0 + 2.1, 2.8, "a wearable's IMU windows", ha="center", va="center", fontsize=8)
        total = sum(n for _, n in runs)
        pos = x0 + 0.35
        for cls, n in runs:  # the label timeline: what the client knows and never sends
            w = 3.5 * n / total
            ax.add_patch(
                plt.Rectangle(
                    (pos, 2.05),
                    w,
                    0.4,
                    facecolor=NULL_GREY if cls < 0 else ACTIVITY[cls],
                    edgecolor="white",
                    linewidth=0.6,
                )
            )
            pos += w
        ax.text(
            x0 + 2.1,
            1.75,
            "labels $y$ stay on the device",
            ha="center",
            va="center",
            fontsize=7.5,
            style="italic",
            color="#555555",
        )
        ax.text(
            x0 + 2.1,
            1.0,
            "② local update\non a batch of $N$ windows",
            ha="center",
            va="center",
            fontsize=8,
            linespacing=1.4,
        )
        _arrow(ax, (x0 + 1.4, 7.55), (x0 + 1.4, 3.75), color="#4a6fa5")  # down: the model
        _arrow(ax, (x0 + 2.8, 3.75), (x0 + 2.8, 7.55), color=ACCENT)  # up: the update
    ax.text(1.45, 5.65, r"① $\theta$", ha="right", va="center", fontsize=9, color="#4a6fa5", weight="bold")
    ax.text(3.15, 5.65, "③ update", ha="left", va="center", fontsize=9, color=ACCENT, weight="bold")
    ax.text(
        6.85,
        -0.05,
        "update = FedSGD: the gradient $\\nabla_\\theta L$ of one batch,  or  "
        "FedAvg: the change $\\Delta\\theta$ after $S$ local SGD steps",
        ha="center",
        va="center",
        fontsize=8.2,
        color=ACCENT,
    )

    # --- the honest-but-curious reading (right) ----------------------------------------------------
    ax.plot([14.05, 14.05], [0.3, 9.6], color="#bbbbbb", linewidth=1.0, linestyle=(0, (4, 3)))
    ax.text(18.6, 9.45, "the curious server, before aggregating", ha="center", va="center", fontsize=10, weight="bold")
    _arrow(ax, (10.85, 8.55), (14.6, 8.55), color=ACCENT, lw=1.6)
    ax.text(12.7, 8.85, "client 1's update", ha="center", va="bottom", fontsize=8, color=ACCENT)
    _box(ax, 14.7, 7.75, 7.8, 1.25, "", fill=ACCENT_FILL, edge=ACCENT, lw=1.5)
    ax.text(
        18.6,
        8.37,
        "reads only the last layer $z = Wh + b$:\n"
        r"$\nabla_b L$ ($C$ values) and $\nabla_W L$ ($C \times d$)",
        ha="center",
        va="center",
        fontsize=8.5,
        linespacing=1.5,
    )

    names = ["NULL", "jogging", "push-ups", "stretching", "sit-ups", "lunges"]
    colors = [NULL_GREY, ACTIVITY[0], ACTIVITY[1], ACTIVITY[2], ACTIVITY[3], ACTIVITY[4]]
    counts = [40, 35, 25, 0, 0, 0]  # the batch of client 1 (illustrative)
    c_, n_ = len(names), sum(counts)
    bias = [1 / c_ - n / n_ for n in counts]  # identity I1 on an untrained model (Chapter 3)

    inset = fig.add_axes((0.655, 0.15, 0.13, 0.38))
    inset.bar(range(c_), bias, color=colors, edgecolor=EDGE, linewidth=0.6)
    inset.axhline(0, color=EDGE, linewidth=0.8)
    inset.set_title("bias gradient $\\nabla_b L$ (untrained)", fontsize=8.5)
    inset.set_xticks(range(c_), names, rotation=60, ha="right", fontsize=7)
    inset.tick_params(axis="y", labelsize=7)
    inset.set_ylim(-0.28, 0.22)
    for side in ("top", "right"):
        inset.spines[side].set_visible(False)

    hist = fig.add_axes((0.845, 0.15, 0.13, 0.38))
    hist.bar(range(c_), counts, color=colors, edgecolor=EDGE, linewidth=0.6)
    hist.set_title("recovered label histogram", fontsize=8.5)
    hist.set_xticks(range(c_), names, rotation=60, ha="right", fontsize=7)
    hist.set_ylabel("windows", fontsize=7.5)
    hist.tick_params(axis="y", labelsize=7)
    for side in ("top", "right"):
        hist.spines[side].set_visible(False)

    _arrow(ax, (17.3, 7.7), (17.3, 6.55), color=ACCENT)
    _arrow(ax, (19.75, 4.4), (20.35, 4.4), color=ACCENT, lw=1.6)
    ax.text(20.05, 4.85, "attack", ha="center", va="bottom", fontsize=8, color=ACCENT, weight="bold")
    ax.text(
        18.6,
        6.9,
        "negative entry $\\Rightarrow$ class in the batch",
        ha="left",
        va="center",
        fontsize=7.5,
        color="#555555",
        style="italic",
    )
    return _save(fig, "federated_round.svg", out_dir)


def _pipeline(ax, y, title, stages, classifier):
    """One model as a row of boxes: (label, shape) stages, then the highlighted classifier."""
    ax.text(0.1, y + 1.72, title, ha="left", va="center", fontsize=11, weight="bold")
    x, w, h, gap = 0.1, 2.95, 1.3, 0.5
    for label, shape in stages:
        _box(ax, x, y, w, h, label, size=8.2)
        ax.text(x + w / 2, y - 0.2, shape, ha="center", va="top", fontsize=7.5, color="#444444", linespacing=1.35)
        _arrow(ax, (x + w, y + h / 2), (x + w + gap, y + h / 2))
        x += w + gap
    cw = 2.7
    _box(ax, x, y - 0.05, cw, h + 0.1, classifier, fill=ACCENT_FILL, edge=ACCENT, lw=2.0, size=8.4, weight="bold")
    ax.text(
        x + cw / 2,
        y - 0.2,
        "scores $z = Wh + b$\n$\\rightarrow$ softmax $p$",
        ha="center",
        va="top",
        fontsize=7.5,
        color="#444444",
        linespacing=1.35,
    )
    return x, cw


def last_layer(out_dir: Path = HERE) -> Path:
    """Figure 3.1: DeepConvLSTM and TinyHAR as pipelines, the last layer highlighted."""
    d, t = DEEPCONVLSTM, TINYHAR
    fig, ax = plt.subplots(figsize=(11.5, 4.3))
    ax.set_xlim(0, 20.3)
    ax.set_ylim(-0.4, 8.3)
    ax.axis("off")
    x, cw = _pipeline(
        ax,
        5.0,
        "DeepConvLSTM",
        [
            ("window", f"{WINDOW} samples × ch channels"),
            (f"4 × Conv({d['kernel']}×1)\n+ ReLU, no padding", f"{d['filters']} maps × {d['time_steps']} steps × ch"),
            ("2-layer LSTM", f"{d['hidden']} units over {d['time_steps']} steps"),
            ("last time step", f"{d['hidden']} values in $(-1, 1)$"),
            ("Dropout(0.5)", f"$h$: {d['hidden']} features,\neither sign"),
        ],
        f"Linear {d['hidden']} → $C$\nweight $W$, bias $b$",
    )
    _pipeline(
        ax,
        1.25,
        "TinyHAR",
        [
            ("window", f"{WINDOW} samples × ch channels"),
            (
                f"4 × Conv({t['kernel']}×1)\n+ ReLU + BN,\nstrides 1, 2, 1, 2",
                f"{t['filters']} maps × {t['time_steps']} steps × ch",
            ),
            ("self-attention\nacross channels", "channels as tokens,\nper time step"),
            ("FC fusion + LSTM", f"{t['hidden']} units over {t['time_steps']} steps"),
            ("temporal attention\n+ Dropout(0.5)", f"$h$: {t['hidden']} features,\nmix of LSTM outputs"),
        ],
        f"Linear {t['hidden']} → $C$\nweight $W$, bias $b$",
    )
    # what the attacks read
    ax.add_patch(
        FancyBboxPatch(
            (x - 0.2, 0.05),
            cw + 0.4,
            6.6,
            boxstyle="round,pad=0.05",
            facecolor="none",
            edgecolor=ACCENT,
            linewidth=1.2,
            linestyle=(0, (5, 3)),
        )
    )
    ax.text(
        x + cw / 2,
        7.35,
        "the last layer: every attack\nreads its gradients $\\nabla_W L$, $\\nabla_b L$",
        ha="center",
        va="center",
        fontsize=8.5,
        color=ACCENT,
        weight="bold",
        linespacing=1.4,
    )
    return _save(fig, "last_layer.svg", out_dir)


def main(out_dir: Path = HERE) -> list[Path]:
    """Write every diagram into ``out_dir`` (default: this folder) and return the paths."""
    with plt.rc_context():
        plt.rcdefaults()  # independent of the caller's settings (a notebook's or a test's style)
        _style()
        return [federated_round(out_dir), last_layer(out_dir)]


if __name__ == "__main__":
    for written in main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(f"wrote {written}")
