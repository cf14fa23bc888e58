"""What the attack test files share: a tiny model with the library's protocol and a multi-step update oracle."""

from __future__ import annotations

import numpy as np
import torch

from leakage_core.federated import LastLayerUpdate, last_layer_gradients


class LinearHead(torch.nn.Module):
    """A tiny model honouring the library's protocol: ``features`` (tanh or ReLU of one linear map) -> ``classifier``.

    Parameters are drawn from ``N(0, 0.1^2)`` with ``seed``; windows are ``(B, window_size, n_channels)``.
    """

    def __init__(
        self, n_channels: int, n_classes: int, d: int = 8, window_size: int = 50, seed: int = 0, relu: bool = False
    ) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.n_channels, self.n_classes, self.window_size, self.relu = n_channels, n_classes, window_size, relu
        self.proj = torch.nn.Linear(n_channels * window_size, d)
        self.classifier = torch.nn.Linear(d, n_classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)

    def features(self, x):
        h = self.proj(torch.as_tensor(x, dtype=torch.float32).flatten(1))
        return torch.relu(h) if self.relu else torch.tanh(h)

    def forward(self, x):
        return self.classifier(self.features(x))


def summed_update(h: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray, steps: int) -> LastLayerUpdate:
    """S-step update at fixed parameters: the sum of the per-step batch-mean gradients (FedAvg's view, lr 0.1)."""
    n = len(y)
    k = n // steps
    gw, gb = 0, 0
    for s in range(steps):
        dw, db = last_layer_gradients(h[s * k : (s + 1) * k], y[s * k : (s + 1) * k], w, b)
        gw, gb = gw + dw, gb + db
    return LastLayerUpdate(gw, gb, n, n_steps=steps, lr=0.1 if steps > 1 else None)


def largest_remainder(x: np.ndarray, n: int) -> np.ndarray:
    """Reference rounding, written apart from the module's: clip to [0, n], floor, then +1 to the largest fractional
    parts (or -1 to the smallest) until the counts sum to n."""
    x = np.clip(x, 0, n)
    c = np.floor(x).astype(int)
    frac = x - c
    while c.sum() < n:
        i = int(np.argmax(frac))
        c[i], frac[i] = c[i] + 1, -np.inf
    while c.sum() > n:
        i = min(np.flatnonzero(c > 0), key=lambda j: frac[j])
        c[i], frac[i] = c[i] - 1, frac[i] + 1
    return c
