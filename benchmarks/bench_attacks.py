"""Every attack on one shuffled and one sequential batch of 100 windows: LnAcc, LeAcc and run time.

LLG* and LLG+ are timed twice: including the estimation of their impact matrix (dummy or auxiliary
windows through the model, once per call) and with the matrix precomputed, as
``leakage_core.study.experiments`` does once per client.

Untrained DeepConvLSTM and TinyHAR, both profiles, FedSGD in train mode. LLG+ gets the other
subjects' windows as auxiliary data. Run: python benchmarks/bench_attacks.py (asserts nothing).
"""

import time

import numpy as np
import pandas as pd

from leakage_core.attacks import ATTACKS, estimate_impacts
from leakage_core.data import make_synthetic
from leakage_core.metrics import le_acc, ln_acc
from leakage_core.models import MODELS, build_model
from leakage_core.federated import make_batches
from leakage_core.federated import fedsgd_update

REPEATS = 5
rows = []
for profile in ("wear", "wetlab"):
    data = make_synthetic(profile, n_subjects=3, minutes=20, seed=0)
    client = data.subjects[1]
    aux = data.windows_of([2, 3])
    for model_name in MODELS:
        model = build_model(model_name, data.n_channels, data.n_classes, seed=0)
        for sampler in ("shuffle", "sequential"):
            idx = make_batches(client.labels, 100, sampler, seed=0)[4]
            truth = np.bincount(client.labels[idx], minlength=data.n_classes)
            update = fedsgd_update(model, client.windows[idx], client.labels[idx], seed=0)
            cached = {"llg_star": estimate_impacts(model), "llg_plus": estimate_impacts(model, aux)}
            runs = [(a, a, {}) for a in ATTACKS] + [
                (f"{a} (cached impacts)", a, {"impacts": cached[a]}) for a in ("llg_star", "llg_plus")
            ]
            for attack, name, extra in runs:
                fn = ATTACKS[name]
                kw = {"model": model, "aux": aux, **extra}  # each attack uses what it needs
                times = []
                for _ in range(REPEATS):
                    t0 = time.perf_counter()
                    pred = fn(update, **kw)
                    times.append(time.perf_counter() - t0)
                rows.append(
                    {
                        "profile": profile,
                        "model": model_name,
                        "sampler": sampler,
                        "attack": attack,
                        "LnAcc": ln_acc(truth, pred),
                        "LeAcc": le_acc(truth, pred),
                        "ms/batch": 1e3 * float(np.median(times)),
                    }
                )

df = pd.DataFrame(rows)
table = df.pivot_table(index="attack", columns=["profile", "model", "sampler"], values="LnAcc")
with pd.option_context("display.width", 250, "display.max_columns", 30):
    print("LnAcc on one batch of N=100 (untrained models)")
    print(table.round(2))
    print("\nmedian run time per batch (ms), over all configurations")
    print(df.groupby("attack")["ms/batch"].median().round(2))
