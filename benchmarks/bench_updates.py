"""Closed-form vs autograd FedSGD updates for one client's batches (both profiles, both models).

Run: python benchmarks/bench_updates.py   (prints a table; asserts nothing)
"""

import time

import pandas as pd
import torch

from leakage_core.data import make_synthetic
from leakage_core.models import MODELS, build_model
from leakage_core.federated import make_batches
from leakage_core.federated import client_features, fedsgd_update, update_from_features

N_BATCHES, N = 20, 100
rows = []
for profile in ("wear", "wetlab"):
    data = make_synthetic(profile, n_subjects=1, minutes=20, seed=0)
    client = data.subjects[1]
    batches = make_batches(client.labels, N, "shuffle", seed=0)[:N_BATCHES]
    for name in MODELS:
        model = build_model(name, data.n_channels, data.n_classes, seed=0)
        timing = {}
        for method in ("autograd", "closed_form"):
            fedsgd_update(model, client.windows[batches[0]], client.labels[batches[0]], method=method)  # warm-up
            t0 = time.perf_counter()
            for idx in batches:
                fedsgd_update(model, client.windows[idx], client.labels[idx], method=method)
            timing[method] = (time.perf_counter() - t0) / len(batches) * 1e3
        # cached path: features of all the client's windows once (eval mode), then per-batch closed form
        t0 = time.perf_counter()
        h = client_features(model, client.windows, mode="eval")
        t_feat = time.perf_counter() - t0
        t0 = time.perf_counter()
        for idx in batches:
            update_from_features(h[idx], client.labels[idx], model)
        t_cached = (time.perf_counter() - t0) / len(batches) * 1e3
        rows.append(
            {
                "profile": profile,
                "model": name,
                "autograd ms/batch": timing["autograd"],
                "closed form ms/batch": timing["closed_form"],
                "speed-up": timing["autograd"] / timing["closed_form"],
                "features of all windows (s)": t_feat,
                "windows": client.n_windows,
                "cached closed form ms/batch": t_cached,
            }
        )

print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {N_BATCHES} batches of N={N}, train mode")
print(pd.DataFrame(rows).round(2).to_string(index=False))
