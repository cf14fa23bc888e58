"""Pipeline stage 6: run attacks over a client's batches and score them.

Introduced in Chapter 4; every later chapter's tables come from these functions.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .attacks import ATTACKS, NEEDS_MODEL, PAPER_ATTACKS
from .metrics import summarize
from .sampling import make_batches
from .updates import LDP, LastLayerUpdate, fedavg_update, fedsgd_update


def run_attacks(
    update: LastLayerUpdate,
    attacks: Iterable[str] = PAPER_ATTACKS,
    model=None,
    aux=None,
    options: dict[str, dict] | None = None,
) -> dict[str, np.ndarray]:
    """Apply several attacks to one update; ``options`` maps an attack name to extra keyword options.

    Introduced in Chapter 4. Every name in ``attacks`` and every key of ``options`` is run; attacks
    listed in ``NEEDS_MODEL`` get ``model=``, ``llg_plus`` also ``aux=``. Variants are named
    ``"name:label"``, e.g. ``{"llbg:empirical": {"impact": "empirical"}}`` runs LLBG with that option
    under the name ``llbg:empirical``.
    """
    options = dict(options or {})
    out = {}
    attacks = list(attacks)
    for key in attacks + [k for k in options if k not in attacks]:
        name = key.split(":")[0]
        if name not in ATTACKS:
            raise ValueError(f"unknown attack {name!r}; available: {sorted(ATTACKS)}.")
        kw = dict(options.get(key, {}))
        if name in NEEDS_MODEL:
            kw.setdefault("model", model)
        if name == "llg_plus" or kw.get("confidence") == "aux":
            kw.setdefault("aux", aux)
            kw.setdefault("model", model)
        out[key] = ATTACKS[name](update, **kw)
    return out


def attack_client(
    model,
    windows: np.ndarray,
    labels: np.ndarray,
    sampler: str = "shuffle",
    batch_size: int = 100,
    attacks: Iterable[str] = PAPER_ATTACKS,
    aux=None,
    options: dict[str, dict] | None = None,
    mode: str = "train",
    n_steps: int = 1,
    lr: float = 1e-4,
    ldp: LDP | None = None,
    seed: int = 0,
    max_batches: int | None = None,
) -> pd.DataFrame:
    """Every batch of one client: build the update, run the attacks, keep true and predicted counts.

    Introduced in Chapter 4. ``n_steps > 1`` builds FedAvg updates (``lr``), otherwise FedSGD
    (closed form). Returns one row per (batch, attack) with columns ``batch, attack, true, pred``
    (count arrays) and ``ln_acc``.
    """
    rows = []
    options = _with_cached_impacts(model, list(attacks), dict(options or {}), aux)
    batches = make_batches(labels, batch_size, sampler, seed=seed)[:max_batches]
    n_classes = model.classifier.out_features
    for b, idx in enumerate(batches):
        x, y = windows[idx], labels[idx]
        if n_steps > 1:
            update = fedavg_update(model, x, y, n_steps=n_steps, lr=lr, mode=mode, seed=seed + b, ldp=ldp)
        else:
            update = fedsgd_update(model, x, y, mode=mode, seed=seed + b, ldp=ldp)
        true = np.bincount(y, minlength=n_classes)
        for name, pred in run_attacks(update, attacks, model=model, aux=aux, options=options).items():
            rows.append({"batch": b, "attack": name, "true": true, "pred": pred,
                         "ln_acc": float(np.minimum(true, pred).sum() / true.sum())})
    return pd.DataFrame(rows)


def _with_cached_impacts(model, attacks: list[str], options: dict, aux) -> dict:
    """LLG*/LLG+ impacts depend on the model and probe data only: estimate them once per client."""
    from .attacks import estimate_impacts

    for key in attacks + [k for k in options if k not in attacks]:
        name = key.split(":")[0]
        opts = dict(options.get(key, {}))
        if name in ("llg_star", "llg_plus") and "impacts" not in opts:
            probe = {k: opts[k] for k in ("dummy", "n_dummy", "n_aux", "mode", "seed") if k in opts}
            the_aux = opts.get("aux", aux) if name == "llg_plus" else None
            if name == "llg_plus" and the_aux is None:
                continue  # llg_plus will raise its own clear error
            opts["impacts"] = estimate_impacts(model, the_aux, **probe)
            options[key] = opts
    return options


def attack_clients(
    model,
    dataset,
    subjects: Iterable[int] | None = None,
    samplers: Iterable[str] = ("shuffle", "sequential", "balanced"),
    aux_from_others: bool = False,
    progress: bool = True,
    **kwargs,
) -> pd.DataFrame:
    """:func:`attack_client` for several subjects and samplers, with ``subject`` and ``sampler`` columns.

    Introduced in Chapter 4. ``aux_from_others=True`` hands the attacker the other subjects' windows
    as auxiliary data (the leave-one-subject-out server's knowledge).
    """
    subjects = dataset.subject_ids if subjects is None else list(subjects)
    jobs = [(s, sp) for s in subjects for sp in samplers]
    frames = []
    for s, sp in tqdm(jobs, desc="clients x samplers", disable=not progress):
        aux = dataset.windows_of([k for k in dataset.subject_ids if k != s]) if aux_from_others else None
        client = dataset.subjects[s]
        df = attack_client(model, client.windows, client.labels, sampler=sp, aux=aux, **kwargs)
        frames.append(df.assign(subject=s, sampler=sp))
    return pd.concat(frames, ignore_index=True)


def score(results: pd.DataFrame, by: Iterable[str] = ("attack",)) -> pd.DataFrame:
    """LnAcc, LeAcc, LeRecall and ClassAcc: per client first, then the mean over clients.

    Introduced in Chapter 7. ``results`` comes from :func:`attack_clients` (or has its columns);
    ``by`` are the grouping columns kept in the output besides the client.
    """
    by = list(by)
    client_cols = by + (["subject"] if "subject" in results.columns else [])
    rows = []
    for key, grp in results.groupby(client_cols, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(client_cols, key)), **summarize(np.stack(grp["true"]), np.stack(grp["pred"]))})
    per_client = pd.DataFrame(rows)
    return per_client.groupby(by).mean(numeric_only=True).drop(columns=["subject"], errors="ignore")
