"""Seconds per training epoch on this machine, extrapolated to the paper's LOSO fold sizes.

Run: python benchmarks/bench_training.py [--batches 200] [--threads N]   (prints a table; asserts nothing)

Times :func:`leakage_core.models.train_model` (Adam, shuffled mini-batches of 100 windows, forward +
backward + step, unweighted cross-entropy) for a few hundred mini-batches of WEAR-like (12 channels, 19
classes) and Wetlab-like (3 channels, 9 classes) synthetic windows, for DeepConvLSTM and TinyHAR.
The per-window time is then **extrapolated** to one epoch of a real-size LOSO fold: WEAR ~17 training
subjects x 5,400 windows = 91,800 windows, Wetlab ~21 x 5,750 = 120,750 windows. Other processes
competing for the CPU inflate every number (the load average is printed for that reason).

Next to ms per window it prints the arithmetic rate: the FLOPs of one forward + backward pass of a
batch of 100 windows in train mode, counted with ``torch.utils.flop_counter.FlopCounterMode``, over the
measured time (which also holds the Adam step and the batching). The counter covers convolutions, matrix
products and attention; where it does not see the LSTM (CPU kernels outside its op list), the output
says so and GFLOP/s understates the real rate. The CPU is named (model, cores, AVX-512, torch's vector
kernels): these numbers belong to one machine.
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd
import torch
from tqdm.auto import tqdm

from leakage_core.study import REAL_SIZE, cpu_info
from leakage_core.data import make_synthetic
from leakage_core.models import MODELS, build_model
from leakage_core.models import TrainConfig, train_model

#: training windows of one real-size LOSO fold (all subjects but the attacked one)
FOLD_WINDOWS = {name: (size["subjects"] - 1) * size["windows_per_subject"] for name, size in REAL_SIZE.items()}
FOLDS = {name: size["subjects"] for name, size in REAL_SIZE.items()}
BATCH = 100


def count_flops(model: torch.nn.Module, windows: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    """``(total FLOPs, FLOPs attributed to LSTM modules)`` of one forward + backward pass in train mode."""
    from torch.utils.flop_counter import FlopCounterMode

    model.train()
    counter = FlopCounterMode(display=False)
    with counter:
        torch.nn.functional.cross_entropy(model(windows), labels).backward()
    model.zero_grad(set_to_none=True)
    lstm_names = [name for name, m in model.named_modules() if isinstance(m, torch.nn.LSTM)]
    counts = counter.get_flop_counts()
    lstm = sum(sum(ops.values()) for key, ops in counts.items() if any(key.endswith(n) for n in lstm_names))
    return int(counter.get_total_flops()), int(lstm)


def time_training(profile: str, model_name: str, n_batches: int) -> dict:
    """ms per window of train_model on ``n_batches`` mini-batches of synthetic ``profile`` windows."""
    minutes = 45.0
    per_subject = int(minutes * 60 * 50 / 25) - 1
    data = make_synthetic(profile, n_subjects=n_batches * BATCH // per_subject + 1, minutes=minutes, seed=0)
    x, y = data.windows_of()
    x, y = x[: n_batches * BATCH], y[: n_batches * BATCH]
    model = build_model(model_name, data.n_channels, data.n_classes, seed=0)
    train_model(model, x[: 3 * BATCH], y[: 3 * BATCH], TrainConfig(epochs=1), progress=False, device="cpu")  # warm-up
    t0 = time.perf_counter()
    train_model(model, x, y, TrainConfig(epochs=1, batch_size=BATCH), progress=False, device="cpu")
    seconds = time.perf_counter() - t0
    ms = seconds / len(y) * 1e3
    epoch_s = ms * FOLD_WINDOWS[profile] / 1e3
    flops, lstm_flops = count_flops(model, torch.from_numpy(x[:BATCH]), torch.from_numpy(y[:BATCH]).long())
    mflop = flops / BATCH / 1e6
    return {
        "dataset": profile,
        "channels": data.n_channels,
        "classes": data.n_classes,
        "model": model_name,
        "timed batches": len(y) // BATCH,
        "ms/window": ms,
        "MFLOP/window": mflop,
        "GFLOP/s": mflop / ms,
        "LSTM counted": lstm_flops > 0,
        "s/epoch (extrapolated)": epoch_s,
        "fold windows": FOLD_WINDOWS[profile],
        "h per fold @100 epochs": epoch_s * 100 / 3600,
        "h all folds @100 epochs": epoch_s * 100 * FOLDS[profile] / 3600,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200, help="mini-batches of 100 windows timed per row")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    jobs = [(p, m) for p in ("wear", "wetlab") for m in MODELS]
    rows = [time_training(p, m, args.batches) for p, m in tqdm(jobs, desc="benchmark")]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cpu = cpu_info()
    avx = {True: "AVX-512", False: "no AVX-512", None: "AVX-512 unknown"}[cpu["avx512"]]
    print(f"CPU: {cpu['cpu_model']}, {cpu['cpu_count']} cores, {avx}, torch kernels {cpu['torch_cpu_capability']}")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"1-min load average {load:.2f} at the end; CPU, batches of {BATCH}, train mode (fwd + bwd + Adam step)"
    )
    table = pd.DataFrame(rows)
    print(table.round(3).to_string(index=False))
    print(
        "MFLOP/window: forward + backward of a batch of 100 in train mode (torch.utils.flop_counter), per window; "
        "GFLOP/s = MFLOP/window / (ms/window) over the whole training step."
    )
    if not table["LSTM counted"].all():
        print(
            "The FLOP counter does NOT count the LSTM of the rows with 'LSTM counted' False (its CPU kernel is "
            "not in the counter's op list): their MFLOP and GFLOP/s cover the other layers only."
        )
    sizes = "; ".join(
        f"{name} {s['subjects'] - 1} x {s['windows_per_subject']:,} = {FOLD_WINDOWS[name]:,} windows"
        for name, s in REAL_SIZE.items()
    )
    folds = " / ".join(f"{n} ({name})" for name, n in FOLDS.items())
    print(
        f"s/epoch and hours are EXTRAPOLATED from the timed mini-batches to a real-size LOSO fold ({sizes}); "
        f"'all folds' = {folds} folds of one model."
    )


if __name__ == "__main__":
    main()
