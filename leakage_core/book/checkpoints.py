"""The trained models the chapters use, trained once and committed with the results.

Introduced in Chapter 3. A trained model's weights depend on which vector instructions torch's CPU
kernels use (AVX-512, AVX2 or none: ``ATEN_CPU_CAPABILITY``), so a chapter that retrained its model
on every machine would state numbers that hold on one kind of CPU only. The chapters' leave-one-subject-out
models are therefore trained once by::

    python -m leakage_core.book.checkpoints            # = make checkpoints

and committed in ``results/checkpoints/`` with ``provenance.json`` (machine, CPU capability, versions,
each model's held-out macro-F1). :func:`leakage_core.models.fold_model` loads a committed copy
whenever one matches the fold and the configuration exactly (the same cache key), on every CPU.
The command is resumable: models already committed with the right key are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from ..models.training import TrainConfig

#: the attacked client of the chapters' trained models
BOOK_CLIENT = 1


@dataclass(frozen=True)
class BookCheckpoint:
    """One trained model of the chapters: its data, architecture, held-out client and training."""

    chapters: tuple[int, ...]
    profile: str
    n_subjects: int
    minutes: float
    model: str
    held_out: int
    config: TrainConfig

    def dataset(self):
        """The chapter's generated clients (:func:`leakage_core.data.book_dataset`, seed 0)."""
        from ..data import book_dataset

        return book_dataset(self.profile, n_subjects=self.n_subjects, minutes=self.minutes, seed=0)


def _chapter_config(epochs: int, class_weighted: bool = False) -> TrainConfig:
    return TrainConfig(epochs=epochs, lr=1e-3, class_weighted=class_weighted, seed=0)


def book_checkpoints() -> tuple[BookCheckpoint, ...]:
    """Every trained model a chapter loads (Chapters 3, 5, 6 and the explorer of Chapters 10 and 13).

    Introduced in Chapter 6, which checks that its model is the committed one.
    """
    from .explorer import EXPLORER_DATA, EXPLORER_TRAINING

    ch = ("wetlab", 6, 10.0, "deepconvlstm")
    out = [BookCheckpoint((3, 6), *ch, BOOK_CLIENT, _chapter_config(4))]
    out += [BookCheckpoint((3,), *ch, BOOK_CLIENT, _chapter_config(e)) for e in (8,)]
    out += [BookCheckpoint((5,), *ch, k, _chapter_config(4, class_weighted=True)) for k in (1, 2)]
    out += [BookCheckpoint((5,), *ch, BOOK_CLIENT, _chapter_config(e, class_weighted=True)) for e in (1, 8)]
    explorer = TrainConfig(seed=EXPLORER_DATA["seed"], **EXPLORER_TRAINING)
    out += [
        BookCheckpoint(
            (10, 13),
            "wetlab",
            EXPLORER_DATA["n_subjects"],
            float(EXPLORER_DATA["minutes"]),
            "deepconvlstm",
            BOOK_CLIENT,
            explorer,
        )
    ]
    return tuple(out)


def _capability() -> str:
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except AttributeError:  # pragma: no cover - older torch
        return "unknown"


def write_checkpoints(
    out: str | os.PathLike = "results", specs: Sequence[BookCheckpoint] | None = None, progress: bool = True
) -> dict:
    """Train every chapter model not yet committed in ``<out>/checkpoints`` and write its provenance.

    A committed file whose key matches is kept (so an interrupted run resumes);
    a missing or stale one is trained and written atomically in its place; files of no chapter model are
    removed. Returns the provenance record (also written to ``<out>/checkpoints/provenance.json``).
    """
    import torch

    from ..cache import atomic_write
    from ..models.training import checkpoint_path, fold_model

    folder = Path(out) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    specs = book_checkpoints() if specs is None else tuple(specs)
    records = []
    for spec in specs:
        # the committed folder is the cache here: a valid copy is loaded, a missing or stale one trained in place
        data = spec.dataset()
        model = fold_model(
            data, spec.model, spec.held_out, spec.config, cache_dir=Path(out), progress=progress, committed=False
        )
        info = model.checkpoint_info
        target = checkpoint_path(data, spec.model, spec.held_out, spec.config, cache_dir=Path(out))
        os.chmod(target, 0o644)
        records.append(
            {
                "file": target.name,
                "chapters": list(spec.chapters),
                "profile": spec.profile,
                "n_subjects": spec.n_subjects,
                "minutes": spec.minutes,
                "model": spec.model,
                "held_out": spec.held_out,
                "config": spec.config.as_dict(),
                "macro_f1": info["macro_f1"],
                "accuracy": info["accuracy"],
                "wall_time_s": info["wall_time_s"],
                "torch_version": info["torch_version"],
                "created": info["created"],
                "bytes": target.stat().st_size,
            }
        )
    keep = {r["file"] for r in records}
    for stale in folder.glob("*.pt"):
        if stale.name not in keep:
            stale.unlink()
    record = {
        "command": "python -m leakage_core.book.checkpoints",
        "cpu_capability": _capability(),
        "torch_version": str(torch.__version__),
        "machine": _machine_name(),
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "checkpoints": records,
    }
    text = json.dumps(record, indent=1, sort_keys=True)
    atomic_write(folder / "provenance.json", lambda p: Path(p).write_text(text, encoding="utf-8"))
    os.chmod(folder / "provenance.json", 0o644)
    return record


def _machine_name() -> str:
    """The CPU's model name and core count (Linux: /proc/cpuinfo), else the platform string."""
    import platform

    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        name = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} cores"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m leakage_core.book.checkpoints``: train and commit the chapters' models."""
    parser = argparse.ArgumentParser(
        prog="python -m leakage_core.book.checkpoints", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    args = parser.parse_args(argv)
    try:
        record = write_checkpoints(args.out)
    except KeyboardInterrupt:
        print("\nInterrupted: models already written are kept; run the same command again to resume.", file=sys.stderr)
        return 130
    for r in record["checkpoints"]:
        print(f"{r['file']}: chapters {r['chapters']}, macro-F1 {r['macro_f1']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
