"""Training a HAR classifier on some subjects' windows (the "trained model" setting).

The paper trains each model leave-one-subject-out for 100 epochs (Adam, lr 1e-4, weight decay 1e-6,
StepLR(10, 0.9), class-weighted cross-entropy). Those are the defaults here; the book trains for
far fewer epochs so that it runs on a laptop CPU, and says so where it does.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .updates import as_batch


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency class weights (mean 1 over present classes; 0 for absent classes).

    Introduced in Chapter 3.
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    weights = np.zeros(num_classes)
    present = counts > 0
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return weights


def train_model(
    model: nn.Module,
    windows: np.ndarray,
    labels: np.ndarray,
    epochs: int = 100,
    batch_size: int = 100,
    lr: float = 1e-4,
    weight_decay: float = 1e-6,
    step_size: int = 10,
    gamma: float = 0.9,
    class_weighted: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """Train ``model`` in place with Adam on shuffled mini-batches; return the mean loss per epoch.

    Introduced in Chapter 3. Defaults follow the paper (Adam, lr 1e-4, weight decay 1e-6,
    StepLR(10, 0.9), class-weighted cross-entropy). The model is left in eval mode.

    Parameters
    ----------
    model : torch.nn.Module
        A model from :func:`leakage_core.models.build_model`.
    windows, labels : numpy.ndarray
        ``(n, T, channels)`` float32 windows and ``(n,)`` integer labels.
    epochs, batch_size, lr, weight_decay, step_size, gamma : training hyperparameters.
    class_weighted : bool
        Weight the loss by inverse class frequency (as the paper does for training).
    seed : int
        Seeds the shuffling and dropout; the global torch RNG is left untouched.
    progress : bool
        Show a tqdm progress bar over epochs.
    """
    x, y = as_batch(windows, labels)
    y_np = y.numpy()
    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be >= 1.")
    n_classes = model.classifier.out_features
    weight = torch.as_tensor(class_weights(y_np, n_classes), dtype=torch.float32) if class_weighted else None
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=step_size, gamma=gamma)
    rng = np.random.default_rng(seed)
    history: list[float] = []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model.train()
        for _ in tqdm(range(epochs), desc="training", disable=not progress):
            order = torch.as_tensor(rng.permutation(x.shape[0]))
            total, seen = 0.0, 0
            for start in range(0, x.shape[0], batch_size):
                idx = order[start : start + batch_size]
                if idx.numel() < 2:  # BatchNorm needs > 1 window
                    continue
                opt.zero_grad()
                loss = loss_fn(model(x[idx]), y[idx])
                loss.backward()
                opt.step()
                total += loss.item() * idx.numel()
                seen += idx.numel()
            sched.step()
            history.append(total / max(seen, 1))
    model.eval()
    return history


@torch.no_grad()
def predict(model: nn.Module, windows: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Class probabilities ``(n, C)`` of ``model`` in eval mode (the model's mode is restored).

    Introduced in Chapter 3.
    """
    was_training = model.training
    model.eval()
    x = torch.as_tensor(np.asarray(windows, dtype=np.float32))
    out = [torch.softmax(model(x[i : i + batch_size]), dim=1) for i in range(0, x.shape[0], batch_size)]
    model.train(was_training)
    return torch.cat(out).double().numpy()
