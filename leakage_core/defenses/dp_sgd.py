"""DP-SGD: per-window clipping and Gaussian noise, in local training and in the client's update.

Contract: :class:`DPSGD` trains the DP-compatible model (``build_model(..., dp_compatible=True)``) with Poisson
sampling, per-window gradients clipped to ``max_grad_norm`` and Gaussian noise of standard deviation
``noise_multiplier * max_grad_norm`` on their sum (:meth:`DPSGD.fit`, resumable, its epsilon from Opacus's RDP
accountant recorded as ``model.dp_epsilon``); the client's FedSGD update is computed the same way
(:meth:`DPSGD.client_update`); :meth:`DPSGD.epsilon` is its guarantee over a number of such updates (one window
replaced, by default: the update divides by the actual batch size). Torch and Opacus are imported on first use.

References: M. Abadi et al., "Deep Learning with Differential Privacy", CCS 2016 (the algorithm and its
moments accountant); Opacus 1.6 (github.com/pytorch/opacus): ``GradSampleModule``
(``opacus/grad_sample/grad_sample_module.py``) for per-window gradients, ``DPOptimizer``
(``opacus/optimizers/optimizer.py``) for clipping, noise and averaging, ``RDPAccountant``
(``opacus/accountants/rdp.py``), as ``PrivacyEngine.make_private`` (``opacus/privacy_engine.py``) assembles them.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from .accounting import DEFAULT_DELTA
from .base import Defense, register_defense

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from ..federated.update import LastLayerUpdate
    from ..models.training import RunControl, TrainConfig


@register_defense
@dataclass(frozen=True)
class DPSGD(Defense):
    """DP-SGD (Abadi et al. 2016) with Opacus: clip every window's gradient to ``max_grad_norm`` (the norm over
    all layers), add ``N(0, (noise_multiplier * max_grad_norm)^2)`` to the sum, average.

    Introduced in Chapter 16.

    ``delta`` is the delta at which training records its epsilon (``model.dp_epsilon``).
    """

    name = "dp_sgd"
    stage = "training"
    reference = "Abadi et al., CCS 2016 (DP-SGD); Opacus 1.6"

    noise_multiplier: float
    max_grad_norm: float = 1.0
    delta: float = DEFAULT_DELTA

    def __post_init__(self) -> None:
        for field, value in (("noise_multiplier", self.noise_multiplier), ("max_grad_norm", self.max_grad_norm)):
            if not _positive(value):
                raise ValueError(f"DPSGD {field} must be a positive finite number, got {value!r}.")
        if not (_positive(self.delta) and self.delta < 1):
            raise ValueError(f"DPSGD delta must lie in (0, 1), e.g. 1e-5, got {self.delta!r}.")
        for field in ("noise_multiplier", "max_grad_norm", "delta"):
            object.__setattr__(self, field, float(getattr(self, field)))

    @property
    def label(self) -> str:
        """E.g. ``"DP-SGD z=1, C=1"``; a ``delta`` other than the default
        (:data:`~leakage_core.defenses.accounting.DEFAULT_DELTA`) is named too, e.g. ``"DP-SGD z=1, C=1, delta=1e-06"``
        (labels name the defence in results and records)."""
        label = f"DP-SGD z={self.noise_multiplier:g}, C={self.max_grad_norm:g}"
        return label if self.delta == DEFAULT_DELTA else f"{label}, delta={self.delta:g}"

    @property
    def noise_std(self) -> float:
        """The standard deviation of the noise on the sum of clipped gradients, ``noise_multiplier * max_grad_norm``."""
        return self.noise_multiplier * self.max_grad_norm

    def model_kwargs(self) -> dict[str, Any]:
        """``{"dp_compatible": True}``: the model variant whose per-window gradients Opacus computes."""
        return {"dp_compatible": True}

    # ------------------------------------------------------------------ training
    def fit(
        self,
        model: "nn.Module",
        windows: np.ndarray,
        labels: np.ndarray,
        config: "TrainConfig",
        control: "RunControl | None" = None,
    ) -> list[float]:
        """Train ``model`` (on ``device``) with DP-SGD; the mean loss per epoch. Called by ``train_model``.

        Every epoch takes ``ceil(n / batch_size)`` steps; each step draws its batch by Poisson sampling (every
        window independently with probability ``q = batch_size / n``, from a numpy generator seeded by
        ``config.seed``), computes per-window gradients (Opacus's ``GradSampleModule``), and lets Opacus's
        ``DPOptimizer`` clip them, add the noise and divide by the expected batch size ``q n`` before Adam's step
        (weight decay, StepLR: ``config``'s). An empty batch is a step of noise alone, as in Opacus. The RDP
        accountant counts every step (Opacus's standard: Poisson sampling, one window added or removed);
        ``model.dp_epsilon`` is its epsilon at ``self.delta`` (``model.dp_delta``).

        ``control`` (:class:`~leakage_core.models.training.RunControl`, default: on the default device, no state
        file) drives the run. Resumable like the standard loop (:func:`leakage_core.models.training.run_epochs`):
        the state file keeps
        the weights, Adam, StepLR, the sampler's generator, the torch RNG (noise, dropout) and the accountant's
        history, so a resumed run equals an uninterrupted one (tested). A class-weighted configuration is refused.
        """
        import torch
        from opacus import GradSampleModule
        from opacus.accountants import RDPAccountant

        from ..data.scaling import scale_batch
        from ..models.training import EpochLoop, RunControl, resolve_device, run_epochs

        _check_dp_model(model)
        if config.class_weighted:
            raise ValueError("DPSGD trains with the unweighted loss; use a configuration with class_weighted=False.")
        x, y = np.asarray(windows, dtype=np.float32), torch.as_tensor(np.asarray(labels, dtype=np.int64))
        n = x.shape[0]
        q = min(1.0, config.batch_size / n)
        steps = math.ceil(n / config.batch_size)
        control = RunControl() if control is None else control
        dev = resolve_device(control.device)
        control = replace(control, device=dev)
        rng = np.random.default_rng(config.seed)
        base = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        opt = self.dp_optimizer(base, expected_batch_size=max(1, round(q * n)))
        sched = torch.optim.lr_scheduler.StepLR(base, step_size=config.step_size, gamma=config.gamma)
        accountant = RDPAccountant()
        gsm = GradSampleModule(model, batch_first=True, loss_reduction="mean")

        def epoch(_: int) -> float:
            total, seen = 0.0, 0
            for _ in range(steps):
                idx = np.flatnonzero(rng.random(n) < q)
                opt.zero_grad()
                if idx.size:
                    xb = torch.from_numpy(scale_batch(x[idx], config.scaling)).to(dev)
                    with _quiet_hooks():
                        loss = torch.nn.functional.cross_entropy(gsm(xb), y[idx].to(dev))
                        loss.backward()
                    total, seen = total + loss.item() * idx.size, seen + idx.size
                else:  # an empty Poisson batch: the step adds noise only
                    for p in opt.params:
                        p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
                opt.step()
                accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=q)
            return total / max(seen, 1)

        extra = {
            "accountant": (
                lambda: [list(h) for h in accountant.history],
                lambda saved: setattr(accountant, "history", [tuple(h) for h in saved]),
            )
        }
        try:
            history, _ = run_epochs(EpochLoop(model, opt, sched, rng, epoch, extra), config, control)
        finally:
            gsm._close()  # removes Opacus's hooks and per-window gradients from the model
            for p in model.parameters():
                p.__dict__.pop("summed_grad", None)
        model.dp_epsilon, model.dp_delta = float(accountant.get_epsilon(self.delta)), self.delta
        return history

    def dp_optimizer(self, optimizer: "torch.optim.Optimizer", expected_batch_size: int) -> Any:
        """Opacus's ``DPOptimizer`` around ``optimizer``: per-window clipping to ``max_grad_norm``, noise of std
        ``noise_std`` on the sum, division by ``expected_batch_size`` (mean loss, Poisson batches)."""
        from opacus.optimizers import DPOptimizer

        return DPOptimizer(
            optimizer,
            noise_multiplier=self.noise_multiplier,
            max_grad_norm=self.max_grad_norm,
            expected_batch_size=expected_batch_size,
            loss_reduction="mean",
        )

    # ------------------------------------------------------------------ the client's update
    def client_update(
        self, model: "nn.Module", windows: np.ndarray, labels: np.ndarray, setting: Any, batch: int
    ) -> "LastLayerUpdate":
        """The client's FedSGD update of one batch of ``N`` windows, computed the DP-SGD way.

        Per-window gradients of every layer (:func:`per_window_gradients`), each clipped to ``max_grad_norm`` in
        the norm over all layers (:func:`clip_per_window`), summed, plus Gaussian noise of std ``noise_std``
        per element, divided by ``N``; the classifier's part is returned (``bias_grad`` None without a bias).
        Dropout masks are seeded by ``setting.batch_seed(batch)``, the noise by ``setting.stream_seed("dp_noise",
        batch)`` (a stream of its own: not the sampler's); ``setting`` gives the mode, input
        scaling and sampler (recorded). FedSGD only (``setting.n_steps == 1``). Only the classifier's noise is
        drawn (the other layers' would be independent of it and is not sent here).
        """
        from ..federated.client import record_defense
        from ..federated.update import LastLayerUpdate

        if setting.n_steps != 1:
            raise ValueError(
                f"DPSGD's client update is one FedSGD step (n_steps=1), got n_steps={setting.n_steps}; "
                "use a setting with n_steps=1."
            )
        seed = setting.batch_seed(batch)
        grads = per_window_gradients(model, windows, labels, mode=setting.mode, seed=seed, scaling=setting.scaling)
        clipped, _ = clip_per_window(grads, self.max_grad_norm)
        n = len(labels)
        rng = np.random.default_rng(setting.stream_seed("dp_noise", batch))  # independent of the batches' draw

        def noised(name: str) -> np.ndarray:
            total = clipped[name].sum(dim=0).double().cpu().numpy()
            return (total + rng.normal(0.0, self.noise_std, size=total.shape)) / n

        weight = noised("classifier.weight")
        bias = noised("classifier.bias") if "classifier.bias" in clipped else None
        update = LastLayerUpdate(weight, bias, n_windows=n, sampler=setting.sampler)
        return record_defense(update, self.public())

    def epsilon(self, delta: float, updates: int = 1, *, adjacency: str = "replace") -> float:
        """The epsilon at ``delta`` of ``updates`` client updates (:meth:`client_update`) of one client.

        Each update is a Gaussian mechanism on the sum of clipped per-window gradients, noise of standard deviation
        ``noise_multiplier * max_grad_norm``, every window of the batch used (sample rate 1), composed over
        ``updates`` by Opacus's RDP accountant. The unit is one window (its content and its label).

        ``adjacency="replace"`` (the default): one window of the batch replaced by another, in its place, so the
        batch size ``N`` that :meth:`client_update` divides by (and records) and the client's partition into
        batches stay the same; the sum moves by at most ``2 max_grad_norm``, so epsilon is that of half the noise
        multiplier (:func:`~leakage_core.defenses.accounting.noise_multiplier`). This is the guarantee the
        implemented update has, and the one that covers a change of a window's label. ``adjacency="add_remove"``:
        sensitivity ``max_grad_norm``, the noise multiplier itself, as Opacus counts one step at sample rate 1;
        it would hold only if ``N`` were fixed by the protocol, whereas the update divides by the actual batch
        size, so a batch with a window more or less is told apart by ``n_windows``. With ``updates > 1`` the
        guarantee is for a change of one window in each of the ``updates`` updates (a window that enters every
        update); in one pass over shuffled batches a window enters one update.

        The *training* guarantee (:meth:`fit`, ``model.dp_epsilon``) is Opacus's own: Poisson sampling, add/remove
        of one window, division by the expected batch size.
        """
        from .accounting import check_adjacency, check_delta, check_steps, noise_multiplier

        check_adjacency(adjacency)
        d, steps = check_delta(delta), check_steps(updates, "updates")
        z = noise_multiplier(self.noise_std, self.max_grad_norm, adjacency)
        return _rdp_epsilon(z, d, steps=steps, sample_rate=1.0)


# ------------------------------------------------------------------ per-window gradients
def per_window_gradients(
    model: "nn.Module",
    windows: np.ndarray,
    labels: np.ndarray,
    mode: str = "train",
    seed: int = 0,
    scaling: str = "none",
) -> dict[str, "torch.Tensor"]:
    """``{parameter name: (N, *shape)}``: every window's own gradient of its cross-entropy, for every parameter.

    Introduced in Chapter 16.

    Computed in one pass by Opacus's ``GradSampleModule`` (hooks mode) on a DP-compatible model
    (``build_model(..., dp_compatible=True)``; another model raises ``ValueError``). ``mode="train"`` draws
    dropout masks (seeded by ``seed``, global torch RNG untouched), ``"eval"`` switches dropout off; ``scaling``
    is applied to the batch first. The model is left as it was (parameters, ``.grad``, mode, hooks).
    """
    import torch
    from opacus import GradSampleModule

    from ..data.scaling import scale_batch
    from ..federated.client import as_batch, client_mode

    _check_dp_model(model)
    x, y = as_batch(scale_batch(windows, scaling), labels)
    params = dict(model.named_parameters())
    saved = {name: p.grad for name, p in params.items()}
    with client_mode(model, mode, seed):
        model.train()  # Opacus records a layer's input in train mode only; dropout is set apart
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.train(mode == "train")
        gsm = GradSampleModule(model, batch_first=True, loss_reduction="sum")
        try:
            with _quiet_hooks():
                torch.nn.functional.cross_entropy(gsm(x), y, reduction="sum").backward()
            out = {name: p.grad_sample.detach().clone() for name, p in params.items()}
        finally:
            gsm._close()
            for name, p in params.items():
                p.grad = saved[name]
    return out


def clip_per_window(grads: dict[str, "torch.Tensor"], max_norm: float) -> tuple[dict[str, "torch.Tensor"], Any]:
    """Per-window gradients scaled by ``min(1, max_norm / ||g_i||)``, ``||g_i||`` the norm over all parameters.

    Introduced in Chapter 16.

    Returns the clipped gradients and the norms before clipping (``(N,)``). After clipping every window's norm is
    at most ``max_norm``; a window within the bound is unchanged.
    """
    import torch

    norms = torch.sqrt(sum((g.reshape(g.shape[0], -1).double() ** 2).sum(dim=1) for g in grads.values()))
    factor = torch.where(norms > max_norm, max_norm / norms.clamp(min=1e-300), torch.ones_like(norms))
    clipped = {name: g * factor.to(g.dtype).view(-1, *([1] * (g.ndim - 1))) for name, g in grads.items()}
    return clipped, norms


# ------------------------------------------------------------------ helpers
def _positive(value: Any) -> bool:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    return ok and math.isfinite(value) and value > 0


def _check_dp_model(model: Any) -> None:
    if not getattr(model, "dp_compatible", False):
        raise ValueError(
            "DP-SGD needs the DP-compatible model variant (per-window gradients): build it with "
            "build_model(name, channels, classes, dp_compatible=True), i.e. **DPSGD(...).model_kwargs()."
        )


@contextmanager
def _quiet_hooks() -> Iterator[None]:
    """Silence torch's note that full backward hooks fire without input gradients (Opacus's hooks; harmless)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        yield


def _rdp_epsilon(noise_multiplier: float, delta: float, steps: int, sample_rate: float) -> float:
    """Epsilon at ``delta`` of ``steps`` Gaussian steps (noise multiplier, Poisson sample rate): Opacus's RDP
    accountant through :func:`leakage_core.defenses.accounting.gaussian_epsilon`."""
    from .accounting import gaussian_epsilon

    return gaussian_epsilon(noise_multiplier, delta, steps=int(steps), sample_rate=float(sample_rate))
