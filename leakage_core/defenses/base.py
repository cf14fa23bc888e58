"""The defence interface: one :class:`Defense` subclass per file, registered where it is defined.

Contract:

- A defence is a frozen dataclass subclass of :class:`Defense` with a registry ``name``, the ``stage`` at which
  the client applies it and its options as fields (checked in ``__post_init__``: one clear ``ValueError``; a float
  option is stored as a ``float``, so that ``2`` and ``2.0`` give one key).
- ``stage`` says where it acts, and which hooks it overrides (every hook defaults to "no change"):

  * ``"model"``: the architecture (``model_kwargs``, e.g. a classifier without bias);
  * ``"training"``: how the model is trained and how the client computes its update (``train_config``,
    ``fit`` — its own training loop —, ``client_update`` — its own client computation);
  * ``"labels"``: the labels, before training and before the client's update (``training_labels``,
    ``client_labels``);
  * ``"update"``: the update after it is computed (``transform_update``), in training at every step
    (``on_step``, derived from ``transform_update``) and on the client's update.

- ``public()`` is what the server knows of the defence (the protocol's parameters: it sets them); every update
  computed under a defence records it (``LastLayerUpdate.defense``). ``debias_counts`` is what a server that knows
  the defence does to the counts an attack recovered (default: nothing); the ``aware`` attack applies it.
- ``epsilon(delta, updates, adjacency="replace")`` is the defence's differential-privacy guarantee over ``updates``
  updates of a client (``None``: the defence gives none), computed with Opacus's accountants
  (:mod:`leakage_core.defenses.accounting`). ``adjacency`` says which inputs are neighbours: ``"replace"`` (the
  default), the unit's contents changed with everything else (the batch size, the batches) fixed — what hides a
  batch's labels —, or ``"add_remove"``, the unit added or removed (Opacus's convention, what its accountants report
  for training). A defence without a guarantee accepts it and returns ``None``.
- ``key()`` identifies the defence in every cache key (grid results, checkpoints); ``label`` is its readable name,
  which results and records use as its identifier: different defences get different labels.
- ``check_as_defense()`` refuses, when a setting or training configuration is built, an object that cannot act as
  a defence there (``LDP(scope="all")`` with clipping).

Registration by decorator follows the attack registry (:mod:`leakage_core.attacks.registry`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from torch import nn

    from ..federated.update import LastLayerUpdate
    from ..models.training import RunControl, TrainConfig

#: where a defence acts, in pipeline order
STAGES: tuple[str, ...] = ("model", "training", "labels", "update")


@dataclass(frozen=True)
class Defense:
    """Base class of every client-side defence (frozen dataclass; options are its fields).

    Subclasses set ``name``, ``stage`` and ``reference`` and override the hooks of their
    stage (see the module docstring); the defaults change nothing.
    """

    name: ClassVar[str] = ""
    stage: ClassVar[str] = ""
    #: the publication the defence comes from (one line), or "" for the book's own
    reference: ClassVar[str] = ""

    # ------------------------------------------------------------------ identity
    def options(self) -> dict[str, Any]:
        """The options as plain JSON values (the fields)."""
        return {k: _plain(v) for k, v in dataclasses.asdict(self).items()}

    def key(self) -> dict[str, Any]:
        """What identifies the defence in cache keys: ``{"defense": name, **options}``."""
        return {"defense": self.name, **self.options()}

    @property
    def label(self) -> str:
        """A short readable name, e.g. ``"top-k 10%"`` (default: name and options)."""
        opts = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.options().items())
        return f"{self.name}({opts})" if opts else self.name

    def public(self) -> dict[str, Any]:
        """What the server knows of the defence (default: its key; the protocol sets its parameters)."""
        return self.key()

    def check_as_defense(self) -> None:
        """Raise one clear ``ValueError`` if this object cannot act as a client's defence (``defense=`` of a
        :class:`~leakage_core.federated.ClientSetting` or a :class:`~leakage_core.models.TrainConfig`, which call
        it when built); default: it can."""
        return None

    # ------------------------------------------------------------------ model
    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`~leakage_core.models.build_model` (e.g. ``{"bias": False}``)."""
        return {}

    # ------------------------------------------------------------------ training
    def train_config(self, config: "TrainConfig") -> "TrainConfig":
        """The training configuration under the defence (e.g. a class-weighted loss)."""
        return config

    def training_labels(self, labels: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
        """The labels the model is trained on (e.g. randomized once, before training)."""
        return labels

    def fit(
        self, model: "nn.Module", windows: np.ndarray, labels: np.ndarray, config: "TrainConfig", control: "RunControl"
    ) -> list[float] | None:
        """Train ``model`` with the defence's own loop and return the loss per epoch; ``None``: the standard loop.
        ``control`` (:class:`~leakage_core.models.training.RunControl`): device, state file, progress, callback."""
        return None

    def on_step(self, model: "nn.Module", seed: int) -> None:
        """Change the classifier's gradients in place after each backward pass of training (update stage).

        Only the classifier's (last layer's) weight and bias gradients go through :meth:`transform_update`; the
        other layers' gradients are left as they are, so a model trained this way shows the cost of the defence on
        the last layer only (a client compressing its whole update would compress every layer)."""
        if self.stage != "update":
            return
        import torch

        from ..federated.update import LastLayerUpdate

        layer = model.classifier
        if layer.weight.grad is None:
            return
        b = None if layer.bias is None or layer.bias.grad is None else layer.bias.grad.detach().cpu().numpy()
        update = LastLayerUpdate(layer.weight.grad.detach().cpu().numpy(), b, n_windows=1)
        out = self.transform_update(update, seed)
        with torch.no_grad():
            layer.weight.grad.copy_(torch.tensor(out.weight_grad, dtype=layer.weight.grad.dtype))
            if b is not None:
                layer.bias.grad.copy_(torch.tensor(out.bias_grad, dtype=layer.bias.grad.dtype))

    # ------------------------------------------------------------------ the client's update
    def client_labels(self, labels: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
        """The labels the client computes its update on (e.g. randomized response)."""
        return labels

    def client_update(
        self, model: "nn.Module", windows: np.ndarray, labels: np.ndarray, setting: Any, batch: int
    ) -> "LastLayerUpdate | None":
        """The client's update computed the defence's way (e.g. per-window clipping); ``None``: the usual way."""
        return None

    def transform_update(self, update: "LastLayerUpdate", seed: int) -> "LastLayerUpdate":
        """The update after the defence (post-processing; seeded)."""
        return update

    # ------------------------------------------------------------------ the server's side
    def debias_counts(self, counts: np.ndarray, update: "LastLayerUpdate") -> np.ndarray:
        """What a server that knows the defence makes of counts an attack recovered (default: unchanged)."""
        return counts

    def epsilon(self, delta: float, updates: int = 1, *, adjacency: str = "replace") -> float | None:
        """The (epsilon, delta) guarantee for ``updates`` updates of one client; ``None``: no DP guarantee.

        ``adjacency`` (keyword): ``"replace"`` (default; the unit protected keeps its place and size, its contents
        change: a batch's windows and labels, a window, a label) or ``"add_remove"`` (the unit is added or
        removed). A defence states its unit in its own docstring; one without a guarantee ignores ``adjacency``.
        """
        return None


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


#: the registry: name -> defence class, in registration order
DEFENSES: dict[str, type[Defense]] = {}


def register_defense(cls: type[Defense]) -> type[Defense]:
    """Class decorator: add a :class:`Defense` subclass to :data:`DEFENSES` under ``cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, Defense)):
        raise TypeError("register_defense decorates Defense subclasses.")
    if not cls.name or cls.stage not in STAGES:
        raise ValueError(f"{cls.__name__} needs a name and a stage in {STAGES}, got {cls.name!r}, {cls.stage!r}.")
    if cls.name in DEFENSES and DEFENSES[cls.name] is not cls:
        raise ValueError(f"a defence named {cls.name!r} is registered already ({DEFENSES[cls.name].__name__}).")
    DEFENSES[cls.name] = cls
    return cls


def make_defense(name: str, **options: Any) -> Defense:
    """The defence ``name`` of :data:`DEFENSES` with ``options`` (one clear ``ValueError`` for an unknown name, an
    unknown or missing option, or an option value the defence refuses).

    Introduced in Chapter 16.
    """
    if name not in DEFENSES:
        raise ValueError(f"unknown defence {name!r}; registered: {sorted(DEFENSES)}.")
    cls = DEFENSES[name]
    fields = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ValueError(f"defence {name!r} takes the options {fields}, got the unknown option(s) {unknown}.")
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [f for f in required if f not in options]
    if missing:
        raise ValueError(f"defence {name!r} needs the option(s) {missing} (its options: {fields}).")
    try:
        return cls(**options)
    except TypeError as err:  # a value of a type the defence's checks did not foresee
        raise ValueError(f"defence {name!r} got an option value of a wrong type: {err} (options {options}).") from None


def defense_from_key(key: dict[str, Any]) -> Defense:
    """The defence a :meth:`Defense.key` (or :meth:`Defense.public`) describes.

    Introduced in Chapter 17.
    """
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in key.items() if k != "defense"}
    return make_defense(key["defense"], **options)


def list_defenses() -> "pd.DataFrame":
    """One row per registered defence: name, stage, reference, class.

    Introduced in Chapter 16.
    """
    import pandas as pd

    return pd.DataFrame(
        [{"name": n, "stage": c.stage, "reference": c.reference, "class": c.__name__} for n, c in DEFENSES.items()]
    )


def defense_label(defense: Defense | None) -> str:
    """``"none"`` or the defence's :attr:`Defense.label`."""
    return "none" if defense is None else defense.label
