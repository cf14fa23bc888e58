"""What the chapters show: the notebook set-up, the figures, the interactive explorer.

- :mod:`~leakage_core.book.notebook` — :func:`setup_notebook` (seeds, figure style, the real-data hook);
- :mod:`~leakage_core.book.plots` — one function per figure type, drawing results computed elsewhere;
- :mod:`~leakage_core.book.explorer` — one client, one setting, every attack, as numbers, a figure, widgets;
- :mod:`~leakage_core.book.checkpoints` — the chapters' committed models (``python -m leakage_core.book.checkpoints``).
"""

from __future__ import annotations

from .explorer import (
    EXPLORER_DATA,
    EXPLORER_TRAINING,
    FEDAVG_LR,
    PANEL_CHOICES,
    ExplorerView,
    Scores,
    advantage_scores,
    batch_scores,
    describe,
    explore,
    explorer_panel,
    plot_explorer,
    views_table,
)
from .notebook import setup_notebook
from .plots import (
    NULL_COLOR,
    class_colors,
    plot_class_shares,
    plot_confusion,
    plot_count_estimate,
    plot_label_timelines,
    plot_metric_bars,
    plot_privacy_utility,
    plot_training_length,
    plot_value_histograms,
)

__all__ = [
    "EXPLORER_DATA",
    "EXPLORER_TRAINING",
    "FEDAVG_LR",
    "PANEL_CHOICES",
    "ExplorerView",
    "Scores",
    "advantage_scores",
    "batch_scores",
    "describe",
    "explore",
    "explorer_panel",
    "plot_explorer",
    "views_table",
    "setup_notebook",
    "NULL_COLOR",
    "class_colors",
    "plot_class_shares",
    "plot_confusion",
    "plot_count_estimate",
    "plot_label_timelines",
    "plot_metric_bars",
    "plot_privacy_utility",
    "plot_training_length",
    "plot_value_histograms",
]
