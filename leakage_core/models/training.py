"""Training a HAR classifier, and the cached leave-one-subject-out (LOSO) models that the attacks target.

Contract:

- :class:`TrainConfig` holds every hyperparameter and checks it; the defaults are the paper's.
- :func:`train_model` trains a model in place and returns the mean loss per epoch; with ``state_path``
  it saves its full state after every epoch, and a resumed run equals an uninterrupted one bit for bit.
  ``TrainConfig(defense=...)`` trains under a client-side defence (:mod:`leakage_core.defenses`): its
  labels, its configuration, its own loop (DP-SGD) or its change of every step's gradient.
- :func:`fold_model` returns the LOSO model of one held-out (attacked) subject, never trained on it,
  trained once and kept as a checkpoint (:func:`checkpoint_path`, :func:`read_checkpoint_info`); a
  longer run of the same fold continues a shorter one (:func:`fold_snapshots`).

Reference: M. Bock, M. Hopp, K. Van Laerhoven and M. Moeller, "Label Leakage in Federated Inertial-based
Human Activity Recognition" (2025): LOSO models trained for 100 epochs with Adam (lr 1e-4, weight decay
1e-6), StepLR(10, 0.9) and unweighted cross-entropy (its Limitations section).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
import warnings
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..cache import CorruptCacheError, atomic_write, cache_root, stable_hash
from ..data.scaling import check_scaling, scale_batch
from ..defenses.accounting import DEFAULT_DELTA
from ..defenses.base import Defense, defense_from_key

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..data.dataset import HARDataset

#: format tag of the files written by :func:`fold_model` and by ``train_model(state_path=...)``
CHECKPOINT_FORMAT = "leakage_core.fold_model/1"
STATE_FORMAT = "leakage_core.train_state/1"


# --------------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------------
def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")


def _check_float(name: str, value: Any, low: float, strict: bool, high: float | None = None) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value > low if strict else value >= low)
    ok = ok and (high is None or value <= high)
    if not ok:
        bound = f"{'>' if strict else '>='} {low}" + (f" and <= {high}" if high is not None else "")
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run; the defaults are the paper's.

    Introduced in Chapter 3. Every field is checked on creation (a clear ``ValueError`` names the
    field); ``config.as_dict()`` is part of every checkpoint's cache key.

    Attributes
    ----------
    epochs : int
        Passes over the training windows (paper: 100).
    batch_size : int
        Windows per mini-batch (paper: 100); at least 2, because BatchNorm needs more than one window.
    lr, weight_decay : float
        Adam's learning rate (1e-4) and weight decay (1e-6).
    step_size, gamma : int, float
        StepLR: multiply the learning rate by ``gamma`` (0.9) every ``step_size`` (10) epochs.
    class_weighted : bool
        Weight the cross-entropy by inverse class frequency. ``False`` (default) is the paper's
        deliberate choice; ``True`` is the variant that makes rare classes leak more.
    scaling : {"none", "batch_minmax"}
        Input scaling of every mini-batch before the forward pass (see
        :func:`leakage_core.data.scale_batch`); ``"batch_minmax"`` is what the paper's code does.
    seed : int
        Seeds the initialisation (in :func:`fold_model`), the shuffling and dropout.
    defense : Defense or None
        A client-side defence applied in training (:mod:`leakage_core.defenses`; ``None``: none). It enters
        ``as_dict()`` (as its ``key()``) only when given, so configurations without one keep their cache keys.
        One that cannot act in training (its ``check_as_defense``: e.g. ``LDP(scope="all")`` with clipping)
        raises ``ValueError``.
    """

    epochs: int = 100
    batch_size: int = 100
    lr: float = 1e-4
    weight_decay: float = 1e-6
    step_size: int = 10
    gamma: float = 0.9
    class_weighted: bool = False
    scaling: str = "none"
    seed: int = 0
    defense: Defense | None = None

    def __post_init__(self) -> None:
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 2)
        _check_float("lr", self.lr, 0.0, strict=True)
        _check_float("weight_decay", self.weight_decay, 0.0, strict=False)
        _check_int("step_size", self.step_size, 1)
        _check_float("gamma", self.gamma, 0.0, strict=True, high=1.0)
        if not isinstance(self.class_weighted, (bool, np.bool_)):
            raise ValueError(f"class_weighted must be True or False, got {self.class_weighted!r}.")
        check_scaling(self.scaling)
        _check_int("seed", self.seed, 0)
        if self.defense is not None and not isinstance(self.defense, Defense):
            raise ValueError(
                f"defense must be a leakage_core.defenses.Defense or None, got {type(self.defense).__name__}; "
                "build one with leakage_core.defenses.make_defense(name, **options)."
            )
        if self.defense is not None:
            self.defense.check_as_defense()  # e.g. LDP(scope="all") with clipping: refused here, not mid-training

    def as_dict(self) -> dict[str, Any]:
        """The fields as plain Python values (JSON-serialisable; the cache key's view of the config).

        ``defense`` appears (as the defence's ``key()``) only when there is one.
        """
        out = {
            f.name: (v.item() if isinstance(v, np.generic) else v)
            for f in fields(self)
            if f.name != "defense"
            for v in [getattr(self, f.name)]
        }
        if self.defense is not None:
            out["defense"] = self.defense.key()
        return out


def class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse-frequency class weights ``w_c = N / (K n_c)`` (``N`` windows, ``n_c`` of class ``c``, ``K`` classes
    present; 0 for absent classes).

    Introduced in Chapter 16.

    Weighted by the class counts the mean weight is 1 (``sum_c n_c w_c / N = 1``: every window's average weight is
    1); the plain mean over the present classes is not 1 in general (labels ``[0, 1, 1, 1]``: weights 2 and 2/3,
    class mean 4/3).
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
    weights = np.zeros(n_classes)
    present = counts > 0
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return weights


# --------------------------------------------------------------------------------------------------
# train_model
# --------------------------------------------------------------------------------------------------
def _n_classes(model: nn.Module) -> int:
    classifier = getattr(model, "classifier", None)
    if not isinstance(classifier, nn.Linear):
        raise TypeError(
            "model must end in a `classifier` nn.Linear layer; build it with leakage_core.models.build_model."
        )
    return int(classifier.out_features)


def _check_training_data(windows: Any, labels: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(float32 (n, T, ch) windows, int64 (n,) labels)`` or a clear ``ValueError``."""
    x = np.ascontiguousarray(np.asarray(windows, dtype=np.float32))
    y = np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"labels must be a 1-D integer array (dtype {y.dtype}, shape {y.shape} given); "
            "cross-entropy needs class indices: cast with labels.astype('int64')."
        )
    if x.ndim != 3:
        raise ValueError(f"windows must be shaped (n, window_size, channels), got shape {x.shape}.")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{x.shape[0]} windows but {y.shape[0]} labels; pass matching arrays.")
    if x.shape[0] < 2:
        raise ValueError(f"training needs at least 2 windows (BatchNorm), got {x.shape[0]}.")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(
            f"labels must lie in 0..{n_classes - 1} (the model's classes), got values {int(y.min())}..{int(y.max())}."
        )
    if not np.isfinite(x).all():
        raise ValueError("windows contain NaN or infinite values; clean or interpolate them first.")
    return x, y.astype(np.int64)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to train on: ``device`` if given (checked to exist), else CUDA if available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:<index>'.") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here; use 'cpu'.")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} requested but MPS is not available here; use 'cpu'.")
    return dev


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=12)
    for a in arrays:
        h.update(repr((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _model_digest(model: nn.Module) -> str:
    h = hashlib.blake2b(digest_size=12)
    h.update(type(model).__name__.encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _run_signature(model: nn.Module, x: np.ndarray, y: np.ndarray, cfg: TrainConfig) -> dict[str, Any]:
    """What a resumed run must share with the interrupted one (everything but the number of epochs)."""
    config = cfg.as_dict()
    config.pop("epochs")
    return {"config": config, "data": _digest(x, y), "initial_model": _model_digest(model)}


def _fork_devices(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def _rng_states(rng: np.random.Generator, device: torch.device) -> dict[str, Any]:
    states: dict[str, Any] = {"numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()}
    if device.type == "cuda":
        states["torch_cuda_rng"] = torch.cuda.get_rng_state(device)
    return states


def _short(err: BaseException) -> str:
    """``Type: first line of the message`` (torch's unpickling errors run over many lines)."""
    lines = str(err).strip().splitlines()
    first = lines[0] if lines else ""
    return f"{type(err).__name__}: {first[:200]}"


def _save_state(path: Path, state: dict[str, Any]) -> None:
    """Write a training state atomically (a reader sees the previous epoch's state or this one)."""
    atomic_write(path, lambda p: torch.save(state, p))


def _load_state(path: Path, signature: dict[str, Any], device: torch.device) -> dict[str, Any] | None:
    """The saved state at ``path``, ``None`` (with a warning) if unreadable; ValueError if from another run."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        ok = isinstance(state, dict) and state.get("format") == STATE_FORMAT
    except Exception as err:  # noqa: BLE001 - any unreadable file is handled the same way
        warnings.warn(
            f"training state {path} is unreadable ({_short(err)}); training starts from epoch 0.", stacklevel=3
        )
        return None
    if not ok:
        warnings.warn(
            f"training state {path} is not a leakage_core training state; training starts from epoch 0.", stacklevel=3
        )
        return None
    if state["signature"] != signature:
        raise ValueError(
            f"training state {path} was written by a different run (other data, initial "
            "model or hyperparameters); delete it or pass another state_path."
        )
    return state


def train_model(
    model: nn.Module,
    windows: np.ndarray,
    labels: np.ndarray,
    config: TrainConfig = TrainConfig(),
    *,
    progress: bool = True,
    device: str | torch.device | None = None,
    state_path: str | Path | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` in place with Adam on shuffled mini-batches; return the mean loss per epoch.

    ``config`` holds every hyperparameter (the paper's by default: 100 epochs, Adam lr 1e-4, weight
    decay 1e-6, StepLR(10, 0.9), mini-batches of 100, *unweighted* cross-entropy; see
    :class:`TrainConfig`). Its seed seeds the shuffling (a numpy Generator) and dropout (a forked torch
    RNG); the global torch RNG is left untouched. Batches of fewer than 2 windows (a last, incomplete
    one) are skipped because BatchNorm needs more than one window. The model is left in eval mode, on
    the device it came from, also when training is interrupted.

    Parameters
    ----------
    model : torch.nn.Module
        A model from :func:`leakage_core.models.build_model`.
    windows, labels : numpy.ndarray
        ``(n, T, channels)`` float32 windows and ``(n,)`` integer labels.
    config : TrainConfig
        The hyperparameters; anything else raises ``TypeError``. Under ``config.defense`` the labels are the
        defence's ``training_labels`` (drawn once, seeded by ``config.seed``), the configuration its
        ``train_config``; its ``fit`` trains if it has its own loop (DP-SGD; called with a :class:`RunControl`
        of the arguments below), else the standard loop calls its
        ``on_step(model, step_seed(config.seed, step))`` after every backward pass. A class-weighted loss
        records its weights as ``model.class_weights`` (tuple of float).
    progress : bool
        Show a tqdm progress bar over epochs.
    device : str or torch.device, optional
        Where to train; default CUDA if available, else CPU. The model is moved back afterwards.
    state_path : path, optional
        Save the full training state (weights, optimizer, scheduler, both RNGs, epoch, losses) there
        atomically after every epoch, and resume from it if it exists: an interrupted and resumed
        run gives bit-identical weights and losses to an uninterrupted one (on the same device). A
        state from a different run (data, initial weights or hyperparameters) raises ``ValueError``;
        an unreadable one is reported with a warning and ignored. The file is kept at the end.
    on_epoch : callable, optional
        Called as ``on_epoch(epoch, loss)`` after every epoch trained in this call (``epoch`` counts
        from 1; epochs restored from ``state_path`` are not reported), once its state is saved. An
        exception it raises stops training there (e.g. ``KeyboardInterrupt``, as Ctrl-C would).

    Returns
    -------
    list of float
        Mean training loss of every epoch (including epochs done before a resume).
    """
    cfg = _check_config(config)
    n_classes = _n_classes(model)
    x, y = _check_training_data(windows, labels, n_classes)
    dev = resolve_device(device)
    home = next(model.parameters()).device
    state_file = None if state_path is None else Path(state_path)
    signature = _run_signature(model, x, y, cfg) if state_file is not None else None
    y, cfg = _under_defense(x, y, cfg, n_classes)
    if cfg.class_weighted:
        model.class_weights = tuple(float(w) for w in _loss_weights(cfg, y, n_classes))
    try:
        model.to(dev)
        control = RunControl(dev, state_file, signature, progress, on_epoch)
        history = None if cfg.defense is None else cfg.defense.fit(model, x, y, cfg, control)
        if history is None:
            history, _ = _fit(model, x, y, cfg, control)
    finally:
        model.to(home)
        model.eval()
    return history


def _under_defense(x: np.ndarray, y: np.ndarray, cfg: TrainConfig, n_classes: int) -> tuple[np.ndarray, TrainConfig]:
    """The labels and configuration of training under ``cfg.defense`` (unchanged without one).

    The defence's ``training_labels`` are drawn once, before training, seeded by ``cfg.seed``; its
    ``train_config`` may change the configuration (e.g. a class-weighted loss) but not the defence.
    """
    defense = cfg.defense
    if defense is None:
        return y, cfg
    _, y = _check_training_data(x, defense.training_labels(y, n_classes, seed=cfg.seed), n_classes)
    out = _check_config(defense.train_config(cfg))
    if out.defense != defense:
        raise ValueError(f"{type(defense).__name__}.train_config must keep the defence in the configuration.")
    return y, out


def _loss_weights(cfg: TrainConfig, y: np.ndarray, n_classes: int) -> np.ndarray:
    """The class weights of a class-weighted loss: the defence's own (``loss_weights(labels, n_classes)``, when it
    fixes them) or the inverse class frequencies of the labels trained on (:func:`class_weights`)."""
    own = getattr(cfg.defense, "loss_weights", None)
    weights = class_weights(y, n_classes) if own is None else np.asarray(own(y, n_classes), dtype=np.float64)
    if weights.shape != (n_classes,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"class weights must be {n_classes} finite non-negative numbers, got {weights!r}.")
    return weights


@dataclass(frozen=True)
class RunControl:
    """How a training run is driven, whatever its loop: the device, the state file it saves after every epoch and
    resumes from (``None``: no saving), the run's signature (a state of another run is refused), the progress bar,
    the per-epoch callback ``on_epoch(epoch, loss)``. :func:`train_model` builds it; a defence's ``fit`` gets it."""

    device: Any = None
    state_file: Path | None = None
    signature: dict | None = None
    progress: bool = True
    on_epoch: Callable[[int, float], None] | None = None


@dataclass(frozen=True)
class EpochLoop:
    """What :func:`run_epochs` trains and saves: the model, its optimizer and scheduler, the numpy generator of the
    batches, ``epoch(e)`` (trains epoch ``e``, returns its mean loss) and ``extra`` state to save with them, a
    ``(get, set)`` pair of plain values per name (e.g. a privacy accountant's history)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    rng: np.random.Generator
    epoch: Callable[[int], float]
    extra: Mapping[str, tuple[Callable[[], Any], Callable[[Any], None]]] = field(default_factory=dict)


def step_seed(seed: int, step: int) -> int:
    """The seed of training step ``step`` (counted from 0 over all epochs) of a run seeded by ``seed``.

    Seeds what a defence draws at every step (:meth:`~leakage_core.defenses.Defense.on_step`); distinct steps get
    unrelated seeds (numpy's ``SeedSequence``).
    """
    return int(np.random.SeedSequence([int(seed), int(step)]).generate_state(1)[0])


def _fit(
    model: nn.Module, x: np.ndarray, y: np.ndarray, cfg: TrainConfig, control: RunControl
) -> tuple[list[float], list[float]]:
    """The training loop of :func:`train_model` (model already on ``control.device``): losses and seconds per
    epoch."""
    dev = control.device
    weight = None
    if cfg.class_weighted:  # computed by train_model from the labels trained on
        weight = torch.as_tensor(model.class_weights, dtype=torch.float32, device=dev)
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    rng = np.random.default_rng(cfg.seed)
    y_t = torch.from_numpy(y)
    steps = -(-x.shape[0] // cfg.batch_size)  # per epoch, the skipped last batch included (numbering only)

    def epoch(e: int) -> float:
        return _one_epoch(model, x, y_t, cfg=cfg, rng=rng, opt=opt, loss_fn=loss_fn, dev=dev, first_step=e * steps)

    return run_epochs(EpochLoop(model, opt, sched, rng, epoch), cfg, control)


def run_epochs(loop: EpochLoop, cfg: TrainConfig, control: RunControl) -> tuple[list[float], list[float]]:
    """Run ``loop.epoch(e)`` for the epochs ``cfg.epochs`` still needs; resumable. The losses and seconds of all
    epochs, including those before a resume.

    The epoch driver of :func:`train_model`, shared by defences with their own loop (DP-SGD): seeds a forked torch
    RNG with ``cfg.seed``, resumes from ``control.state_file`` if it holds a state of this run
    (``control.signature``), steps the scheduler after every epoch and saves the full state there (model,
    optimizer, scheduler, the batches' generator, the torch RNG, losses, seconds, and ``loop.extra``), then calls
    ``control.on_epoch``.
    """
    model, opt, sched, rng, extra = loop.model, loop.optimizer, loop.scheduler, loop.rng, loop.extra
    dev, state_file, signature = control.device, control.state_file, control.signature
    history: list[float] = []
    epoch_seconds: list[float] = []
    saved = _load_state(state_file, signature, dev) if state_file is not None and state_file.exists() else None
    if saved is not None and saved["epoch"] > cfg.epochs:
        raise ValueError(
            f"training state {state_file} already holds {saved['epoch']} epochs, more than the "
            f"{cfg.epochs} requested; delete it or ask for at least {saved['epoch']} epochs."
        )
    with torch.random.fork_rng(devices=_fork_devices(dev)):
        torch.manual_seed(cfg.seed)
        start = 0
        if saved is not None:
            _restore(saved, model, opt, sched, rng, dev)
            for name, (_, put) in extra.items():
                put(saved["extra"][name])
            start, history, epoch_seconds = saved["epoch"], list(saved["history"]), list(saved["epoch_seconds"])
        model.train()
        bar = tqdm(
            range(start, cfg.epochs), desc="training", disable=not control.progress, initial=start, total=cfg.epochs
        )
        for e in bar:
            t0 = time.perf_counter()
            history.append(loop.epoch(e))
            sched.step()
            epoch_seconds.append(time.perf_counter() - t0)
            if state_file is not None:
                _save_state(
                    state_file,
                    {
                        "format": STATE_FORMAT,
                        "signature": signature,
                        "epoch": e + 1,
                        "package_version": _version(),
                        "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(),
                        **_rng_states(rng, dev),
                        "history": history,
                        "epoch_seconds": epoch_seconds,
                        "device": str(dev),
                        **({"extra": {name: get() for name, (get, _) in extra.items()}} if extra else {}),
                    },
                )
            if control.on_epoch is not None:
                control.on_epoch(e + 1, history[-1])
    return history, epoch_seconds


def _version() -> str:
    from .. import __version__

    return __version__


def _restore(
    saved: dict[str, Any],
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    rng: np.random.Generator,
    dev: torch.device,
) -> None:
    """Put a saved training state back: weights, optimizer, scheduler and both RNGs (inside the fork)."""
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    sched.load_state_dict(saved["scheduler"])
    rng.bit_generator.state = saved["numpy_rng"]
    torch.set_rng_state(saved["torch_rng"].cpu())
    if dev.type == "cuda" and "torch_cuda_rng" in saved:
        torch.cuda.set_rng_state(saved["torch_cuda_rng"].cpu(), dev)


def _one_epoch(
    model: nn.Module,
    x: np.ndarray,
    y: torch.Tensor,
    *,
    cfg: TrainConfig,
    rng: np.random.Generator,
    opt: torch.optim.Optimizer,
    loss_fn: nn.Module,
    dev: torch.device,
    first_step: int = 0,
) -> float:
    """One pass over shuffled mini-batches; the mean loss per trained window.

    Under a defence, ``defense.on_step(model, step_seed(cfg.seed, step))`` changes the gradients after every
    backward pass (step ``first_step + b`` for batch ``b``).
    """
    order = rng.permutation(x.shape[0])
    total, seen = 0.0, 0
    for b, begin in enumerate(range(0, x.shape[0], cfg.batch_size)):
        idx = order[begin : begin + cfg.batch_size]
        if idx.size < 2:  # BatchNorm needs > 1 window
            continue
        xb = torch.from_numpy(scale_batch(x[idx], cfg.scaling)).to(dev)
        yb = y[torch.from_numpy(idx)].to(dev)
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        if cfg.defense is not None:
            cfg.defense.on_step(model, step_seed(cfg.seed, first_step + b))
        opt.step()
        total += loss.item() * idx.size
        seen += idx.size
    return total / max(seen, 1)


def train_on_subjects(
    model: nn.Module,
    dataset: "HARDataset",
    subjects: Sequence[int],
    config: TrainConfig = TrainConfig(),
    **options: Any,
) -> list[float]:
    """:func:`train_model` on some subjects' windows, recording them as ``model.training_subjects``.

    ``options`` are :func:`train_model`'s keyword options (``progress``, ``device``, ``state_path``,
    ``on_epoch``). The experiment functions refuse to attack a client in ``model.training_subjects``
    (the attacked client must be unseen: leave-one-subject-out), so train through this function, or
    :func:`fold_model`, whenever a model will be attacked.
    """
    subjects = sorted(int(s) for s in subjects)
    unknown = [s for s in subjects if s not in dataset.subjects]
    if not subjects or unknown:
        raise ValueError(
            f"subjects must be a non-empty list of the dataset's subjects {dataset.subject_ids}; got {subjects}."
        )
    history = train_model(model, *dataset.windows_of(subjects), config, **options)
    model.training_subjects = tuple(subjects)
    return history


@torch.no_grad()
def predict(model: nn.Module, windows: np.ndarray, batch_size: int = 512, scaling: str = "none") -> np.ndarray:
    """Class probabilities ``(n, C)`` of ``model`` in eval mode (the model's mode is restored).

    Introduced in Chapter 3. ``scaling`` is applied to every chunk of ``batch_size`` windows (in the
    given order) as in training: a model trained with ``scaling="batch_minmax"`` should be evaluated
    with it, with the training batch size.
    """
    check_scaling(scaling)
    _check_int("batch_size", batch_size, 1)
    was_training = model.training
    model.eval()
    x = np.asarray(windows, dtype=np.float32)
    dev = next(model.parameters()).device
    out = [
        torch.softmax(model(torch.from_numpy(scale_batch(x[i : i + batch_size], scaling)).to(dev)), dim=1).cpu()
        for i in range(0, x.shape[0], batch_size)
    ]
    model.train(was_training)
    return torch.cat(out).double().numpy()


# --------------------------------------------------------------------------------------------------
# metrics of a trained model
# --------------------------------------------------------------------------------------------------
def macro_f1(true: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Macro-averaged F1 over the classes present in ``true`` or ``pred`` (no scikit-learn needed).

    Per class ``F1 = 2 TP / (2 TP + FP + FN)``; classes absent from both
    arrays are left out of the average (they have no F1).
    """
    t = np.asarray(true, dtype=np.int64).ravel()
    p = np.asarray(pred, dtype=np.int64).ravel()
    if t.shape != p.shape or t.size == 0:
        raise ValueError(f"true and pred must be non-empty and equally long, got {t.size} and {p.size}.")
    if min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}.")
    tp = np.bincount(t[t == p], minlength=n_classes).astype(np.float64)
    n_true = np.bincount(t, minlength=n_classes)
    n_pred = np.bincount(p, minlength=n_classes)
    present = (n_true + n_pred) > 0
    f1 = 2 * tp[present] / (n_true[present] + n_pred[present])
    return float(f1.mean())


def accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """Share of equal entries of ``true`` and ``pred``."""
    t, p = np.asarray(true).ravel(), np.asarray(pred).ravel()
    if t.shape != p.shape or t.size == 0:
        raise ValueError(f"true and pred must be non-empty and equally long, got {t.size} and {p.size}.")
    return float(np.mean(t == p))


# --------------------------------------------------------------------------------------------------
# LOSO fold models and their checkpoints
# --------------------------------------------------------------------------------------------------
def _model_key(model_name: str) -> str:
    from .architectures import MODELS

    key = str(model_name).lower()
    if key not in MODELS:
        raise ValueError(f"unknown model {model_name!r}; choose one of {MODELS}.")
    return key


def _check_fold(dataset: "HARDataset", held_out: Any) -> tuple[int, list[int]]:
    """``(held_out as int, sorted training subjects)`` or a clear ``ValueError``."""
    if (
        isinstance(held_out, bool)
        or not isinstance(held_out, (int, np.integer))
        or int(held_out) not in dataset.subjects
    ):
        raise ValueError(
            f"held_out={held_out!r} is not a subject of dataset {dataset.name!r}; subjects: {dataset.subject_ids}."
        )
    k = int(held_out)
    others = [s for s in dataset.subject_ids if s != k]
    if not others:
        raise ValueError(
            f"dataset {dataset.name!r} has only subject {k}: a LOSO model needs at least one other subject to train on."
        )
    return k, others


def _check_config(config: Any) -> TrainConfig:
    if not isinstance(config, TrainConfig):
        raise TypeError(
            f"config must be a TrainConfig, got {type(config).__name__}; build one with "
            "leakage_core.models.TrainConfig(epochs=..., lr=..., ...)."
        )
    return config


def _cache_key(
    dataset: "HARDataset", model: str, held_out: int, config: TrainConfig, bias: bool = True
) -> dict[str, Any]:
    """What identifies a fold's checkpoint; ``bias`` enters only when False (older checkpoints keep their keys)."""
    from .. import __version__

    if not isinstance(bias, bool):
        raise ValueError(f"bias must be True or False (whether the classifier has a bias), got {bias!r}.")
    key = {
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint(),
        "model": model,
        "held_out": held_out,
        "config": config.as_dict(),
        "version": __version__,
    }
    if not bias:
        key["bias"] = False
    return key


def _checkpoint_file(
    cache_dir: str | Path | None, model: str, dataset_name: str, held_out: int, key: dict[str, Any]
) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset_name)
    return cache_root(cache_dir) / "checkpoints" / f"{model}-{safe}-heldout{held_out}-{stable_hash(key)}.pt"


def checkpoint_path(
    dataset: "HARDataset",
    model_name: str,
    held_out: int,
    config: TrainConfig = TrainConfig(),
    cache_dir: str | Path | None = None,
    bias: bool = True,
) -> Path:
    """Where :func:`fold_model` keeps the checkpoint of this fold (the file need not exist).

    Introduced in Chapter 3. ``<cache>/checkpoints/<model>-<dataset>-heldout<k>-<hash>.pt``; the hash
    covers the data's fingerprint, the model, the held-out subject, every training hyperparameter and
    the package version, so any change gives a new file instead of a stale model.
    """
    model = _model_key(model_name)
    k, _ = _check_fold(dataset, held_out)
    key = _cache_key(dataset, model, k, _check_config(config), bias)
    return _checkpoint_file(cache_dir, model, dataset.name, k, key)


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """The raw checkpoint dict, or :class:`~leakage_core.cache.CorruptCacheError`."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - unpickling errors come in many types
        raise CorruptCacheError(f"checkpoint {path} is unreadable ({_short(err)}).") from err
    if not (
        isinstance(ckpt, dict)
        and ckpt.get("format") == CHECKPOINT_FORMAT
        and isinstance(ckpt.get("info"), dict)
        and isinstance(ckpt.get("state_dict"), dict)
    ):
        raise CorruptCacheError(f"checkpoint {path} is not a leakage_core fold checkpoint.")
    return ckpt


def read_checkpoint_info(path: str | Path) -> dict[str, Any]:
    """The metadata recorded in a checkpoint written by :func:`fold_model`.

    Introduced in Chapter 6. Keys: ``model, dataset, fingerprint, source, held_out,
    training_subjects, config, package_version, torch_version, device, wall_time_s,
    seconds_per_epoch, n_train_windows, n_test_windows, macro_f1, accuracy, history, created, key``,
    and in checkpoints written since snapshots exist ``run`` (the hash shared by every number of epochs
    of one training run) and ``resumed_from`` (the epoch this training continued from; 0: from scratch).
    ``wall_time_s`` is the training time of all ``config["epochs"]`` epochs, including those of the run
    it continued. A model trained under a defence records ``defense`` (its key) and ``epsilon``, ``delta`` (its
    guarantee for the training, ``None`` where the defence defines none); a class-weighted one ``class_weights``
    (the weights of its loss). Raises :class:`~leakage_core.cache.CorruptCacheError` for an unreadable file.

    The training ``epsilon`` does not use one neighbouring relation for every defence: DP-SGD's is Opacus's own
    (its RDP accountant over the steps done, Poisson sampling, one window *added or removed*), label DP's is per
    label (one label's value *replaced*, :meth:`~leakage_core.defenses.RandomizedResponse.epsilon`). The epsilon
    per update a defence reports by default (``epsilon(delta, 1)``, ``adjacency="replace"``) is for a *replaced*
    window or batch content instead (:meth:`~leakage_core.defenses.base.Defense.epsilon`).
    """
    return dict(_read_checkpoint(Path(path))["info"])


def committed_checkpoint(name: str) -> Path | None:
    """The committed copy of checkpoint file ``name`` in ``<results>/checkpoints``, or None.

    Introduced in Chapter 3. A trained model's numbers depend on the CPU's vector instructions (AVX-512
    or not), so the chapters' trained models are trained once and committed with the results
    (``python -m leakage_core.book.checkpoints``); :func:`fold_model` loads such a copy, read-only, before
    its local cache and before it would train. Never raises: no results folder means no committed copy.
    """
    try:
        from ..data.source import results_dir

        folder = results_dir() / "checkpoints"
    except FileNotFoundError:
        return None
    path = folder / name
    return path if path.is_file() else None


def _attach(model: nn.Module, info: dict[str, Any]) -> nn.Module:
    model.training_subjects = tuple(int(s) for s in info["training_subjects"])
    model.checkpoint_info = dict(info)
    if info.get("class_weights") is not None:
        model.class_weights = tuple(float(w) for w in info["class_weights"])
    if info.get("epsilon") is not None:
        model.dp_epsilon, model.dp_delta = float(info["epsilon"]), float(info["delta"])
    return model.cpu().eval()


def _key_defense(key: dict[str, Any]) -> Defense | None:
    """The defence a fold's cache key records (rebuilt from its ``key()``), or None."""
    recorded = key["config"].get("defense")
    return None if recorded is None else defense_from_key(recorded)


def _fold_net(model: str, dataset: "HARDataset", key: dict[str, Any]) -> nn.Module:
    """The untrained model of a fold's cache key: its seed, its bias and its defence's ``model_kwargs``."""
    from .architectures import build_model

    kwargs: dict[str, Any] = {"bias": key.get("bias", True)}
    defense = _key_defense(key)
    if defense is not None:
        kwargs.update(defense.model_kwargs())
    return build_model(model, dataset.n_channels, dataset.n_classes, seed=key["config"]["seed"], **kwargs)


def _training_privacy(net: nn.Module, defense: Defense | None) -> dict[str, float | None]:
    """The (epsilon, delta) of a fold's training under its defence, where the defence defines one.

    A defence with its own loop records it on the model (``model.dp_epsilon``, ``model.dp_delta``: DP-SGD, from its
    accountant over the steps done); a labels-stage defence (labels randomised once, before training) gives its
    guarantee per label, ``defense.epsilon(DEFAULT_DELTA)``
    (:data:`~leakage_core.defenses.accounting.DEFAULT_DELTA`), which training keeps (post-processing). Other
    defences: None.
    """
    if getattr(net, "dp_epsilon", None) is not None:
        return {"epsilon": float(net.dp_epsilon), "delta": float(net.dp_delta)}
    if defense is not None and defense.stage == "labels":
        eps = defense.epsilon(DEFAULT_DELTA, 1)
        if eps is not None:
            return {"epsilon": float(eps), "delta": DEFAULT_DELTA}
    return {"epsilon": None, "delta": None}


def _load_fold_model(path: Path, model: str, dataset: "HARDataset", key: dict[str, Any], cfg: TrainConfig) -> nn.Module:
    """The cached model at ``path`` with its metadata, or CorruptCacheError if it cannot be used.

    A class-weighted model from a checkpoint that predates the recorded ``class_weights`` gets them recomputed
    from its training subjects' labels (what its training used).
    """
    ckpt = _read_checkpoint(path)
    info = ckpt["info"]
    if info.get("key") != stable_hash(key):
        raise CorruptCacheError(f"checkpoint {path} belongs to another configuration (key mismatch).")
    net = _fold_net(model, dataset, key)
    try:
        net.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, KeyError, TypeError) as err:
        raise CorruptCacheError(f"checkpoint {path} does not fit the model ({err}).") from err
    net = _attach(net, info)
    weighted = (cfg if cfg.defense is None else cfg.defense.train_config(cfg)).class_weighted
    if weighted and "class_weights" not in info:
        x, y = _check_training_data(*dataset.windows_of(list(net.training_subjects)), dataset.n_classes)
        y, trained = _under_defense(x, y, cfg, dataset.n_classes)
        net.class_weights = tuple(float(w) for w in _loss_weights(trained, y, dataset.n_classes))
    return net


def fold_model(
    dataset: "HARDataset",
    model_name: str,
    held_out: int,
    config: TrainConfig = TrainConfig(),
    cache_dir: str | Path | None = None,
    progress: bool = True,
    device: str | torch.device | None = None,
    committed: bool = True,
    bias: bool = True,
) -> nn.Module:
    """The LOSO model that attacks subject ``held_out``: trained on every other subject, cached.

    Introduced in Chapter 3. Builds ``build_model(model_name, channels, classes, seed=config.seed)``
    and trains it with :func:`train_model` on the windows of all subjects except ``held_out`` — the
    attacked client is never seen in training. The result is saved atomically as a checkpoint (see
    :func:`checkpoint_path`) together with the full training state, and later calls load it instead of
    training; a checkpoint committed with the results (:func:`committed_checkpoint`) is loaded instead of
    training too. An unreadable checkpoint is reported with a warning naming the file and retrained.

    Training starts from the furthest saved state of the *same run* (same data, fold, initial model
    and hyperparameters but ``epochs``) that has at most ``config.epochs`` epochs: the checkpoint of
    fewer epochs, the partial state of an interrupted run of more epochs, or this run's own
    ``<checkpoint>.partial`` (deleted once the checkpoint is written). Weights, Adam, StepLR and both
    RNGs continue exactly, so the result equals an uninterrupted ``config.epochs``-epoch run bit for
    bit on the same machine and thread count (see :func:`fold_snapshots`).

    Parameters
    ----------
    dataset : HARDataset
        The federated dataset (synthetic or real).
    model_name : {"deepconvlstm", "tinyhar"}
    held_out : int
        The attacked subject id; must be one of ``dataset.subject_ids``, with at least one other.
    config : TrainConfig
        Training hyperparameters (paper defaults: 100 epochs etc.); ``config.defense`` trains under a defence
        (the model built with its ``model_kwargs``, its own checkpoint).
    cache_dir : path, optional
        Cache folder (default :func:`leakage_core.cache.cache_root`).
    progress : bool
        Show a tqdm bar over epochs while training.
    device : str or torch.device, optional
        Training device; default CUDA if available, else CPU.
    committed : bool
        Whether to look for a committed copy (:func:`committed_checkpoint`) before training.
    bias : bool
        Whether the classifier has a bias (``False``: ``build_model(..., bias=False)``, its own checkpoint).

    Returns
    -------
    torch.nn.Module
        In eval mode on the CPU, with ``model.training_subjects`` (tuple of int) and
        ``model.checkpoint_info`` (dict, see :func:`read_checkpoint_info`), including the macro-F1 and
        accuracy on the held-out subject.
    """
    model = _model_key(model_name)
    k, others = _check_fold(dataset, held_out)
    cfg = _check_config(config)
    key = _cache_key(dataset, model, k, cfg, bias)
    path = _checkpoint_file(cache_dir, model, dataset.name, k, key)
    copy = committed_checkpoint(path.name) if committed else None
    if copy is not None:  # the committed copy first: the chapters' claims were checked on it, on every CPU
        try:
            return _load_fold_model(copy, model, dataset, key, cfg)
        except CorruptCacheError as err:
            warnings.warn(f"{err} Using the cache or training fold {k} instead.", stacklevel=2)
    if path.exists():
        try:
            cached = _load_fold_model(path, model, dataset, key, cfg)
            path.with_name(path.name + ".partial").unlink(missing_ok=True)  # left by a kill after the write
            return cached
        except CorruptCacheError as err:
            warnings.warn(f"{err} Retraining fold {k} and overwriting {path}.", stacklevel=2)
    dev = resolve_device(device)
    return _train_fold(dataset, model, k, others, cfg, key, path, progress, dev)


def fold_snapshots(
    dataset: "HARDataset",
    model_name: str,
    held_out: int,
    epochs: Sequence[int],
    config: TrainConfig = TrainConfig(),
    cache_dir: str | Path | None = None,
    progress: bool = True,
    device: str | torch.device | None = None,
) -> dict[int, nn.Module]:
    """The LOSO model of ``held_out`` after each number of ``epochs``, all from one training run.

    ``{e: fold_model(..., replace(config, epochs=e))}`` for ``e`` in
    ascending order (``config.epochs`` is ignored): each model continues the checkpoint of the one
    before, so ``max(epochs)`` epochs are trained in all (none for cached snapshots), and each snapshot
    equals a fresh run of its number of epochs. Every snapshot is its own checkpoint with its own
    macro-F1 and accuracy on the held-out subject and its training seconds (``model.checkpoint_info``).
    """
    wanted = sorted({int(e) for e in epochs}) if not isinstance(epochs, (int, np.integer)) else [int(epochs)]
    if not wanted:
        raise ValueError("epochs must name at least one number of epochs, e.g. [1, 3, 10].")
    cfg = _check_config(config)
    return {
        e: fold_model(
            dataset, model_name, held_out, replace(cfg, epochs=e), cache_dir=cache_dir, progress=progress, device=device
        )
        for e in wanted
    }


def _run_hash(key: dict[str, Any]) -> str:
    """The hash of a fold's cache key without the number of epochs: shared by all snapshots of one run."""
    config = {k: v for k, v in key["config"].items() if k != "epochs"}
    return stable_hash({**key, "config": config})


def _saved_state(path: Path) -> dict[str, Any] | None:
    """The training state held by a partial state file or a checkpoint (``train_state``); None if there is none."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - an unreadable file is simply not a starting point
        return None
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        obj = obj.get("train_state")
    return obj if isinstance(obj, dict) and obj.get("format") == STATE_FORMAT else None


def _fold_files(path: Path) -> list[Path]:
    """The other checkpoints and partial states of the fold of checkpoint ``path`` (any hyperparameters)."""
    prefix = path.name.rsplit("-", 1)[0] + "-"
    return sorted(
        p
        for p in path.parent.glob(prefix + "*")
        if p.name.endswith((".pt", ".pt.partial")) and p.name not in (path.name, path.name + ".partial")
    )


def _best_start(
    own: Path, others: list[Path], signature: dict[str, Any], epochs: int
) -> tuple[int, Path | None, dict[str, Any] | None]:
    """``(epoch, file, state)`` of the furthest saved state of this run with ``epoch <= epochs``.

    ``own`` (this run's partial file) wins ties; states in ``others`` count only if written by this
    package version. ``(0, None, None)`` when there is none.
    """
    best: tuple[int, Path | None, dict[str, Any] | None] = (0, None, None)
    for f in [own] + others:
        state = _saved_state(f) if f.exists() else None
        if state is None or state.get("signature") != signature:
            continue
        if f != own and state.get("package_version") != _version():
            continue
        e = int(state.get("epoch", 0))
        if best[0] < e <= epochs:
            best = (e, f, state)
    return best


def _train_fold(
    dataset: "HARDataset",
    model: str,
    held_out: int,
    others: list[int],
    cfg: TrainConfig,
    key: dict[str, Any],
    path: Path,
    progress: bool,
    dev: torch.device,
) -> nn.Module:
    """Train one fold (continuing the furthest saved state of its run), evaluate it, write the checkpoint."""
    from .. import __version__

    net = _fold_net(model, dataset, key)
    x, y = dataset.windows_of(others)
    partial = path.with_name(path.name + ".partial")
    xc, yc = _check_training_data(x, y, dataset.n_classes)
    signature = _run_signature(net, xc, yc, cfg)
    start, source, state = _best_start(partial, _fold_files(path), signature, cfg.epochs)
    if source is not None and source != partial:
        _save_state(partial, state)  # continue from there: train_model resumes from its state file
    t0 = time.perf_counter()
    history = train_model(net, x, y, cfg, progress=progress, device=dev, state_path=partial)
    final = _saved_state(partial)
    seconds = _epoch_seconds(final, cfg.epochs, time.perf_counter() - t0)
    test = dataset.subjects[held_out]
    pred = predict(net, test.windows, batch_size=cfg.batch_size, scaling=cfg.scaling).argmax(axis=1)
    info = {
        "model": model,
        "dataset": dataset.name,
        "fingerprint": key["fingerprint"],
        "source": dataset.source,
        "held_out": held_out,
        "training_subjects": sorted(others),
        "config": cfg.as_dict(),
        "package_version": __version__,
        "torch_version": str(torch.__version__),
        "device": str(dev),
        "wall_time_s": float(sum(seconds)),
        "seconds_per_epoch": float(np.mean(seconds)),
        "n_train_windows": int(x.shape[0]),
        "n_test_windows": int(test.n_windows),
        "macro_f1": macro_f1(test.labels, pred, dataset.n_classes),
        "accuracy": accuracy(test.labels, pred),
        "history": [float(v) for v in history],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "key": stable_hash(key),
        "run": _run_hash(key),
        "resumed_from": int(start),
    }
    if cfg.defense is not None:
        info["defense"] = cfg.defense.key()
        info.update(_training_privacy(net, _key_defense(key)))
    if getattr(net, "class_weights", None) is not None:
        info["class_weights"] = [float(w) for w in net.class_weights]
    ckpt = {"format": CHECKPOINT_FORMAT, "state_dict": net.state_dict(), "info": info}
    if final is not None and final.get("epoch") == cfg.epochs:
        ckpt["train_state"] = final  # a longer run of the same fold continues from here
    atomic_write(path, lambda p: torch.save(ckpt, p))
    partial.unlink(missing_ok=True)
    return _attach(net, info)


def _epoch_seconds(final: dict[str, Any] | None, epochs: int, elapsed: float) -> list[float]:
    """Seconds of every epoch, across resumed sessions and continued runs (from the final state), else elapsed."""
    seconds = [float(v) for v in (final or {}).get("epoch_seconds", [])]
    return seconds if len(seconds) == epochs else [elapsed / epochs] * epochs


_LIST_COLUMNS = [
    "model",
    "dataset",
    "held_out",
    "epochs",
    "class_weighted",
    "scaling",
    "seed",
    "macro_f1",
    "accuracy",
    "seconds_per_epoch",
    "wall_time_s",
    "n_train_windows",
    "device",
    "package_version",
    "created",
    "status",
    "path",
]


def list_checkpoints(cache_dir: str | Path | None = None) -> "pd.DataFrame":
    """One row per fold checkpoint in the cache (unreadable files get ``status="corrupt"``).

    Columns: ``model, dataset, held_out, epochs, class_weighted, scaling,
    seed, macro_f1, accuracy, seconds_per_epoch, wall_time_s, n_train_windows, device,
    package_version, created, status, path``, sorted by model, dataset and held-out subject.
    """
    import pandas as pd

    folder = cache_root(cache_dir) / "checkpoints"
    rows = []
    for path in sorted(folder.glob("*.pt")) if folder.is_dir() else []:
        try:
            info = read_checkpoint_info(path)
        except CorruptCacheError:
            rows.append({"status": "corrupt", "path": str(path)})
            continue
        cfg = info.get("config", {})
        rows.append(
            {
                **{c: info.get(c) for c in _LIST_COLUMNS},
                **{c: cfg.get(c) for c in ("epochs", "class_weighted", "scaling", "seed")},
                "status": "ok",
                "path": str(path),
            }
        )
    df = pd.DataFrame(rows, columns=_LIST_COLUMNS)
    return df.sort_values(["model", "dataset", "held_out"], na_position="last", ignore_index=True)
