"""The experiment engine against the paper code's way of running the same grid.

One run, one machine, the same data: the grid {shuffle, sequential, balanced} x {no LDP, noise 0.1,
clip 0.1, clip 0.1 + noise 0.1} x the paper's 5 attacks, untrained DeepConvLSTM and TinyHAR, on the
embedded default data (WEAR- and Wetlab-like, 3 clients of 20 minutes), timed

(a) with ``leakage_core.study.run_grid``: one forward pass per batch (closed-form last-layer gradient),
    shared by the 4 LDP variants and the 5 attacks; attacks prepared once per client;
(b) as the paper's code does it (github.com/mariusbock/leakage_har, ``single_step_leakage.py``): per
    batch and per LDP variant one autograd forward + backward pass of the whole model, and every
    attack called from scratch on every update (LLG* re-estimates its impacts on dummy inputs each time).

Both compute the same counts (checked below on every row). It then measures the full untrained
single-step grid (3 samplers x 5 attacks, no LDP) at real size for one model — 18 WEAR-like and 22
Wetlab-like clients of real length — on a slice of clients, and extrapolates linearly in the number
of clients when the whole would take longer than 5 minutes (the printout says so).

Run: python benchmarks/bench_grid.py (prints figures, asserts nothing; ~15-25 minutes on 2 cores).
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from leakage_core.attacks import ATTACKS, PAPER_ATTACKS
from leakage_core.data import PROFILES, make_synthetic
from leakage_core.study import Setting, run_grid
from leakage_core.models import MODELS, build_model
from leakage_core.federated import SAMPLERS, make_batches
from leakage_core.federated import LDP, fedsgd_update

LDPS = [None, LDP(sigma=0.1), LDP(rho=0.1), LDP(sigma=0.1, rho=0.1)]
#: clients and mean minutes per client of the real datasets
REAL = {"wear": (PROFILES["wear"].n_subjects, 45), "wetlab": (PROFILES["wetlab"].n_subjects, 48)}


def paper_way(data, model_name: str) -> tuple[float, list[np.ndarray]]:
    """Seconds and predicted counts of the per-batch, per-variant autograd loop."""
    model = build_model(model_name, data.n_channels, data.n_classes, seed=0)
    preds = []
    t0 = time.perf_counter()
    jobs = [(s, sp, v) for sp in SAMPLERS for v in LDPS for s in data.subject_ids]
    for s, sampler, ldp in tqdm(jobs, desc=f"paper's way ({model_name})", leave=False):
        client = data.subjects[s]
        for b, idx in enumerate(make_batches(client.labels, 100, sampler, seed=0)):
            update = fedsgd_update(model, client.windows[idx], client.labels[idx], method="autograd", seed=b, ldp=ldp)
            for name in PAPER_ATTACKS:
                preds.append(ATTACKS[name](update, model=model))
    return time.perf_counter() - t0, preds


def engine_way(data, model_name: str) -> tuple[float, pd.DataFrame]:
    settings = [Setting(model_name, sampler=sp, ldp=v) for sp in SAMPLERS for v in LDPS]
    t0 = time.perf_counter()
    df = run_grid(data, settings, attacks=PAPER_ATTACKS, progress=False)
    return time.perf_counter() - t0, df


def main() -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    rows = []
    for profile in ("wear", "wetlab"):
        data = make_synthetic(profile, n_subjects=3, minutes=20, seed=0)
        windows = sum(s.n_windows for s in data.subjects.values())
        for model_name in MODELS:
            t_engine, df = engine_way(data, model_name)
            t_paper, preds = paper_way(data, model_name)
            same = _same_counts(df, preds, data)
            timing = df.attrs["timings"]
            rows.append(
                {
                    "profile": profile,
                    "model": model_name,
                    "windows": windows,
                    "updates": len(df) // len(PAPER_ATTACKS),
                    "engine s": round(t_engine, 1),
                    "paper-code s": round(t_paper, 1),
                    "ratio": round(t_paper / t_engine, 1),
                    "forward share": round(timing["client"] / t_engine, 3),
                    "forward s": timing["client"],
                    "identical counts": f"{same:.4f}",
                }
            )
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\n(a) run_grid vs (b) the paper code's loop: 3 samplers x 4 LDP variants x 5 attacks, untrained")
        print(table.drop(columns="forward s").to_string(index=False))
        print(
            f"\ntotal: engine {table['engine s'].sum():.0f} s, paper-code loop {table['paper-code s'].sum():.0f} s, "
            f"ratio {table['paper-code s'].sum() / table['engine s'].sum():.1f}x, "
            f"share of the engine's time in model passes {table['forward s'].sum() / table['engine s'].sum():.2f}"
        )
    real_size()


def _same_counts(df: pd.DataFrame, preds: list[np.ndarray], data) -> float:
    """Share of (update, attack) counts that agree between the two ways (closed form vs autograd)."""
    keyed = {}
    i = 0
    for sampler in SAMPLERS:
        for ldp in LDPS:
            for s in data.subject_ids:
                n = data.subjects[s].n_windows // 100
                for b in range(n):
                    for name in PAPER_ATTACKS:
                        keyed[sampler, _label(ldp), s, b, name] = preds[i]
                        i += 1
    hits = [np.array_equal(r.pred, keyed[r.sampler, r.ldp, r.subject, r.batch, r.attack]) for r in df.itertuples()]
    return float(np.mean(hits))


def _label(ldp) -> str:
    from leakage_core.federated import ldp_label

    return ldp_label(ldp)


def real_size(model_name: str = "deepconvlstm", slice_clients: int = 2) -> None:
    print(f"\nfull untrained single-step grid at real size ({model_name}; 3 samplers x 5 attacks, no LDP)")
    for profile, (clients, minutes) in REAL.items():
        data = make_synthetic(profile, n_subjects=slice_clients, minutes=minutes, seed=0)
        settings = [Setting(model_name, sampler=sp) for sp in SAMPLERS]
        t0 = time.perf_counter()
        run_grid(data, settings, progress=False)
        measured = time.perf_counter() - t0
        per_client = measured / slice_clients
        total = per_client * clients
        how = f"extrapolated from {slice_clients} measured clients ({measured:.0f} s)"
        if total <= 300:  # cheap enough: measure the whole grid
            data = make_synthetic(profile, n_subjects=clients, minutes=minutes, seed=0)
            t0 = time.perf_counter()
            run_grid(data, settings, progress=False)
            total, how = time.perf_counter() - t0, "measured on every client"
            per_client = total / clients
        print(
            f"  {profile}: {clients} clients x {minutes} min: {total / 60:.1f} min ({how}; "
            f"{per_client:.0f} s per client)"
        )


if __name__ == "__main__":
    main()
