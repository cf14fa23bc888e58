"""Generator statistics vs the real datasets' targets, and generation time.

Run: python benchmarks/generator_stats.py   (prints tables; asserts nothing)
"""

import time

import pandas as pd

from leakage_core.data import TARGETS, label_statistics, make_synthetic

CONFIGS = {
    "real size": dict(n_subjects=None, minutes=None),
    "book/CI size (8 x 20 min)": dict(n_subjects=8, minutes=20),
}

rows = []
for profile in TARGETS:
    for label, kw in CONFIGS.items():
        t0 = time.perf_counter()
        data = make_synthetic(profile, seed=0, **kw)
        seconds = time.perf_counter() - t0
        stats = label_statistics(data)
        for key, (real, lo, hi) in TARGETS[profile].items():
            col = "minutes" if key == "minutes_full" else key
            if key == "minutes_full" and kw["minutes"] is not None:
                continue
            value = stats[col].mean()
            rows.append(
                {
                    "profile": profile,
                    "config": label,
                    "statistic": key,
                    "real": real,
                    "band": f"[{lo}, {hi}]",
                    "synthetic": round(value, 3),
                    "in band": lo <= value <= hi,
                    "per-subject range": f"{stats[col].min():.2f}-{stats[col].max():.2f}",
                }
            )
        rows.append(
            {
                "profile": profile,
                "config": label,
                "statistic": "generation time (s)",
                "synthetic": round(seconds, 2),
                "real": None,
                "band": "",
                "in band": None,
                "per-subject range": f"{len(data.subject_ids)} subjects, "
                f"{sum(s.n_windows for s in data.subjects.values())} windows",
            }
        )

with pd.option_context("display.width", 200, "display.max_rows", 200):
    print(pd.DataFrame(rows).set_index(["profile", "config", "statistic"]).to_string())
