"""Client updates as the server sees them: the last layer's gradients.

Pipeline stage 3 (data -> sampling -> **updates** -> attacks -> metrics).
The server only ever looks at the classifier (the last ``Linear`` layer), so
everything in this module ends in a :class:`LastLayerUpdate`.

Introduced in Chapter 3 (the structure of last-layer gradients).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LastLayerUpdate:
    """What an honest-but-curious server sees of a client's classifier update.

    Introduced in Chapter 3.

    Parameters
    ----------
    weight_grad : numpy.ndarray
        ``(C, d)`` gradient of the loss w.r.t. the classifier weight. For a
        multi-step (FedAvg) update this is the attacker's view
        ``-delta_W / lr``, i.e. the *sum* of the per-step batch-mean gradients.
    bias_grad : numpy.ndarray
        ``(C,)`` gradient w.r.t. the classifier bias (same convention).
    n_windows : int
        ``N``, the number of windows the update was computed on.
    n_steps : int, default 1
        ``S``, the number of local SGD steps (1 = FedSGD).
    lr : float or None
        Local learning rate for FedAvg updates (``None`` for FedSGD).

    Raises
    ------
    ValueError
        On inconsistent shapes, ``N < 1``, ``S < 1``, ``N`` not divisible by
        ``S`` or non-finite gradients.
    """

    weight_grad: np.ndarray
    bias_grad: np.ndarray
    n_windows: int
    n_steps: int = 1
    lr: float | None = None

    def __post_init__(self) -> None:
        w = np.asarray(self.weight_grad, dtype=np.float64)
        b = np.asarray(self.bias_grad, dtype=np.float64)
        if w.ndim != 2:
            raise ValueError(
                f"weight_grad must be a (C, d) matrix, got shape {w.shape}; "
                "pass the classifier weight gradient, not a flattened vector."
            )
        if b.ndim != 1 or b.shape[0] != w.shape[0]:
            raise ValueError(
                f"bias_grad has shape {b.shape} but weight_grad has {w.shape[0]} rows; "
                "both must come from the same classifier (C classes)."
            )
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise ValueError(
                "the update contains NaN or inf gradients; check the client's loss "
                "(learning rate, input scaling) before attacking it."
            )
        n, s = int(self.n_windows), int(self.n_steps)
        if n != self.n_windows or n < 1:
            raise ValueError(f"n_windows must be a positive integer, got {self.n_windows!r}.")
        if s != self.n_steps or s < 1:
            raise ValueError(f"n_steps must be a positive integer, got {self.n_steps!r}.")
        if n % s:
            raise ValueError(
                f"n_windows={n} is not divisible by n_steps={s}; FedAvg splits the N "
                "windows into S equal local mini-batches."
            )
        if self.lr is not None and not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive finite number or None, got {self.lr!r}.")
        w.setflags(write=False)
        b.setflags(write=False)
        object.__setattr__(self, "weight_grad", w)
        object.__setattr__(self, "bias_grad", b)
        object.__setattr__(self, "n_windows", n)
        object.__setattr__(self, "n_steps", s)

    @property
    def num_classes(self) -> int:
        """``C``, the number of classes (rows of the classifier)."""
        return int(self.weight_grad.shape[0])

    @property
    def feature_dim(self) -> int:
        """``d``, the size of the features feeding the classifier."""
        return int(self.weight_grad.shape[1])

    @property
    def step_size(self) -> int:
        """Windows per local step, ``N / S``."""
        return self.n_windows // self.n_steps


def last_layer_gradients(
    features: np.ndarray,
    labels: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form last-layer gradients of the mean cross-entropy loss.

    Introduced in Chapter 3, equations I1 and I2::

        P = softmax(H W^T + b),   dW = (P - Y)^T H / N,   db = mean_k (P_k - Y_k)

    Parameters
    ----------
    features : numpy.ndarray
        ``(N, d)`` features ``H`` feeding the classifier.
    labels : numpy.ndarray
        ``(N,)`` integer class labels in ``[0, C)``.
    weight, bias : numpy.ndarray
        Classifier parameters, ``(C, d)`` and ``(C,)``.

    Returns
    -------
    (dW, db) : tuple of numpy.ndarray
        ``(C, d)`` and ``(C,)`` float64 gradients.
    """
    h = np.asarray(features, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    y = np.asarray(labels)
    if h.ndim != 2 or w.ndim != 2 or h.shape[1] != w.shape[1]:
        raise ValueError(
            f"features {h.shape} and weight {w.shape} do not fit: expected (N, d) and (C, d)."
        )
    if b.shape != (w.shape[0],):
        raise ValueError(f"bias has shape {b.shape}, expected ({w.shape[0]},).")
    if y.shape != (h.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be N={h.shape[0]} integers, got shape {y.shape} dtype {y.dtype}.")
    if h.shape[0] == 0:
        raise ValueError("no windows given: a gradient needs N >= 1.")
    c = w.shape[0]
    if y.min() < 0 or y.max() >= c:
        raise ValueError(f"labels must lie in [0, {c}); got range [{y.min()}, {y.max()}].")
    z = h @ w.T + b
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(h.shape[0]), y] -= 1.0
    n = h.shape[0]
    return p.T @ h / n, p.mean(axis=0)


# --------------------------------------------------------------------------------------------
# Building updates from a model and a batch
#
# Model mode (stated in Chapter 3): a client computes its update in **train mode** by default,
# exactly as local training does — dropout active, BatchNorm normalising with the batch's own
# statistics. ``mode="eval"`` is available. Dropout masks are drawn from a seeded, forked RNG, so
# the global torch RNG is not consumed and the model's own train/eval flag is restored.
# --------------------------------------------------------------------------------------------

MODES: tuple[str, ...] = ("train", "eval")


@dataclass(frozen=True)
class LDP:
    """Local differential privacy applied by the client to its update (Chapter 8).

    Parameters
    ----------
    sigma : float or None
        Standard deviation of the i.i.d. Gaussian noise added to every element (absolute scale).
    rho : float or None
        L2 clipping bound: the update is scaled by ``min(1, rho / ||g||)``.
    scope : {"last_layer", "all"}
        Norm used for clipping: the last layer only (the paper's text) or all layers (the paper's code).
    """

    sigma: float | None = None
    rho: float | None = None
    scope: str = "last_layer"

    def __post_init__(self) -> None:
        for name in ("sigma", "rho"):
            v = getattr(self, name)
            if v is not None and not (np.isfinite(v) and v > 0):
                raise ValueError(f"LDP {name} must be a positive number or None, got {v!r}.")
        if self.scope not in ("last_layer", "all"):
            raise ValueError(f"LDP scope must be 'last_layer' or 'all', got {self.scope!r}.")


def as_batch(windows, labels):
    """Validated ``(float32 windows, long labels)`` torch tensors of one batch.

    Introduced in Chapter 3; shared by the update builders and :func:`leakage_core.training.train_model`.
    """
    import torch

    x = torch.as_tensor(np.asarray(windows, dtype=np.float32))
    y_np = np.asarray(labels)
    if y_np.ndim != 1 or not np.issubdtype(y_np.dtype, np.integer):
        raise ValueError(
            f"labels must be a 1-D integer array (dtype {y_np.dtype} given); cross-entropy needs class "
            "indices: cast with labels.astype('int64')."
        )
    if x.shape[0] != y_np.shape[0] or x.shape[0] == 0:
        raise ValueError(f"{x.shape[0]} windows but {y_np.shape[0]} labels; pass a non-empty, matching batch.")
    return x, torch.as_tensor(y_np, dtype=torch.long)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")


@contextmanager
def _client_mode(model, mode: str, seed: int):
    """Run the server's model as a client would, then put everything back.

    Sets train/eval mode, seeds dropout on a forked RNG (the global torch RNG is untouched) and
    restores the model's mode and its buffers afterwards: a train-mode forward pass would otherwise
    move the server's BatchNorm running statistics.
    """
    import torch

    _check_mode(mode)
    was_training = model.training
    buffers = [b.detach().clone() for b in model.buffers()]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.train(mode == "train")
        try:
            yield model
        finally:
            model.train(was_training)
            with torch.no_grad():
                for b, saved in zip(model.buffers(), buffers):
                    b.copy_(saved)


def _classifier_arrays(model) -> tuple[np.ndarray, np.ndarray]:
    clf = model.classifier
    return clf.weight.detach().double().numpy(), clf.bias.detach().double().numpy()


def update_from_features(features: np.ndarray, labels: np.ndarray, model) -> LastLayerUpdate:
    """FedSGD update of the classifier from precomputed features (no forward pass).

    Introduced in Chapter 3. ``model`` supplies the classifier's current weight and bias.
    """
    w, b = _classifier_arrays(model)
    dw, db = last_layer_gradients(features, np.asarray(labels), w, b)
    return LastLayerUpdate(dw, db, n_windows=len(labels))


def client_features(model, windows: np.ndarray, mode: str = "eval", batch_size: int = 512, seed: int = 0) -> np.ndarray:
    """Classifier-input features ``(n, d)`` of all of a client's windows, in chunks, without gradients.

    Introduced in Chapter 3. Caching these and slicing per batch is exact in eval mode. In train
    mode it is exact in distribution for dropout (a fresh mask per window) but **not** for BatchNorm
    (TinyHAR), whose train-mode output depends on which windows share a batch.
    """
    import torch

    x = torch.as_tensor(np.asarray(windows, dtype=np.float32))
    out = []
    with _client_mode(model, mode, seed), torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            out.append(model.features(x[i : i + batch_size]).double())
    return torch.cat(out).numpy() if out else np.zeros((0, model.classifier.in_features))


def fedsgd_update(
    model,
    windows: np.ndarray,
    labels: np.ndarray,
    mode: str = "train",
    method: str = "closed_form",
    seed: int = 0,
    ldp: LDP | None = None,
) -> LastLayerUpdate:
    """The classifier part of a client's FedSGD update on one batch (mean cross-entropy).

    Introduced in Chapter 3.

    Parameters
    ----------
    model : torch.nn.Module
        The server's model; it is not modified (its train/eval flag is restored).
    windows, labels : array-like
        ``(N, T, channels)`` windows and ``(N,)`` integer labels.
    mode : {"train", "eval"}
        Model mode of the client's forward pass (default: train, as in local training).
    method : {"closed_form", "autograd"}
        ``closed_form``: one forward pass without gradients, then equations I1/I2 (fast);
        ``autograd``: a full backward pass. Both give the same update (tested).
    seed : int
        Seed of the dropout masks.
    ldp : LDP or None
        Local DP to apply to the update; ``scope="all"`` computes the other layers' gradient norm
        by autograd (whatever ``method`` says).
    """
    import torch

    _check_mode(mode)
    if method not in ("closed_form", "autograd"):
        raise ValueError(f"method must be 'closed_form' or 'autograd', got {method!r}.")
    x, y = as_batch(windows, labels)
    needs_full = method == "autograd" or (ldp is not None and ldp.scope == "all" and ldp.rho is not None)
    rest_sq = 0.0
    with _client_mode(model, mode, seed):
        if needs_full:
            params = [p for p in model.parameters() if p.requires_grad]
            loss = torch.nn.functional.cross_entropy(model(x), y)
            grads = torch.autograd.grad(loss, params)
            by_param = dict(zip([id(p) for p in params], grads))
            gw = by_param[id(model.classifier.weight)].double().numpy()
            gb = by_param[id(model.classifier.bias)].double().numpy()
            last = {id(model.classifier.weight), id(model.classifier.bias)}
            rest_sq = float(sum(float((g.double() ** 2).sum()) for p, g in zip(params, grads) if id(p) not in last))
            update = LastLayerUpdate(gw, gb, n_windows=x.shape[0])
        else:
            with torch.no_grad():
                h = model.features(x).double().numpy()
            update = update_from_features(h, y.numpy(), model)
    if ldp is not None:
        update = privatize(update, ldp, seed=seed, rest_sq_norm=rest_sq)
    return update


def fedavg_update(
    model,
    windows: np.ndarray,
    labels: np.ndarray,
    n_steps: int,
    lr: float,
    mode: str = "train",
    seed: int = 0,
    ldp: LDP | None = None,
) -> LastLayerUpdate:
    """A FedAvg client update: ``S`` local SGD steps on consecutive chunks of ``N/S`` windows.

    Introduced in Chapter 3 (used from Chapter 8 on). The client trains a copy of the model with
    plain SGD (no momentum, no weight decay) and sends ``delta = theta_S - theta_0``; the attacker's
    view returned here is ``G = -delta / lr = sum_s grad_s``, the *sum* of the per-step batch-mean
    gradients, each taken at the parameters of that step. ``ldp`` is applied to ``G`` (for
    ``scope="all"`` the clipping norm includes every layer's ``-delta/lr``).
    """
    import copy

    import torch

    _check_mode(mode)
    x, y = as_batch(windows, labels)
    n = x.shape[0]
    if int(n_steps) != n_steps or n_steps < 1 or n % n_steps:
        raise ValueError(f"n_steps={n_steps!r} must be a positive integer dividing N={n} (equal local batches).")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}.")
    client = copy.deepcopy(model)
    start = [p.detach().clone() for p in client.parameters()]
    opt = torch.optim.SGD(client.parameters(), lr=lr)
    step = n // n_steps
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        client.train(mode == "train")
        for s in range(n_steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(client(x[s * step : (s + 1) * step]), y[s * step : (s + 1) * step]).backward()
            opt.step()
    with torch.no_grad():
        g = {id(p): ((p0 - p.detach()) / lr).double() for p, p0 in zip(client.parameters(), start)}
    gw = g[id(client.classifier.weight)].numpy()
    gb = g[id(client.classifier.bias)].numpy()
    last = {id(client.classifier.weight), id(client.classifier.bias)}
    rest_sq = float(sum(float((v**2).sum()) for k, v in g.items() if k not in last))
    update = LastLayerUpdate(gw, gb, n_windows=n, n_steps=int(n_steps), lr=float(lr))
    if ldp is not None:
        update = privatize(update, ldp, seed=seed, rest_sq_norm=rest_sq)
    return update


def privatize(update: LastLayerUpdate, ldp: LDP, seed: int = 0, rest_sq_norm: float = 0.0) -> LastLayerUpdate:
    """Clip, then add Gaussian noise to, the last-layer update (local DP as in the paper).

    Introduced in Chapter 8. Clipping scales weight and bias gradients jointly by
    ``min(1, rho / ||g||)`` where ``||g||`` is the last layer's L2 norm (``scope="last_layer"``) or
    includes ``rest_sq_norm``, the squared norm of all other layers (``scope="all"``). Noise is i.i.d.
    ``N(0, sigma^2)`` per element, from a seeded generator.
    """
    if not isinstance(ldp, LDP):
        raise ValueError("ldp must be an leakage_core.updates.LDP(sigma=..., rho=..., scope=...).")
    if rest_sq_norm < 0:
        raise ValueError("rest_sq_norm is a squared norm and cannot be negative.")
    w, b = update.weight_grad.copy(), update.bias_grad.copy()
    if ldp.rho is not None:
        sq = float((w**2).sum() + (b**2).sum())
        if ldp.scope == "all":
            sq += rest_sq_norm
        norm = np.sqrt(sq)
        factor = min(1.0, ldp.rho / norm) if norm > 0 else 1.0
        w, b = w * factor, b * factor
    if ldp.sigma is not None:
        rng = np.random.default_rng(seed)
        w = w + rng.normal(0.0, ldp.sigma, size=w.shape)
        b = b + rng.normal(0.0, ldp.sigma, size=b.shape)
    return LastLayerUpdate(w, b, update.n_windows, update.n_steps, update.lr)
