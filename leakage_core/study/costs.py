"""What the paper's full grid costs: per-window costs measured on this machine, extrapolated to real size.

Introduced in Chapter 14. Two costs decide the budget of a real-data run:

- the **attack grid**: for every client, model state and sampler, one client update per batch (a
  forward pass in train mode plus the closed-form last-layer gradient, as :func:`run_grid` computes
  it); every attack and LDP variant reuses it;
- **LOSO training**: one model per attacked client, trained on all other subjects for the paper's 100
  epochs (Adam, mini-batches of 100 windows, forward + backward + step).

:func:`measure_costs` times both per window on generated windows of the real channel counts;
:func:`extrapolate_costs` multiplies them by the real datasets' sizes. The first is a measurement, the
second arithmetic on it, and the table says which column is which.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Sequence

import pandas as pd

from ..data.profiles import PROFILES

#: real dataset sizes: subjects (the dataset profiles' ``n_subjects``) and windows per subject (1 s windows,
#: 50 % overlap; ~45 and ~48 minutes)
REAL_SIZE: dict[str, dict[str, int]] = {
    name: {"subjects": PROFILES[name].n_subjects, "windows_per_subject": n}
    for name, n in (("wear", 5_400), ("wetlab", 5_750))
}


def cpu_info() -> dict[str, object]:
    """The CPU that measured numbers come from: model name, cores, AVX-512, torch's kernels and threads.

    Keys ``cpu_model`` (``/proc/cpuinfo``'s model name, else
    ``platform.processor()``), ``cpu_count``, ``avx512`` (True/False, None where ``/proc/cpuinfo`` is
    missing), ``torch_cpu_capability`` (``torch.backends.cpu.get_cpu_capability()``: the vector kernels
    torch dispatches to, e.g. ``"AVX512"``) and ``torch_threads``. Trained models' last bits depend on
    the last two.
    """
    import os
    import platform

    import torch

    model, flags = None, None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip() == "model name" and model is None:
                    model = value.strip()
                elif name.strip() == "flags" and flags is None:
                    flags = value.split()
    except OSError:
        pass
    return {
        "cpu_model": model or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "avx512": None if flags is None else any(f.startswith("avx512") for f in flags),
        "torch_cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "torch_threads": torch.get_num_threads(),
    }


def _seconds(fn, repeat: int) -> float:
    """Best-of-``repeat`` wall time of ``fn()`` after one warm-up call (the minimum is the least disturbed)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure_costs(
    models: Sequence[str] = ("deepconvlstm", "tinyhar"),
    profiles: Sequence[str] = ("wear", "wetlab"),
    batch_size: int = 100,
    train_batches: int = 3,
    repeat: int = 3,
    progress: bool = True,
) -> pd.DataFrame:
    """Measured milliseconds per window of one client update and of one training step, per model and dataset.

    Introduced in Chapter 14. Windows come from the generator with the real channel and class counts
    (WEAR 12 channels and 19 classes, Wetlab 3 and 9): the cost depends on the shapes, not the values.

    Parameters
    ----------
    models, profiles : sequence of str
        Which models and datasets to time.
    batch_size : int
        Windows per batch (the paper's N = 100).
    train_batches : int
        Mini-batches per timed training epoch.
    repeat : int
        Timed repetitions; the fastest is kept (other processes only ever slow a run down).
    """
    from tqdm.auto import tqdm

    from ..data import make_synthetic
    from ..models.architectures import build_model
    from ..models.training import TrainConfig, train_model
    from ..federated import fedsgd_update

    config = TrainConfig(epochs=1, batch_size=batch_size)
    rows = []
    jobs = [(p, m) for p in profiles for m in models]
    for profile, name in tqdm(jobs, desc="timing", disable=not progress):
        data = make_synthetic(profile, n_subjects=1, minutes=max(3.0, train_batches * batch_size * 25 / 50 / 60 + 1))
        x, y = data.windows_of()
        xb, yb = x[:batch_size], y[:batch_size]
        model = build_model(name, data.n_channels, data.n_classes, seed=0)
        # The timed callables bind this iteration's values explicitly (they are only called inside it).
        update_s = _seconds(partial(fedsgd_update, model, xb, yb, seed=0), repeat)
        xt, yt = x[: train_batches * batch_size], y[: train_batches * batch_size]

        def train_once(name=name, data=data, xt=xt, yt=yt):
            fresh = build_model(name, data.n_channels, data.n_classes, seed=0)
            return train_model(fresh, xt, yt, config, progress=False, device="cpu")

        train_s = _seconds(train_once, repeat)
        rows.append(
            {
                "dataset": profile,
                "model": name,
                "channels": data.n_channels,
                "classes": data.n_classes,
                "update ms/window": 1e3 * update_s / batch_size,
                "train ms/window": 1e3 * train_s / len(yt),
            }
        )
    return pd.DataFrame(rows).set_index(["dataset", "model"])


def extrapolate_costs(
    measured: pd.DataFrame, epochs: int = 100, samplers: int = 3, states: int = 2, folds: dict[str, int] | None = None
) -> pd.DataFrame:
    """CPU hours of the paper's single-step grid and of its LOSO training at real size, from :func:`measure_costs`.

    Introduced in Chapter 14. Pure arithmetic on the measured per-window costs:

    - ``grid h`` = subjects x windows per subject x ``samplers`` x ``states`` x update cost (every window
      is in one batch per sampler; balanced batches draw about as many windows);
    - ``training h`` = ``folds`` x ``epochs`` x (subjects - 1) x windows per subject x training cost
      (one LOSO model per attacked client; ``folds`` defaults to every subject, as in the paper).
    """
    out = measured.copy()
    sizes = pd.DataFrame(REAL_SIZE).T
    subjects = out.index.get_level_values("dataset").map(sizes["subjects"]).to_numpy(float)
    per_subject = out.index.get_level_values("dataset").map(sizes["windows_per_subject"]).to_numpy(float)
    n_folds = subjects if folds is None else out.index.get_level_values("dataset").map(folds).to_numpy(float)
    out["windows (real size)"] = (subjects * per_subject).astype(int)
    out["grid h (extrapolated)"] = subjects * per_subject * samplers * states * out["update ms/window"] / 3.6e6
    out["training h (extrapolated)"] = n_folds * epochs * (subjects - 1) * per_subject * out["train ms/window"] / 3.6e6
    out["training share"] = out["training h (extrapolated)"] / (
        out["training h (extrapolated)"] + out["grid h (extrapolated)"]
    )
    return out


__all__ = ["REAL_SIZE", "measure_costs", "extrapolate_costs"]
