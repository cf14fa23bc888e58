"""Does torch's choice of CPU kernels change a trained model? Prints the differences; asserts nothing.

Run: python benchmarks/cpu_kernels.py [--epochs 2]

Trains the same DeepConvLSTM (same data, seed and configuration) once per CPU capability that this
machine supports (``ATEN_CPU_CAPABILITY=default``, ``avx2``, ``avx512``; each in its own process,
because torch reads the variable once at start-up) and prints, against the machine's own choice, the
largest weight difference, the training loss and the held-out accuracy. A difference of zero would
mean the second CI run of the trained-model chapters (``make nbval-portable``) tests nothing new.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd

CHILD = r"""
import json, sys, numpy as np, torch
from leakage_core.data import make_synthetic
from leakage_core.models import build_model
from leakage_core.models import TrainConfig, predict, train_model
torch.set_num_threads(1)
data = make_synthetic("wetlab", n_subjects=3, minutes=4, seed=0)
x, y = data.windows_of([2, 3])
model = build_model("deepconvlstm", data.n_channels, data.n_classes, seed=0)
history = train_model(model, x, y, TrainConfig(epochs=int(sys.argv[1]), lr=1e-3, seed=0), progress=False)
test = data.subjects[1]
acc = float(np.mean(predict(model, test.windows).argmax(axis=1) == test.labels))
weights = np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])
np.save(sys.argv[2], weights)
print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "loss": history[-1], "accuracy": acc}))
"""


def run(capability: str | None, epochs: int, out: str) -> dict:
    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if capability:
        env["ATEN_CPU_CAPABILITY"] = capability
    text = subprocess.run(
        [sys.executable, "-c", CHILD, str(epochs), out], env=env, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(text.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        native = run(None, args.epochs, f"{tmp}/native.npy")
        w0 = np.load(f"{tmp}/native.npy")
        rows = [{"ATEN_CPU_CAPABILITY": "(unset)", **native, "max |weight diff|": 0.0}]
        for cap in ("default", "avx2", "avx512"):
            info = run(cap, args.epochs, f"{tmp}/{cap}.npy")
            diff = float(np.abs(np.load(f"{tmp}/{cap}.npy") - w0).max())
            rows.append({"ATEN_CPU_CAPABILITY": cap, **info, "max |weight diff|": diff})
    print(f"DeepConvLSTM, {args.epochs} epoch(s) on 2 generated Wetlab-like subjects, one thread")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
