"""The defence contract as a public check: :func:`check_defense`, run by the test suite on every registered defence.

Contract verified on one instance (the test suite takes a typical one per registered name from :data:`EXAMPLES`):

- **class**: a frozen dataclass subclass of :class:`~leakage_core.defenses.base.Defense`, registered under its
  ``name`` with a ``stage`` in :data:`~leakage_core.defenses.base.STAGES` and a ``reference`` string;
- **options**: a string option given an unknown value and a numeric option given ``-1`` raise ``ValueError``
  naming the option; through the registry, an unknown option name raises ``ValueError`` naming it;
- **identity**: ``key()`` and ``public()`` are JSON-serialisable dicts naming the defence; ``key()`` survives a
  JSON round trip and ``defense_from_key(key)`` equals the defence (and hashes equally); ``label`` is a
  non-empty one-line string;
- **update hooks**: ``transform_update`` returns a :class:`~leakage_core.federated.update.LastLayerUpdate` of
  the same shapes, with a bias iff the input has one, the same ``n_windows``, ``n_steps``, ``lr`` and
  ``sampler``; it does not modify its input, and the same seed gives the same output; ``on_step`` changes a
  classifier's gradients as ``transform_update`` does (update stage) or not at all (other stages);
- **label hooks**: ``training_labels`` and ``client_labels`` return integer arrays of the same length with values
  in ``[0, C)``, leave their input unmodified and are deterministic given the seed;
- **server side**: ``debias_counts`` returns int64 counts of shape ``(C,)``, non-negative, summing to ``N``,
  and leaves its input unmodified;
- **guarantee**: ``epsilon(delta, updates)`` is ``None`` for every argument, or a positive float (``inf``
  allowed) that does not grow with ``delta`` and does not shrink with ``updates``;
- **model and training**: ``model_kwargs()`` is a dict of keyword arguments; ``train_config`` returns a
  :class:`~leakage_core.models.training.TrainConfig`.

The idea follows the attack contract (:mod:`leakage_core.attacks.contract`) and scikit-learn's
``check_estimator`` (``sklearn/utils/estimator_checks.py``).
"""

from __future__ import annotations

import dataclasses
import json
from functools import partial
from numbers import Real
from typing import Callable

import numpy as np

from ..federated.ldp import LDP
from ..federated.update import LastLayerUpdate
from .base import DEFENSES, STAGES, Defense, defense_from_key, make_defense
from .dp_sgd import DPSGD
from .label_dp import RandomizedResponse
from .no_bias import NoBias
from .quantize import Quantize
from .sign import SignCompression
from .topk import TopK
from ..validation import bad_option_value, raises_value_error
from .weighted_loss import WeightedLoss

#: a typical instance of every registered defence, by name (the contract test requires one per name)
EXAMPLES: dict[str, Callable[[], Defense]] = {
    "ldp": partial(LDP, sigma=0.1, rho=0.1),
    "topk": partial(TopK, 0.1),
    "sign": SignCompression,
    "quantize": partial(Quantize, 8),
    "label_dp": partial(RandomizedResponse, 2.0),
    "no_bias": NoBias,
    "weighted_loss": partial(WeightedLoss, (0.5, 1.0, 2.0, 1.0, 4.0)),  # the contract's updates have 5 classes
    "dp_sgd": partial(DPSGD, 1.0),
}


def _fail(defense: Defense, check: str, detail: str) -> None:
    raise AssertionError(f"{defense!r} fails the defence contract ({check}): {detail}")


def _updates(n_classes: int = 5, d: int = 6, seed: int = 0) -> list[LastLayerUpdate]:
    rng = np.random.default_rng(seed)
    return [
        LastLayerUpdate(rng.normal(size=(n_classes, d)), rng.normal(size=n_classes), 12),
        LastLayerUpdate(rng.normal(size=(n_classes, d)), None, 12),  # a classifier without bias
        LastLayerUpdate(rng.normal(size=(n_classes, d)), rng.normal(size=n_classes), 12, 3, 0.05, "shuffle"),
        LastLayerUpdate(rng.normal(size=(n_classes, 3)) * 1e-3, rng.normal(size=n_classes) * 1e-3, 1),  # one window
    ]


def _check_class(defense: Defense) -> None:
    cls = type(defense)
    if not (isinstance(defense, Defense) and dataclasses.is_dataclass(cls)):
        _fail(defense, "a Defense dataclass", f"got {cls.__name__}")
    if not cls.__dataclass_params__.frozen:
        _fail(defense, "a frozen dataclass", "its fields can be assigned")
    if DEFENSES.get(cls.name) is not cls:
        _fail(defense, "registered under its name", f"DEFENSES[{cls.name!r}] is {DEFENSES.get(cls.name)!r}")
    if cls.stage not in STAGES or not isinstance(cls.reference, str):
        _fail(defense, "a stage and a reference", f"stage {cls.stage!r}, reference {cls.reference!r}")


def _check_options(defense: Defense) -> None:
    for f in dataclasses.fields(defense):
        bad = bad_option_value(getattr(defense, f.name))
        if bad is None:
            continue
        why = raises_value_error(lambda f=f, bad=bad: dataclasses.replace(defense, **{f.name: bad}), f.name)
        if why:
            _fail(defense, f"a bad option value ({f.name}={bad!r}) raises a ValueError naming it", why)
    why = raises_value_error(lambda: make_defense(defense.name, no_such_option=1), "no_such_option")
    if why:
        _fail(defense, "the registry rejects an unknown option", why)


def _check_identity(defense: Defense) -> None:
    for what in ("key", "public"):
        value = getattr(defense, what)()
        try:
            text = json.dumps(value, sort_keys=True)
        except (TypeError, ValueError) as err:
            _fail(defense, f"{what}() is JSON-serialisable", str(err))
        if not isinstance(value, dict) or value.get("defense") != defense.name:
            _fail(defense, f"{what}() is a dict naming the defence", f"got {value!r}")
        if what == "key" and json.loads(text) != value:
            _fail(defense, "key() survives a JSON round trip", f"{value!r} became {json.loads(text)!r}")
    again = defense_from_key(json.loads(json.dumps(defense.key())))
    if again != defense or hash(again) != hash(defense):
        _fail(defense, "defense_from_key(key) equals the defence and hashes equally", f"got {again!r}")
    label = defense.label
    if not isinstance(label, str) or not label.strip() or "\n" in label:
        _fail(defense, "label is a non-empty one-line string", f"got {label!r}")


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def _check_transform(defense: Defense) -> None:
    for k, update in enumerate(_updates()):
        before = (update.weight_grad.copy(), None if update.bias_grad is None else update.bias_grad.copy())
        out = defense.transform_update(update, seed=k)
        if not isinstance(out, LastLayerUpdate):
            _fail(defense, "transform_update returns a LastLayerUpdate", f"update {k}: got {type(out).__name__}")
        if out.weight_grad.shape != update.weight_grad.shape or (out.bias_grad is None) != (update.bias_grad is None):
            got = (out.weight_grad.shape, None if out.bias_grad is None else out.bias_grad.shape)
            _fail(defense, "transform_update keeps the shapes (and a missing bias missing)", f"update {k}: {got}")
        meta = ("n_windows", "n_steps", "lr", "sampler")
        if [getattr(out, m) for m in meta] != [getattr(update, m) for m in meta]:
            _fail(defense, f"transform_update keeps {meta}", f"update {k} changed them")
        if not (_same(before[0], update.weight_grad) and _same(before[1], update.bias_grad)):
            _fail(defense, "transform_update does not modify its input", f"update {k} changed")
        again = defense.transform_update(update, seed=k)
        if not (_same(out.weight_grad, again.weight_grad) and _same(out.bias_grad, again.bias_grad)):
            _fail(defense, "transform_update is deterministic given the seed", f"update {k}: two calls differ")


def _check_on_step(defense: Defense) -> None:
    import torch

    for k, update in enumerate(_updates()[:2]):
        c, d = update.weight_grad.shape
        model = torch.nn.Module()
        model.classifier = torch.nn.Linear(d, c, bias=update.has_bias)
        model.classifier.weight.grad = torch.tensor(update.weight_grad, dtype=torch.float32)
        if update.has_bias:
            model.classifier.bias.grad = torch.tensor(update.bias_grad, dtype=torch.float32)
        single = LastLayerUpdate(
            model.classifier.weight.grad.numpy().astype(np.float64),
            None if not update.has_bias else model.classifier.bias.grad.numpy().astype(np.float64),
            n_windows=1,
        )
        want = defense.transform_update(single, seed=k) if defense.stage == "update" else single
        defense.on_step(model, seed=k)
        got_w = model.classifier.weight.grad.numpy()
        got_b = None if not update.has_bias else model.classifier.bias.grad.numpy()
        ok = np.allclose(got_w, want.weight_grad, rtol=1e-5, atol=1e-6) and (
            got_b is None or np.allclose(got_b, want.bias_grad, rtol=1e-5, atol=1e-6)
        )
        if not ok:
            what = "as transform_update does" if defense.stage == "update" else "not at all (not an update defence)"
            _fail(defense, f"on_step changes the classifier's gradients {what}", f"case {k} differs")


def _check_labels(defense: Defense) -> None:
    rng = np.random.default_rng(0)
    cases = [(5, rng.integers(0, 5, 40)), (3, np.full(7, 2)), (2, np.array([1]))]
    for hook in ("training_labels", "client_labels"):
        fn = getattr(defense, hook)
        for k, (c, labels) in enumerate(cases):
            before = labels.copy()
            out = fn(labels, c, seed=k)
            if not isinstance(out, np.ndarray) or not np.issubdtype(out.dtype, np.integer) or out.shape != labels.shape:
                got = f"{type(out).__name__} {getattr(out, 'dtype', '')} {getattr(out, 'shape', '')}"
                _fail(defense, f"{hook} returns integer labels of the same length", f"case {k}: {got}")
            if out.size and (out.min() < 0 or out.max() >= c):
                _fail(defense, f"{hook} returns labels in [0, C)", f"case {k}: {out.min()}..{out.max()} for C = {c}")
            if not np.array_equal(labels, before):
                _fail(defense, f"{hook} does not modify its input", f"case {k} changed")
            if not np.array_equal(fn(labels, c, seed=k), out):
                _fail(defense, f"{hook} is deterministic given the seed", f"case {k}: two calls differ")


def _check_debias(defense: Defense) -> None:
    rng = np.random.default_rng(1)
    for k, update in enumerate(_updates()):
        c, n = update.n_classes, update.n_windows
        for counts in (rng.multinomial(n, np.full(c, 1 / c)), np.eye(c, dtype=np.int64)[0] * n):
            before = counts.copy()
            out = defense.debias_counts(counts, update)
            if not isinstance(out, np.ndarray) or out.dtype != np.int64 or out.shape != (c,):
                got = f"{type(out).__name__} {getattr(out, 'dtype', '')} {getattr(out, 'shape', '')}"
                _fail(defense, "debias_counts returns int64 counts of shape (C,)", f"update {k}: {got}")
            if out.min() < 0 or int(out.sum()) != n:
                _fail(defense, "debias_counts is non-negative and sums to N", f"update {k}: {out.tolist()}, N = {n}")
            if not np.array_equal(counts, before):
                _fail(defense, "debias_counts does not modify its input", f"update {k} changed")


def _check_epsilon(defense: Defense) -> None:
    deltas, steps = (1e-6, 1e-5, 1e-3), (1, 10)
    table = {(d, s): defense.epsilon(d, s) for d in deltas for s in steps}
    if defense.epsilon(1e-5) != table[(1e-5, 1)]:
        _fail(defense, "epsilon(delta) is epsilon(delta, updates=1)", "they differ")
    values = list(table.values())
    if all(v is None for v in values):
        return
    if any(v is None or not isinstance(v, Real) or isinstance(v, bool) or not v > 0 for v in values):  # NaN too
        _fail(defense, "epsilon is None throughout or a positive number (inf allowed)", f"got {table}")
    for s in steps:
        col = [table[(d, s)] for d in deltas]
        if any(b > a * (1 + 1e-9) for a, b in zip(col, col[1:])):
            _fail(defense, "epsilon does not grow with delta", f"updates = {s}: {col} for deltas {deltas}")
    for d in deltas:
        if table[(d, steps[1])] < table[(d, steps[0])] * (1 - 1e-9):
            _fail(defense, "epsilon does not shrink with more updates", f"delta = {d}: {table}")


def _check_model_and_training(defense: Defense) -> None:
    kwargs = defense.model_kwargs()
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        _fail(defense, "model_kwargs() is a dict of keyword arguments", f"got {kwargs!r}")
    from ..models.training import TrainConfig

    config = defense.train_config(TrainConfig(epochs=1))
    if not isinstance(config, TrainConfig):
        _fail(defense, "train_config returns a TrainConfig", f"got {type(config).__name__}")


#: the checks :func:`check_defense` runs, in order
CHECKS: dict[str, Callable[[Defense], None]] = {
    "class": _check_class,
    "options": _check_options,
    "identity": _check_identity,
    "transform_update": _check_transform,
    "on_step": _check_on_step,
    "labels": _check_labels,
    "debias_counts": _check_debias,
    "epsilon": _check_epsilon,
    "model and training": _check_model_and_training,
}


def check_defense(defense: Defense) -> list[str]:
    """Verify that ``defense`` honours the defence contract (see the module docstring); raise if not.

    Returns the names of the checks run (:data:`CHECKS`); raises ``AssertionError`` naming the defence, the
    failed check and what went wrong.
    """
    if not isinstance(defense, Defense):
        raise AssertionError(f"check_defense takes a Defense instance, got {defense!r}.")
    for check in CHECKS.values():
        check(defense)
    return list(CHECKS)
