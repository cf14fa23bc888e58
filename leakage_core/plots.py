"""Figures for the book: one function per figure type, all returning matplotlib objects.

Pipeline stage 7 (data -> sampling -> updates -> attacks -> metrics -> experiments -> **plots**).
Every function takes plain arrays / dataset objects and never computes results itself.
"""
from __future__ import annotations

import random
from typing import Sequence

import numpy as np


def setup_notebook(seed: int = 0) -> None:
    """Seed every random number generator and set the book's figure and table style.

    Introduced in Chapter 1 (the hidden first cell of every chapter).

    Parameters
    ----------
    seed : int
        Seed for Python's ``random``, NumPy's legacy global RNG and torch.
    """
    import matplotlib.pyplot as plt
    import pandas as pd
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    plt.rcParams.update(
        {
            "figure.figsize": (8.0, 3.6),
            "figure.dpi": 90,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "font.size": 10,
        }
    )
    pd.set_option("display.precision", 3)
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.width", 120)


def class_colors(class_names: Sequence[str]) -> dict[str, tuple]:
    """A stable colour per class name; NULL is light grey.

    Introduced in Chapter 2.
    """
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    colors = {}
    for i, name in enumerate(class_names):
        colors[name] = (0.85, 0.85, 0.85, 1.0) if i == 0 else cmap((i - 1) % 20)
    return colors
