"""The chapters' trained models are committed (results/checkpoints) and loaded, never retrained, on any CPU."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from leakage_core.book.checkpoints import book_checkpoints
from leakage_core.data import results_dir
from leakage_core.models import checkpoint_path, committed_checkpoint, fold_model, read_checkpoint_info

FOLDER = Path(__file__).resolve().parents[1] / "results" / "checkpoints"


def test_every_chapter_model_is_committed_with_provenance():
    record = json.loads((FOLDER / "provenance.json").read_text())
    listed = {r["file"]: r for r in record["checkpoints"]}
    assert record["cpu_capability"] and record["machine"]
    names = set()
    for spec in book_checkpoints():
        name = checkpoint_path(spec.dataset(), spec.model, spec.held_out, spec.config, cache_dir=".").name
        names.add(name)
        assert (FOLDER / name).is_file(), f"{name} missing: run `make checkpoints` and commit results/checkpoints"
        assert listed[name]["held_out"] == spec.held_out and listed[name]["config"] == spec.config.as_dict()
        info = read_checkpoint_info(FOLDER / name)
        assert spec.held_out not in info["training_subjects"]  # the attacked client is never in its training data
    assert names == {p.name for p in FOLDER.glob("*.pt")}, "stale checkpoints: run `make checkpoints`"


def test_fold_model_loads_the_committed_copy_instead_of_training(tmp_path, monkeypatch):
    assert results_dir() == FOLDER.parent
    import leakage_core.models.training as training

    def no_training(*args, **kwargs):
        raise AssertionError("fold_model trained although a committed checkpoint matches")

    monkeypatch.setattr(training, "train_model", no_training)
    spec = book_checkpoints()[0]
    data = spec.dataset()
    model = fold_model(data, spec.model, spec.held_out, spec.config, cache_dir=tmp_path, progress=False)
    name = checkpoint_path(data, spec.model, spec.held_out, spec.config, cache_dir=tmp_path).name
    assert committed_checkpoint(name) == FOLDER / name
    saved = torch.load(FOLDER / name, map_location="cpu", weights_only=True)["state_dict"]
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), saved[key].numpy())
    assert not (tmp_path / "checkpoints" / name).exists()  # read in place, not copied into the cache
    with pytest.raises(AssertionError, match="trained although"):
        fold_model(data, spec.model, spec.held_out, spec.config, cache_dir=tmp_path, progress=False, committed=False)


def test_the_committed_copy_wins_over_a_different_local_cache_file(tmp_path):
    # a stale model trained locally (another CPU, another run) must not replace the committed one
    spec = book_checkpoints()[0]
    data = spec.dataset()
    name = checkpoint_path(data, spec.model, spec.held_out, spec.config, cache_dir=tmp_path).name
    local = checkpoint_path(data, spec.model, spec.held_out, spec.config, cache_dir=tmp_path)
    local.parent.mkdir(parents=True, exist_ok=True)
    ckpt = torch.load(FOLDER / name, map_location="cpu", weights_only=True)
    ckpt["state_dict"] = {k: v + 1.0 if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, local)
    model = fold_model(data, spec.model, spec.held_out, spec.config, cache_dir=tmp_path, progress=False)
    saved = torch.load(FOLDER / name, map_location="cpu", weights_only=True)["state_dict"]
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), saved[key].numpy())
    shifted = fold_model(
        data, spec.model, spec.held_out, spec.config, cache_dir=tmp_path, progress=False, committed=False
    )
    assert not np.array_equal(next(iter(shifted.state_dict().values())).numpy(), next(iter(saved.values())).numpy())
