"""The attack contract as a public check: :func:`check_attack`, run by the test suite on every registered attack.

Contract verified, for the default options and every option set in the class's ``examples``:

- **options**: a string option given an unknown value and an integer option given ``-1`` raise
  ``ValueError`` naming the option when the attack is built; through the registry, an unknown option
  name raises ``ValueError`` naming it;
- **needs**: :attr:`~leakage_core.attacks.base.Attack.needs` is a :class:`~leakage_core.attacks.base.Needs`
  and truthful: without a declared need the attack runs with ``model=None`` (and ``aux=None``) and
  counts exactly as with them; with it, ``prepare`` without the model (or ``aux``) raises a
  ``ValueError`` naming it; ``count`` before ``prepare`` raises;
- **preparation**: typed, a dataclass instance (not a dict);
- **counts**: a numpy int64 array of shape ``(C,)``, non-negative, summing to ``N``, for FedSGD and
  FedAvg updates of a small model, a single window, a single-class batch and arbitrary (noise-like)
  gradients; the update is not modified;
- **bias**: the same updates without their bias row are counted (non-negative, summing to ``N``) unless
  :attr:`~leakage_core.attacks.base.Attack.reads_bias`, in which case ``count`` raises ``NoBiasError``;
- **determinism**: preparing again and counting again give identical counts;
- **prepare once**: one preparation counting every update (in either order) equals a fresh
  preparation per update.

The idea follows scikit-learn's ``check_estimator`` (``sklearn/utils/estimator_checks.py``).
"""

from __future__ import annotations

import dataclasses
import inspect
from functools import partial
from typing import Any, Mapping

import numpy as np

from ..federated.update import LastLayerUpdate
from .base import Attack, Needs, NoBiasError
from ..validation import bad_option_value, raises_value_error
from .registry import ATTACKS


def _toy_model(n_classes: int, d: int = 6, window_size: int = 4, n_channels: int = 2, seed: int = 0):
    """A tiny model honouring the protocol attacks read: ``features(x)``, ``classifier``, the input shape."""
    import torch

    class ToyModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            g = torch.Generator().manual_seed(seed)
            self.window_size, self.n_channels = window_size, n_channels
            self.proj = torch.nn.Linear(n_channels * window_size, d)
            self.dropout = torch.nn.Dropout(0.2)
            self.classifier = torch.nn.Linear(d, n_classes)
            with torch.no_grad():
                for p in self.parameters():
                    p.copy_(torch.randn(p.shape, generator=g) * 0.5)

        def features(self, x):
            return self.dropout(torch.tanh(self.proj(torch.as_tensor(x, dtype=torch.float32).flatten(1))))

        def forward(self, x):
            return self.classifier(self.features(x))

    return ToyModel()


@dataclasses.dataclass
class _Fixture:
    model: Any
    aux: tuple[np.ndarray, np.ndarray]
    updates: list[LastLayerUpdate]


def _fixture(n_classes: int, seed: int = 0) -> _Fixture:
    from ..federated.client import fedavg_update, fedsgd_update

    rng = np.random.default_rng(seed)
    model = _toy_model(n_classes, seed=seed)
    shape = (model.window_size, model.n_channels)

    def windows(n):
        return rng.normal(size=(n, *shape)).astype(np.float32)

    aux_labels = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, 30)])
    aux = (windows(aux_labels.size), aux_labels)
    mixed = rng.integers(0, n_classes, 12)
    updates = [
        fedsgd_update(model, windows(12), mixed, seed=1),
        fedsgd_update(model, windows(1), mixed[:1], seed=2),
        fedsgd_update(model, windows(10), np.full(10, n_classes - 1), seed=3),
        fedavg_update(model, windows(12), mixed, n_steps=3, lr=0.05, seed=4),
        LastLayerUpdate(rng.normal(size=(n_classes, 6)), rng.normal(size=n_classes), 7),  # e.g. noised by LDP
    ]
    return _Fixture(model, aux, updates)


def _resolve(attack: type[Attack] | str) -> list[type[Attack]]:
    if isinstance(attack, str):
        if attack not in ATTACKS:
            raise ValueError(f"unknown attack {attack!r}; available: {sorted(ATTACKS)}.")
        return list(ATTACKS[attack].variants.values())
    if isinstance(attack, type) and issubclass(attack, Attack):
        return [attack]
    raise ValueError(f"check_attack takes an Attack subclass or a registry name, got {attack!r}.")


def _fail(cls: type[Attack], options: Mapping[str, Any], check: str, detail: str) -> None:
    args = ", ".join(f"{k}={v!r}" for k, v in options.items())
    raise AssertionError(f"{cls.__name__}({args}) fails the attack contract ({check}): {detail}")


def _check_options(cls: type[Attack]) -> None:
    for name, default in cls.option_defaults().items():
        bad = bad_option_value(default)
        if bad is None:
            continue
        why = raises_value_error(partial(cls, **{name: bad}), name)
        if why:
            _fail(cls, {name: bad}, "a bad option value raises a ValueError naming it", why)
    if cls.name in ATTACKS and cls in ATTACKS[cls.name].variants.values():
        entry = ATTACKS[cls.name]
        variant = {"variant": cls.variant} if len(entry.variants) > 1 else {}
        why = raises_value_error(lambda: entry.build(**variant, no_such_option=1), "no_such_option")
        if why:
            _fail(cls, {"no_such_option": 1}, "the registry rejects an unknown option", why)
        if type(entry.build(**variant)) is not cls:
            _fail(cls, variant, "the registry builds this class", f"it built {type(entry.build(**variant)).__name__}")


def _check_counts(cls, options, counts, update: LastLayerUpdate, what: str) -> None:
    c, n = update.n_classes, update.n_windows
    if not isinstance(counts, np.ndarray) or counts.dtype != np.int64 or counts.shape != (c,):
        got = f"{type(counts).__name__} {getattr(counts, 'dtype', '')} {getattr(counts, 'shape', '')}"
        _fail(cls, options, "counts are an int64 array of shape (C,)", f"{what}: got {got}, expected int64 ({c},)")
    if counts.min() < 0 or int(counts.sum()) != n:
        _fail(cls, options, "counts are non-negative and sum to N", f"{what}: got {counts.tolist()} for N = {n}")


def _check_one(cls: type[Attack], options: Mapping[str, Any], fixtures: list[_Fixture]) -> None:
    attack = cls(**options)
    needs = attack.needs
    if not isinstance(needs, Needs):
        _fail(cls, options, "needs is a Needs", f"got {needs!r}")
    why = raises_value_error(lambda: cls(**options).count(fixtures[0].updates[0]))
    if why:
        _fail(cls, options, "count before prepare raises", why)
    for fx in fixtures:
        if needs.model:
            why = raises_value_error(partial(cls(**options).prepare, None, fx.aux), "model")
            if why:
                _fail(cls, options, "it needs a model and fails clearly without one", why)
        if needs.aux:
            why = raises_value_error(partial(cls(**options).prepare, fx.model, None), "aux")
            if why:
                _fail(cls, options, "it needs aux and fails clearly without it", why)
        given = (fx.model if needs.model else None, fx.aux if needs.aux else None)
        try:
            prepared = cls(**options).prepare(*given)
        except Exception as err:  # noqa: BLE001
            _fail(
                cls,
                options,
                "it runs with what it declares (model=None unless it needs a model, aux=None unless it needs aux)",
                f"prepare raised {type(err).__name__}: {err}",
            )
        if not dataclasses.is_dataclass(prepared.preparation) or isinstance(prepared.preparation, type):
            _fail(cls, options, "the preparation is a dataclass instance", f"got {type(prepared.preparation).__name__}")
        once = []
        for k, update in enumerate(fx.updates):
            before = (update.weight_grad.copy(), update.bias_grad.copy())
            counts = prepared.count(update)
            _check_counts(cls, options, counts, update, f"update {k}")
            _check_no_bias(cls, options, prepared, update, k)
            if not (np.array_equal(before[0], update.weight_grad) and np.array_equal(before[1], update.bias_grad)):
                _fail(cls, options, "count does not modify the update", f"update {k} changed")
            once.append(counts)
        for k, update in reversed(list(enumerate(fx.updates))):
            if not np.array_equal(prepared.count(update), once[k]):
                _fail(cls, options, "count is pure (same update, same counts)", f"update {k} counted twice differs")
        full = cls(**options).prepare(fx.model, fx.aux)
        for k, update in enumerate(fx.updates):
            fresh = cls(**options).prepare(*given).count(update)
            if not np.array_equal(fresh, once[k]):
                _fail(
                    cls,
                    options,
                    "preparing once equals preparing per batch (and is deterministic)",
                    f"update {k}: {once[k].tolist()} once, {fresh.tolist()} freshly prepared",
                )
            if not needs.model or not needs.aux:
                with_all = full.count(update)
                if not np.array_equal(with_all, once[k]):
                    _fail(
                        cls,
                        options,
                        "what it does not declare it does not use",
                        f"update {k}: {once[k].tolist()} with what it declares, {with_all.tolist()} given model "
                        "and aux too",
                    )


def _check_no_bias(cls: type[Attack], options: Mapping[str, Any], prepared: Attack, update, k: int) -> None:
    """The update without its bias row: refused with :class:`NoBiasError` iff the attack reads the bias."""
    bare = dataclasses.replace(update, bias_grad=None)
    try:
        counts = prepared.count(bare)
    except NoBiasError as err:
        if not prepared.reads_bias:
            _fail(cls, options, "an attack that does not read the bias counts a bias-free update", str(err))
        return
    if prepared.reads_bias:
        _fail(cls, options, "an attack that reads the bias refuses a bias-free update", f"update {k} was counted")
    _check_counts(cls, options, counts, bare, f"update {k} without bias")


def check_attack(attack: type[Attack] | str, classes: tuple[int, ...] = (5, 2)) -> list[str]:
    """Verify that an attack honours the attack contract (see the module docstring); raise if not.

    Parameters
    ----------
    attack : Attack subclass or str
        The class, or a registry name (then the attack and every registered variant of it).
    classes : tuple of int
        Numbers of classes of the small models and updates the checks run on.

    Returns
    -------
    list of str
        The checked ``class(options)`` combinations.

    Raises
    ------
    AssertionError
        Naming the class, the options and the failed check.
    """
    fixtures = [_fixture(c, seed=k) for k, c in enumerate(classes)]
    checked = []
    for cls in _resolve(attack):
        if not inspect.isclass(cls) or not dataclasses.is_dataclass(cls):
            raise AssertionError(f"{cls!r} is not a dataclass: an attack's options are its dataclass fields.")
        _check_options(cls)
        for options in ({}, *cls.examples):
            _check_one(cls, options, fixtures)
            checked.append(f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in options.items())})")
    return checked
