"""Command line: train (or load) the leave-one-subject-out models that the attacks of this book target.

Every fold's model is trained on all subjects except the attacked one and cached as a checkpoint (see
:func:`leakage_core.models.fold_model`); an interrupted run resumes where it stopped when the same
command is run again. Examples::

    python -m leakage_core.models.train --dataset wear --model deepconvlstm --folds 1 2 3 --epochs 100
    python -m leakage_core.models.train --dataset wetlab --model tinyhar --epochs 20 --subjects 6 --minutes 20
    python -m leakage_core.models.train --dataset wear --model deepconvlstm --source data/wear/raw/inertial

The first two train on the embedded synthetic data, the last on a folder of real ``sbj_<k>.csv``
files. ``--help`` lists every option.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..data.profiles import PROFILES

#: synthetic subjects per dataset when ``--subjects`` is omitted: the real datasets' sizes, which the paper used
DEFAULT_SUBJECTS: dict[str, int] = {name: profile.n_subjects for name, profile in PROFILES.items()}
DEFAULT_MINUTES = 45.0
INTERRUPTED = 130  # the shell's exit code for Ctrl-C


class InputError(ValueError):
    """A problem with the command's arguments, reported as one line without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m leakage_core.models.train``."""
    from ..data.scaling import SCALINGS
    from .architectures import MODELS
    from .training import TrainConfig

    paper = TrainConfig()

    parser = argparse.ArgumentParser(
        prog="python -m leakage_core.models.train",
        description="Train (or load from the cache) the leave-one-subject-out (LOSO) HAR models whose\n"
        "gradients the label-leakage attacks read. The model of fold K is trained on every\n"
        "subject except K, the attacked client. Checkpoints are cached; re-running an\n"
        "interrupted command resumes it where it stopped.",
        epilog="examples:\n"
        "  python -m leakage_core.models.train --dataset wear --model deepconvlstm --folds 1 2 3 --epochs 100\n"
        "  python -m leakage_core.models.train --dataset wetlab --model tinyhar --epochs 20 --subjects 6 "
        "--minutes 20\n"
        "  python -m leakage_core.models.train --dataset wear --source data/wear/raw/inertial --device cuda\n\n"
        "Defaults are the paper's setting: 100 epochs, Adam lr 1e-4, weight decay 1e-6, StepLR(10, 0.9),\n"
        "batches of 100, unweighted cross-entropy. A paper-size fold can take many hours on a CPU:\n"
        "benchmarks/bench_training.py estimates this machine's seconds per epoch.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dataset",
        choices=sorted(DEFAULT_SUBJECTS),
        default="wear",
        help="dataset (class list, channels) to train on (default: wear)",
    )
    parser.add_argument(
        "--model", choices=MODELS, default="deepconvlstm", help="HAR classifier (default: deepconvlstm)"
    )
    parser.add_argument(
        "--folds",
        type=int,
        nargs="+",
        metavar="K",
        default=None,
        help="held-out (attacked) subject ids to train models for (default: every subject)",
    )
    parser.add_argument(
        "--source",
        default="synthetic",
        metavar="synthetic|FOLDER",
        help="'synthetic' for the embedded generator, or a folder of real sbj_<k>.csv files (default: synthetic)",
    )
    parser.add_argument(
        "--subjects",
        type=int,
        default=None,
        metavar="N",
        help="number of synthetic subjects (default: "
        + ", ".join(f"{n} for {name}" for name, n in DEFAULT_SUBJECTS.items())
        + ")",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        metavar="M",
        help=f"minutes of recording per synthetic subject (default: {DEFAULT_MINUTES:g})",
    )
    parser.add_argument(
        "--data-seed", type=int, default=0, metavar="S", help="seed of the synthetic data generator (default: 0)"
    )
    parser.add_argument(
        "--epochs", type=int, default=paper.epochs, help=f"training epochs per fold (default: {paper.epochs})"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=paper.batch_size,
        metavar="N",
        help=f"windows per training mini-batch (default: {paper.batch_size})",
    )
    parser.add_argument("--lr", type=float, default=paper.lr, help=f"Adam learning rate (default: {paper.lr:g})")
    parser.add_argument(
        "--class-weighted",
        action="store_true",
        help="inverse-frequency class-weighted cross-entropy (default: unweighted, as the paper)",
    )
    parser.add_argument(
        "--scaling",
        choices=SCALINGS,
        default=paper.scaling,
        help="per-batch input scaling before each forward pass; 'batch_minmax' is what the "
        "paper's code does (default: none)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=paper.seed,
        help=f"seed of the initialisation, shuffling and dropout (default: {paper.seed})",
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="cache folder (default: $LEAKAGE_HAR_CACHE, else ~/.cache/leakage_har)",
    )
    parser.add_argument(
        "--device", default=None, help="'cpu', 'cuda', 'cuda:1', ... (default: CUDA if available, else CPU)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return parser


def _load_data(args: argparse.Namespace) -> Any:
    """The dataset the command trains on (synthetic or real), or InputError."""
    from ..data import load_real, make_synthetic

    if args.source == "synthetic":
        n = DEFAULT_SUBJECTS[args.dataset] if args.subjects is None else args.subjects
        minutes = DEFAULT_MINUTES if args.minutes is None else args.minutes
        if n < 2:
            raise InputError(f"--subjects must be at least 2 (one attacked, one to train on), got {n}.")
        print(f"generating synthetic {args.dataset} data: {n} subjects x {minutes:g} min ...", file=sys.stderr)
        return make_synthetic(args.dataset, n_subjects=n, minutes=minutes, seed=args.data_seed)
    if args.subjects is not None or args.minutes is not None:
        raise InputError("--subjects and --minutes only apply to --source synthetic; a real folder is loaded whole.")
    folder = Path(args.source).expanduser()
    if not folder.is_dir():
        raise InputError(f"--source {args.source!r} is neither 'synthetic' nor an existing folder.")
    print(f"loading real {args.dataset} data from {folder} ...", file=sys.stderr)
    return load_real(folder, dataset=args.dataset)


def _folds(args: argparse.Namespace, dataset: Any) -> list[int]:
    """The requested held-out subjects (all if omitted), checked before any training starts."""
    if args.folds is None:
        return list(dataset.subject_ids)
    folds = list(dict.fromkeys(args.folds))
    unknown = [k for k in folds if k not in dataset.subjects]
    if unknown:
        raise InputError(
            f"--folds {unknown} are not subjects of this {args.dataset} data; subjects: {dataset.subject_ids}."
        )
    return folds


def _mtime(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.exists() else None


def _run(args: argparse.Namespace) -> int:
    """Train or load every requested fold and print the summary table."""
    import pandas as pd
    from tqdm.auto import tqdm

    from .training import TrainConfig, checkpoint_path, fold_model, resolve_device

    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        class_weighted=args.class_weighted,
        scaling=args.scaling,
        seed=args.seed,
    )
    device = resolve_device(args.device)
    dataset = _load_data(args)
    folds = _folds(args, dataset)
    rows = []
    for k in tqdm(folds, desc=f"{args.model} on {args.dataset} folds", disable=args.no_progress):
        path = checkpoint_path(dataset, args.model, k, config, args.cache_dir)
        before = _mtime(path)
        model = fold_model(
            dataset,
            args.model,
            k,
            config=config,
            cache_dir=args.cache_dir,
            progress=not args.no_progress,
            device=device,
        )
        info = model.checkpoint_info
        rows.append(
            {
                "fold": k,
                "macro-F1": info["macro_f1"],
                "accuracy": info["accuracy"],
                "s/epoch": info["seconds_per_epoch"],
                "from cache": "yes" if before is not None and before == _mtime(path) else "no",
                "checkpoint": str(path),
            }
        )
    table = pd.DataFrame(rows)
    print(f"{args.model} on {args.dataset} ({dataset.source}), {config.epochs} epochs, held-out subject = fold:")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Bad input prints one ``error:`` line to stderr and returns 2; Ctrl-C returns 130 after telling how
    to resume; neither prints a traceback.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help (0) or an argparse usage error (2), already printed
        return int(exit_.code or 0)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("\ninterrupted; re-run the same command to resume", file=sys.stderr)
        return INTERRUPTED
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
