"""Cheap speed-ups of training on the CPU, tried on TinyHAR (DeepConvLSTM as a control): measured, not assumed.

Run: python benchmarks/bench_tinyhar_variants.py [--rounds 3] [--batches 60]   (prints a table; asserts nothing)

Each variant trains with :func:`leakage_core.models.train_model` (one epoch of ``--batches`` mini-batches
of 100 synthetic windows, after a warm-up) in its **own process**, because most of them change the
process (thread count, environment read when the libraries load). The variants run in turn, ``--rounds``
times; the table gives the least disturbed (minimum) and the median ms per window, and whether the
trained weights are bit-identical to the default's (the same training run):

- ``default``: torch's default threads, the models as they are;
- ``1 thread``: ``torch.set_num_threads(1)``;
- ``channels_last`` (TinyHAR): convolution weights and input in channels-last memory format (the permute
  after the convolutions then needs no copy); other kernels, so other rounding;
- ``passive OpenMP``: ``OMP_WAIT_POLICY=PASSIVE``: idle OpenMP threads sleep instead of spinning (the same
  threads and work split; it matters when another process competes for the cores);
- ``keep freed memory``: ``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824``: glibc's
  malloc keeps freed blocks instead of returning them to the system, so a training step does not
  page-fault its activation buffers in again (the same kernels in the same order);
- ``both``: the last two together.

Other processes competing for the CPU change every number; the load average is printed. What one run on
a 2-core AMD EPYC (AVX-512) shared with other work showed: no variant is a cheap speed-up of TinyHAR.
One thread and channels-last are slower or no faster (and channels-last changes the rounding); passive
OpenMP trains bit-identical weights and is several times faster while another process keeps both cores
busy (OpenMP threads that spin then wait for a descheduled partner), but slower when the cores are
mostly free; the malloc thresholds remove the page faults (tens of milliseconds of system time per
DeepConvLSTM step) without a consistent gain in wall time. None is made a default.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import types

import numpy as np
import pandas as pd

#: variant -> environment added to the child process
ENV = {
    "passive OpenMP": {"OMP_WAIT_POLICY": "PASSIVE"},
    "keep freed memory": {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "1073741824"},
}
ENV["both"] = {**ENV["passive OpenMP"], **ENV["keep freed memory"]}
VARIANTS = ("default", "1 thread", "channels_last", *ENV)
BATCH = 100


def _channels_last(model):
    """TinyHAR with channels-last convolutions (weights and input); DeepConvLSTM unchanged."""
    import torch

    if type(model).__name__ != "TinyHAR":
        return model
    model.conv.to(memory_format=torch.channels_last)

    def features(self, x):
        x = self._check_input(x).unsqueeze(1).contiguous(memory_format=torch.channels_last)
        x = self.conv(x)
        b, f, t, ch = x.shape
        x = self.channel_attention(x.permute(0, 2, 3, 1).reshape(b * t, ch, f))
        x = self.fusion(x.reshape(b, t, ch * f))
        out, _ = self.lstm(x)
        weights = torch.softmax(self.temporal_score(out), dim=1)
        return self.dropout((weights * out).sum(dim=1))

    model.features = types.MethodType(features, model)
    return model


def child(variant: str, profile: str, model_name: str, batches: int) -> dict:
    """Time one variant in this process; weights digest for the bit-identity check."""
    import hashlib

    import torch

    from leakage_core.data import make_synthetic
    from leakage_core.models import build_model
    from leakage_core.models import TrainConfig, train_model

    if variant == "1 thread":
        torch.set_num_threads(1)
    minutes = 45.0
    per_subject = int(minutes * 60 * 50 / 25) - 1
    data = make_synthetic(profile, n_subjects=batches * BATCH // per_subject + 1, minutes=minutes, seed=0)
    x, y = data.windows_of()
    x, y = x[: batches * BATCH], y[: batches * BATCH]
    model = build_model(model_name, data.n_channels, data.n_classes, seed=0)
    if variant == "channels_last":
        model = _channels_last(model)
    train_model(model, x[: 3 * BATCH], y[: 3 * BATCH], TrainConfig(epochs=1), progress=False, device="cpu")  # warm-up
    t0 = time.perf_counter()
    train_model(model, x, y, TrainConfig(epochs=1, batch_size=BATCH), progress=False, device="cpu")
    seconds = time.perf_counter() - t0
    h = hashlib.blake2b(digest_size=8)
    for t in model.state_dict().values():
        h.update(t.contiguous().numpy().tobytes())
    return {"ms/window": seconds / len(y) * 1e3, "weights": h.hexdigest(), "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=60, help="mini-batches of 100 windows timed per run")
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "PROFILE", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.batches)))
        return
    from leakage_core.study import cpu_info

    jobs = [("wear", "tinyhar"), ("wetlab", "tinyhar"), ("wear", "deepconvlstm"), ("wetlab", "deepconvlstm")]
    runs: dict[tuple, list] = {}
    for r in range(args.rounds):
        for profile, model in jobs:
            for variant in VARIANTS:
                if model == "deepconvlstm" and variant == "channels_last":
                    continue
                out = subprocess.run(
                    [sys.executable, __file__, "--batches", str(args.batches), "--child", variant, profile, model],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**os.environ, **ENV.get(variant, {})},
                )
                runs.setdefault((profile, model, variant), []).append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    rows = []
    for (profile, model, variant), got in runs.items():
        ms = [g["ms/window"] for g in got]
        reference = runs[profile, model, "default"][0]["weights"]
        rows.append(
            {
                "dataset": profile,
                "model": model,
                "variant": variant,
                "threads": got[0]["threads"],
                "min ms/window": min(ms),
                "median ms/window": float(np.median(ms)),
                "weights identical to default": all(g["weights"] == reference for g in got),
            }
        )
    table = pd.DataFrame(rows)
    base = table[table.variant == "default"].set_index(["dataset", "model"])["min ms/window"]
    table["speed-up (min)"] = [base[d, m] / v for d, m, v in zip(table.dataset, table.model, table["min ms/window"])]
    cpu = cpu_info()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"CPU: {cpu['cpu_model']}, {cpu['cpu_count']} cores, AVX-512 {cpu['avx512']}, torch kernels "
        f"{cpu['torch_cpu_capability']}; {args.rounds} rounds x {args.batches} batches of {BATCH}; "
        f"1-min load average {load:.2f} at the end"
    )
    print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
