"""The client side: FedSGD and FedAvg updates of a torch model, and classifier-input features.

Part of pipeline stage 2 (:mod:`leakage_core.federated`). Contract: everything here runs the server's model
as a client would, leaves the model as it was (parameters, buffers, train/eval flag, the global torch RNG),
and ends in a :class:`~leakage_core.federated.update.LastLayerUpdate`; torch is imported on first use.
Reference: FedSGD and FedAvg as in H. B. McMahan et al., "Communication-Efficient Learning of Deep Networks
from Decentralized Data", AISTATS 2017. Chapter 3 introduces it.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace

import numpy as np

from ..data.scaling import check_scaling, scale_batch
from .ldp import LDP, privatize
from .update import LastLayerUpdate, last_layer_gradients

# --------------------------------------------------------------------------------------------
# Building updates from a model and a batch
#
# Model mode (stated in Chapter 3): a client computes its update in **train mode** by default,
# exactly as local training does — dropout active, BatchNorm normalising with the batch's own
# statistics. ``mode="eval"`` is available. Dropout masks are drawn from a seeded, forked RNG, so
# the global torch RNG is not consumed and the model's own train/eval flag is restored.
# --------------------------------------------------------------------------------------------

MODES: tuple[str, ...] = ("train", "eval")


def as_batch(windows, labels):
    """Validated ``(float32 windows, long labels)`` torch tensors of one batch.

    Shared by the update builders and :func:`leakage_core.models.train_model`.
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
def client_mode(model, mode: str, seed: int):
    """Run the server's model as a client would, then put everything back (a context manager).

    Not used in a chapter yet.

    Sets train/eval mode (``mode``: ``"train"`` or ``"eval"``), seeds dropout with ``seed`` on a forked RNG (the
    global torch RNG is untouched) and restores the model's mode and its buffers afterwards: a train-mode forward
    pass would otherwise move the server's BatchNorm running statistics. Every client computation of the package
    (the update builders here, DP-SGD's per-window gradients) runs inside it.
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


def model_classifier(model) -> tuple[np.ndarray, np.ndarray]:
    """The model's classifier weight ``(C, d)`` and bias ``(C,)`` as float64 numpy arrays (on the CPU).

    Introduced in Chapter 15.

    The one conversion of the last layer (``model.classifier``, a ``torch.nn.Linear``) to numpy: the client's
    closed form and every attack that needs the server's model use it. A classifier without bias
    (``bias=False``) gives a zero bias: its scores are ``H W^T``, exactly as with a bias fixed at 0.
    """
    if model is None:
        raise ValueError("model is None, but this needs the server's model: pass model=<the model the client trained>.")
    clf = getattr(model, "classifier", None)
    if clf is None or getattr(clf, "weight", None) is None or getattr(clf.weight, "ndim", 0) != 2:
        raise ValueError(
            "model must expose its last layer as model.classifier (a torch.nn.Linear); "
            "build it with leakage_core.models.build_model."
        )
    w = clf.weight.detach().double().cpu().numpy()
    b = np.zeros(w.shape[0]) if getattr(clf, "bias", None) is None else clf.bias.detach().double().cpu().numpy()
    return w, b


def has_bias(model) -> bool:
    """Whether the model's classifier has a bias (``build_model(..., bias=False)`` builds one without)."""
    return getattr(getattr(model, "classifier", None), "bias", None) is not None


def update_from_features(
    features: np.ndarray, labels: np.ndarray, model, class_weights: np.ndarray | None = None
) -> LastLayerUpdate:
    """FedSGD update of the classifier from precomputed features (no forward pass).

    Introduced in Chapter 3. ``model`` supplies the classifier's current weight and bias. ``class_weights``
    (``(C,)``, optional) gives the update of the class-weighted cross-entropy (:func:`weighted_last_layer_gradients`).
    """
    w, b = model_classifier(model)
    if class_weights is None:
        dw, db = last_layer_gradients(features, np.asarray(labels), w, b)
    else:
        dw, db = weighted_last_layer_gradients(features, np.asarray(labels), w, b, class_weights)
    return LastLayerUpdate(dw, db if has_bias(model) else None, n_windows=len(labels))


def check_class_weights(class_weights, n_classes: int) -> np.ndarray:
    """``class_weights`` as ``(C,)`` float64 finite non-negative weights, or one clear ``ValueError``."""
    cw = np.asarray(class_weights, dtype=np.float64)
    if cw.shape != (n_classes,) or not np.all(np.isfinite(cw)) or np.any(cw < 0):
        raise ValueError(
            f"class_weights must be {n_classes} finite non-negative numbers (one per class), got {class_weights!r}."
        )
    return cw


def weighted_last_layer_gradients(
    features: np.ndarray, labels: np.ndarray, weight: np.ndarray, bias: np.ndarray, class_weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form last-layer gradients of the class-weighted mean cross-entropy.

    PyTorch's ``nn.CrossEntropyLoss(weight=w)`` with ``reduction="mean"`` divides the weighted sum of the
    windows' losses by the sum of their weights, ``sum_i w_{y_i} CE_i / sum_j w_{y_j}`` (its documentation,
    docs.pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html). So every window enters with the
    coefficient ``a_i = w_{y_i} / sum_j w_{y_j}`` in place of ``1/N``::

        P = softmax(H W^T + b),   dW = (P - Y)^T diag(a) H,   db = sum_i a_i (P_i - Y_i)

    (the unweighted identities I1/I2 of :func:`~leakage_core.federated.update.last_layer_gradients` are the case
    ``w = 1``). A batch of classes of weight 0 only has no weighted loss (PyTorch returns NaN): ``ValueError``.
    """
    h = np.asarray(features, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    y = np.asarray(labels)
    ok = h.ndim == 2 and w.ndim == 2 and h.shape[1] == w.shape[1] and h.shape[0] > 0 and y.shape == (h.shape[0],)
    if not (ok and np.issubdtype(y.dtype, np.integer) and 0 <= y.min() and y.max() < w.shape[0]):
        raise ValueError(
            f"features {h.shape}, weight {w.shape} and labels {y.shape} do not fit: expected (N, d), (C, d) and "
            "N >= 1 integer labels in [0, C)."
        )
    if np.shape(bias) != (w.shape[0],):
        raise ValueError(f"bias has shape {np.shape(bias)}, expected ({w.shape[0]},).")
    a = check_class_weights(class_weights, w.shape[0])[y]
    if a.sum() <= 0:
        raise ValueError(
            "every window of the batch belongs to a class of weight 0: the class-weighted loss is undefined "
            "(0/0; PyTorch returns NaN). Give those classes a positive weight."
        )
    a = a / a.sum()
    z = h @ w.T + np.asarray(bias, dtype=np.float64)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(h.shape[0]), y] -= 1.0
    return (p * a[:, None]).T @ h, a @ p


def record_defense(update: LastLayerUpdate, public: dict | None) -> LastLayerUpdate:
    """``update`` recording the defence it was computed under (``LastLayerUpdate.defense``, its ``public()``)."""
    return replace(update, defense=public)


def client_features(model, windows: np.ndarray, mode: str = "eval", batch_size: int = 512, seed: int = 0) -> np.ndarray:
    """Classifier-input features ``(n, d)`` of all of a client's windows, in chunks, without gradients.

    Introduced in Chapter 3. Caching these and slicing per batch is exact in eval mode. In train
    mode it is exact in distribution for dropout (a fresh mask per window) but **not** for BatchNorm
    (TinyHAR), whose train-mode output depends on which windows share a batch.
    """
    import torch

    x = torch.as_tensor(np.asarray(windows, dtype=np.float32))
    out = []
    with client_mode(model, mode, seed), torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            out.append(model.features(x[i : i + batch_size]).double())
    return torch.cat(out).numpy() if out else np.zeros((0, model.classifier.in_features))


def client_update(
    model,
    windows: np.ndarray,
    labels: np.ndarray,
    n_steps: int = 1,
    lr: float | None = None,
    mode: str = "train",
    seed: int = 0,
    scaling: str = "none",
    method: str = "closed_form",
    rest_norm: bool = False,
    class_weights: np.ndarray | None = None,
) -> tuple[LastLayerUpdate, float | None]:
    """A client's clean (un-privatized) update and, when asked, the squared norm of its other layers.

    Introduced in Chapter 16.

    The study builds each batch's update once with this and derives every LDP variant from it
    (:func:`leakage_core.federated.privatize`). ``n_steps == 1`` gives FedSGD: one forward pass and the closed
    form (``method="closed_form"``, the default), or a full backward pass (``method="autograd"``, or
    whenever ``rest_norm=True``, since the other layers' gradient is then needed). ``n_steps > 1``
    gives FedAvg (``lr`` required): ``S`` local SGD steps, attacker's view ``-delta/lr``; the other
    layers' norm comes for free there.

    Parameters
    ----------
    model : torch.nn.Module
        The server's model (not modified).
    windows, labels : array-like
        ``(N, T, channels)`` windows and ``(N,)`` integer labels of one batch.
    n_steps, lr : int, float
        Local steps ``S`` and local learning rate (FedAvg only).
    mode : {"train", "eval"}
        Model mode of the client's forward passes.
    seed : int
        Seed of the dropout masks.
    scaling : {"none", "batch_minmax"}
        Input scaling applied to every forward pass's input (see :func:`leakage_core.data.scale_batch`);
        in FedAvg each local step's mini-batch is scaled on its own.
    method : {"closed_form", "autograd"}
        FedSGD only: how the last-layer gradient is computed (both equal; tested).
    rest_norm : bool
        Also return the squared L2 norm of every other layer's (summed) gradient, for LDP clipping on
        all layers; ``None`` is returned in its place when not asked for (FedSGD, closed form).
    class_weights : array-like, optional
        ``(C,)`` weights of a class-weighted cross-entropy (``nn.CrossEntropyLoss(weight=...)``, mean
        reduction) in place of the plain mean; the closed form is :func:`weighted_last_layer_gradients`.

    Returns
    -------
    (LastLayerUpdate, float or None)
    """
    check_scaling(scaling)
    if method not in ("closed_form", "autograd"):
        raise ValueError(f"method must be 'closed_form' or 'autograd', got {method!r}.")
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}.")
    if n_steps > 1:
        if lr is None:
            raise ValueError("a multi-step (FedAvg) update needs the local learning rate lr.")
        return _fedavg(
            model, windows, labels, int(n_steps), lr, mode=mode, seed=seed, scaling=scaling, class_weights=class_weights
        )
    autograd = method == "autograd" or rest_norm
    return _fedsgd(
        model, windows, labels, mode=mode, seed=seed, scaling=scaling, autograd=autograd, class_weights=class_weights
    )


def _loss_weight(model, class_weights):
    """The ``weight=`` of ``torch.nn.functional.cross_entropy`` (float32 tensor) or None."""
    import torch

    if class_weights is None:
        return None
    cw = check_class_weights(class_weights, int(model.classifier.out_features))
    return torch.as_tensor(cw, dtype=model.classifier.weight.dtype)


def _fedsgd(
    model, windows, labels, *, mode: str, seed: int, scaling: str, autograd: bool, class_weights=None
) -> tuple[LastLayerUpdate, float | None]:
    import torch

    _check_mode(mode)
    x, y = as_batch(scale_batch(windows, scaling), labels)
    weight = _loss_weight(model, class_weights)
    with client_mode(model, mode, seed):
        if not autograd:
            with torch.no_grad():
                h = model.features(x).double().numpy()
            return update_from_features(h, y.numpy(), model, class_weights), None
        params = [p for p in model.parameters() if p.requires_grad]
        loss = torch.nn.functional.cross_entropy(model(x), y, weight=weight)
        grads = torch.autograd.grad(loss, params)
    last = {id(p) for p in model.classifier.parameters()}
    by_param = dict(zip([id(p) for p in params], grads))
    gw = by_param[id(model.classifier.weight)].double().numpy()
    gb = by_param[id(model.classifier.bias)].double().numpy() if has_bias(model) else None
    rest_sq = float(sum(float((g.double() ** 2).sum()) for p, g in zip(params, grads) if id(p) not in last))
    return LastLayerUpdate(gw, gb, n_windows=x.shape[0]), rest_sq


def _fedavg(
    model, windows, labels, n_steps: int, lr: float, *, mode: str, seed: int, scaling: str, class_weights=None
) -> tuple[LastLayerUpdate, float]:
    import copy

    import torch

    _check_mode(mode)
    x, y = as_batch(windows, labels)
    n = x.shape[0]
    if n % n_steps:
        raise ValueError(f"n_steps={n_steps!r} must be a positive integer dividing N={n} (equal local batches).")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}.")
    weight = _loss_weight(model, class_weights)
    client = copy.deepcopy(model)
    start = [p.detach().clone() for p in client.parameters()]
    opt = torch.optim.SGD(client.parameters(), lr=lr)
    step = n // n_steps
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        client.train(mode == "train")
        for s in range(n_steps):
            xs = x[s * step : (s + 1) * step]
            if scaling != "none":
                xs = torch.as_tensor(scale_batch(xs.numpy(), scaling))
            opt.zero_grad()
            torch.nn.functional.cross_entropy(client(xs), y[s * step : (s + 1) * step], weight=weight).backward()
            opt.step()
    with torch.no_grad():
        g = {id(p): ((p0 - p.detach()) / lr).double() for p, p0 in zip(client.parameters(), start)}
    gw = g[id(client.classifier.weight)].numpy()
    gb = g[id(client.classifier.bias)].numpy() if has_bias(client) else None
    last = {id(p) for p in client.classifier.parameters()}
    rest_sq = float(sum(float((v**2).sum()) for k, v in g.items() if k not in last))
    return LastLayerUpdate(gw, gb, n_windows=n, n_steps=n_steps, lr=float(lr)), rest_sq


def fedsgd_update(
    model,
    windows: np.ndarray,
    labels: np.ndarray,
    mode: str = "train",
    method: str = "closed_form",
    seed: int = 0,
    ldp: LDP | None = None,
    scaling: str = "none",
) -> LastLayerUpdate:
    """The classifier part of a client's FedSGD update on one batch (mean cross-entropy).

    Introduced in Chapter 1.

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
        Seed of the dropout masks (and of the LDP noise).
    ldp : LDP or None
        Local DP to apply to the update; ``scope="all"`` with clipping computes the other layers'
        gradient norm by autograd (whatever ``method`` says).
    scaling : {"none", "batch_minmax"}
        Input scaling before the forward pass (:func:`leakage_core.data.scale_batch`).
    """
    needs_rest = ldp is not None and ldp.scope == "all" and ldp.rho is not None
    update, rest_sq = client_update(
        model, windows, labels, mode=mode, seed=seed, scaling=scaling, method=method, rest_norm=needs_rest
    )
    return update if ldp is None else privatize(update, ldp, seed=seed, rest_sq_norm=rest_sq)


def fedavg_update(
    model,
    windows: np.ndarray,
    labels: np.ndarray,
    n_steps: int,
    lr: float,
    mode: str = "train",
    seed: int = 0,
    ldp: LDP | None = None,
    scaling: str = "none",
) -> LastLayerUpdate:
    """A FedAvg client update: ``S`` local SGD steps on consecutive chunks of ``N/S`` windows.

    Introduced in Chapter 5. The client trains a copy of the model with
    plain SGD (no momentum, no weight decay) and sends ``delta = theta_S - theta_0``; the attacker's
    view returned here is ``G = -delta / lr = sum_s grad_s``, the *sum* of the per-step batch-mean
    gradients, each taken at the parameters of that step. ``ldp`` is applied to ``G`` (for
    ``scope="all"`` the clipping norm includes every layer's ``-delta/lr``). ``scaling`` is applied to
    each local step's mini-batch.
    """
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps={n_steps!r} must be a positive integer dividing N (equal local batches).")
    update, rest_sq = _fedavg(
        model, windows, labels, int(n_steps), lr, mode=mode, seed=seed, scaling=check_scaling(scaling)
    )
    return update if ldp is None else privatize(update, ldp, seed=seed, rest_sq_norm=rest_sq)
