"""Training: paper defaults, resumable train_model, cached LOSO fold models and the training CLI."""

import inspect
from dataclasses import replace

import numpy as np
import pytest
import torch

from leakage_core.models import training
from leakage_core.cache import CorruptCacheError
from leakage_core.data import make_synthetic
from leakage_core.models import build_model
from leakage_core.models.train import main
from leakage_core.models import (
    TrainConfig,
    checkpoint_path,
    fold_model,
    fold_snapshots,
    list_checkpoints,
    macro_f1,
    predict,
    read_checkpoint_info,
    train_model,
)

TINY = TrainConfig(epochs=1, batch_size=50, lr=1e-3)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """One torch thread (two xdist workers share two cores) and never the user's cache."""
    monkeypatch.setenv("LEAKAGE_HAR_CACHE", str(tmp_path / "default-cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    return make_synthetic("wetlab", n_subjects=3, minutes=1, seed=0)


def xy(data, subjects=(2, 3)):
    return data.windows_of(list(subjects))


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def spy_train_model(monkeypatch, on_epoch=None):
    """Record the (windows, labels, config) of every train_model call of fold_model; pass it ``on_epoch``."""
    calls = []
    real = training.train_model

    def spy(model, windows, labels, config, **options):
        calls.append((np.array(windows), np.array(labels), config))
        return real(model, windows, labels, config, **options, on_epoch=on_epoch)

    monkeypatch.setattr(training, "train_model", spy)
    return calls


# ------------------------------------------------------------------ configuration and defaults
def test_config_defaults_are_the_papers():
    cfg = TrainConfig()
    assert cfg.defense is None and cfg.as_dict() == {
        "epochs": 100,
        "batch_size": 100,
        "lr": 1e-4,
        "weight_decay": 1e-6,
        "step_size": 10,
        "gamma": 0.9,
        "class_weighted": False,
        "scaling": "none",
        "seed": 0,
    }
    params = inspect.signature(train_model).parameters
    assert params["config"].default == cfg  # the paper's hyperparameters, from one place
    options = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY]
    assert list(params) == ["model", "windows", "labels", "config"] + options
    assert options == ["progress", "device", "state_path", "on_epoch"]


@pytest.mark.parametrize(
    "field,value",
    [
        ("epochs", 0),
        ("epochs", 2.5),
        ("batch_size", 1),
        ("lr", 0.0),
        ("lr", float("nan")),
        ("weight_decay", -1.0),
        ("step_size", 0),
        ("gamma", 0.0),
        ("gamma", 1.5),
        ("class_weighted", "yes"),
        ("scaling", "zscore"),
        ("seed", -1),
    ],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field if field != "scaling" else "scaling"):
        TrainConfig(**{field: value})


def test_train_model_rejects_bad_input(data):
    model = build_model("tinyhar", 3, 9, seed=0)
    x, y = xy(data)
    with pytest.raises(ValueError, match="integer"):
        train_model(model, x, y.astype(float), TINY, progress=False)
    with pytest.raises(ValueError, match="labels"):
        train_model(model, x, y[:-1], TINY, progress=False)
    with pytest.raises(ValueError, match=r"0\.\.8"):
        train_model(model, x, np.full_like(y, 9), TINY, progress=False)
    with pytest.raises(TypeError, match="TrainConfig"):
        train_model(model, x, y, {"epochs": 1}, progress=False)
    with pytest.raises(TypeError):  # hyperparameters are no longer loose keywords
        train_model(model, x, y, epochs=1, progress=False)
    with pytest.raises(ValueError, match="device"):
        train_model(model, x, y, TINY, progress=False, device="nonsense")


# ------------------------------------------------------------------ train_model
def test_train_model_contract(data):
    x, y = xy(data)
    model = build_model("tinyhar", 3, 9, seed=0)
    before = weights(model)
    rng_before = torch.get_rng_state()
    reported = []
    history = train_model(
        model,
        x,
        y,
        replace(TINY, epochs=2),
        progress=False,
        on_epoch=lambda epoch, loss: reported.append((epoch, loss)),
    )
    assert torch.equal(torch.get_rng_state(), rng_before)  # global torch RNG untouched
    assert len(history) == 2 and all(np.isfinite(history))
    assert reported == [(1, history[0]), (2, history[1])]
    assert not model.training and next(model.parameters()).device.type == "cpu"
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    again = build_model("tinyhar", 3, 9, seed=0)
    assert train_model(again, x, y, replace(TINY, epochs=2), progress=False) == history  # seeded
    probs = predict(model, x)
    assert probs.shape == (len(y), 9) and np.allclose(probs.sum(axis=1), 1)


def test_unweighted_by_default_class_weighted_changes_the_loss(data, monkeypatch):
    x, y = xy(data)
    calls = []
    real = training.class_weights
    monkeypatch.setattr(training, "class_weights", lambda *a: calls.append(a) or real(*a))
    run = {
        w: train_model(build_model("tinyhar", 3, 9, seed=0), x, y, replace(TINY, class_weighted=w), progress=False)
        for w in (False, True)
    }
    default = train_model(build_model("tinyhar", 3, 9, seed=0), x, y, TINY, progress=False)
    assert len(calls) == 1  # only the class_weighted=True run weighted its loss
    assert default == run[False]
    assert run[True] != run[False]


def test_batch_minmax_scales_every_training_batch(data, monkeypatch):
    x, y = xy(data)
    seen_scalings, seen_ranges = [], []
    real = training.scale_batch
    monkeypatch.setattr(training, "scale_batch", lambda w, s: seen_scalings.append(s) or real(w, s))
    model = build_model("tinyhar", 3, 9, seed=0)
    model.register_forward_pre_hook(lambda m, inp: seen_ranges.append((inp[0].min().item(), inp[0].max().item())))
    scaled = train_model(model, x, y, replace(TINY, scaling="batch_minmax"), progress=False)
    n_batches = sum(1 for s in range(0, len(y), 50) if len(y) - s >= 2)
    assert seen_scalings == ["batch_minmax"] * n_batches
    assert len(seen_ranges) == n_batches and all(lo == 0.0 and hi == pytest.approx(1.0) for lo, hi in seen_ranges)
    plain = train_model(build_model("tinyhar", 3, 9, seed=0), x, y, TINY, progress=False)
    assert scaled != plain


class Interrupt(KeyboardInterrupt):
    pass


def stop_at(epoch: int):
    """An ``on_epoch`` callback that stops training after ``epoch`` as Ctrl-C would (its state is saved by then)."""

    def on_epoch(done: int, loss: float) -> None:
        if done == epoch:
            raise Interrupt

    return on_epoch


@pytest.mark.parametrize("where", ["after_epoch_2", "during_epoch_3"])
def test_resume_is_bit_identical(data, tmp_path, where):
    x, y = xy(data)
    cfg = replace(TINY, epochs=3)
    kw = dict(progress=False)
    full = build_model("tinyhar", 3, 9, seed=0)
    full_history = train_model(full, x, y, cfg, **kw)

    state = tmp_path / "run.state"
    first = build_model("tinyhar", 3, 9, seed=0)
    if where == "after_epoch_2":  # Ctrl-C right after the state of epoch 2 was written
        with pytest.raises(Interrupt):
            train_model(first, x, y, cfg, **kw, state_path=state, on_epoch=stop_at(2))
    else:  # Ctrl-C in the middle of epoch 3: the weights moved, the state file still holds epoch 2
        per_epoch = sum(1 for s in range(0, len(y), 50) if len(y) - s >= 2)
        calls = []

        def stop(module, inp):
            calls.append(1)
            if len(calls) == 2 * per_epoch + 2:
                raise Interrupt

        handle = first.register_forward_pre_hook(stop)
        with pytest.raises(Interrupt):
            train_model(first, x, y, cfg, **kw, state_path=state)
        handle.remove()
    assert torch.load(state, weights_only=True)["epoch"] == 2
    assert not first.training  # left in eval mode even when interrupted

    resumed = build_model("tinyhar", 3, 9, seed=0)
    history = train_model(resumed, x, y, cfg, **kw, state_path=state)
    assert history == full_history
    assert_same_weights(weights(resumed), weights(full))
    # the finished state makes a repeated call a no-op returning the same model
    again = build_model("tinyhar", 3, 9, seed=0)
    assert train_model(again, x, y, cfg, **kw, state_path=state) == full_history
    assert_same_weights(weights(again), weights(full))


def test_state_from_another_run_is_refused(data, tmp_path):
    x, y = xy(data)
    state = tmp_path / "run.state"
    paper_lr = replace(TINY, lr=1e-4)
    train_model(build_model("tinyhar", 3, 9, seed=0), x, y, paper_lr, progress=False, state_path=state)
    with pytest.raises(ValueError, match="different run"):
        train_model(build_model("tinyhar", 3, 9, seed=0), x, y, TINY, progress=False, state_path=state)
    state.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="run.state"):
        train_model(build_model("tinyhar", 3, 9, seed=0), x, y, paper_lr, progress=False, state_path=state)


# ------------------------------------------------------------------ metrics
def test_macro_f1():
    assert macro_f1([0, 0, 1, 1], [0, 1, 1, 1], 5) == pytest.approx((2 / 3 + 0.8) / 2)  # classes 2-4 absent
    assert macro_f1([2, 2], [2, 2], 3) == 1.0
    assert macro_f1([0, 1], [1, 0], 2) == 0.0
    with pytest.raises(ValueError):
        macro_f1([0, 1], [0], 2)
    with pytest.raises(ValueError):
        macro_f1([0, 5], [0, 1], 3)


# ------------------------------------------------------------------ LOSO fold models
def test_fold_never_trains_on_the_attacked_client(data, tmp_path, monkeypatch):
    calls = spy_train_model(monkeypatch)
    model = fold_model(data, "tinyhar", 2, config=TINY, cache_dir=tmp_path, progress=False)
    ((windows, labels, config),) = calls
    held = data.subjects[2].windows
    assert len(windows) == data.subjects[1].n_windows + data.subjects[3].n_windows
    trained_on = {w.tobytes() for w in windows}
    assert not any(w.tobytes() in trained_on for w in held)
    assert config == TINY and config.class_weighted is False
    assert model.training_subjects == (1, 3)
    assert not model.training and next(model.parameters()).device.type == "cpu"
    info = model.checkpoint_info
    assert info["training_subjects"] == [1, 3] and info["held_out"] == 2
    assert info["fingerprint"] == data.fingerprint() and info["config"] == TINY.as_dict()
    assert info["n_train_windows"] == len(windows) and info["device"] == "cpu"
    for key in ("model", "dataset", "package_version", "torch_version", "wall_time_s", "seconds_per_epoch"):
        assert key in info
    assert 0 <= info["macro_f1"] <= 1 and 0 <= info["accuracy"] <= 1
    pred = predict(model, data.subjects[2].windows).argmax(axis=1)
    assert info["accuracy"] == pytest.approx(np.mean(pred == data.subjects[2].labels))
    path = checkpoint_path(data, "tinyhar", 2, TINY, tmp_path)
    assert path.exists() and path.name.startswith("tinyhar-wetlab-heldout2-")
    assert not path.with_name(path.name + ".partial").exists()
    assert read_checkpoint_info(path) == info


def test_cache_hit_returns_identical_weights_without_training(data, tmp_path, monkeypatch):
    first = fold_model(data, "tinyhar", 1, config=TINY, cache_dir=tmp_path, progress=False)

    def forbidden(*args, **kwargs):
        raise AssertionError("train_model must not run on a cache hit")

    monkeypatch.setattr(training, "train_model", forbidden)
    second = fold_model(data, "tinyhar", 1, config=TINY, cache_dir=tmp_path, progress=False)
    assert_same_weights(weights(first), weights(second))
    assert second.checkpoint_info == first.checkpoint_info and second.training_subjects == (2, 3)
    assert not second.training
    # any change of the configuration or the data is a different checkpoint
    assert checkpoint_path(
        data, "tinyhar", 1, TrainConfig(epochs=2, batch_size=50, lr=1e-3), tmp_path
    ) != checkpoint_path(data, "tinyhar", 1, TINY, tmp_path)
    other = make_synthetic("wetlab", n_subjects=3, minutes=1, seed=1)
    assert checkpoint_path(other, "tinyhar", 1, TINY, tmp_path) != checkpoint_path(data, "tinyhar", 1, TINY, tmp_path)
    table = list_checkpoints(tmp_path)
    assert list(table["held_out"]) == [1] and list(table["status"]) == ["ok"]


def test_corrupt_checkpoint_is_reported_and_retrained(data, tmp_path, monkeypatch):
    path = checkpoint_path(data, "tinyhar", 3, TINY, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    assert list(list_checkpoints(tmp_path)["status"]) == ["corrupt"]
    with pytest.raises(CorruptCacheError):
        read_checkpoint_info(path)
    calls = spy_train_model(monkeypatch)
    with pytest.warns(UserWarning, match=path.name):
        model = fold_model(data, "tinyhar", 3, config=TINY, cache_dir=tmp_path, progress=False)
    assert len(calls) == 1 and model.training_subjects == (1, 2)
    assert read_checkpoint_info(path)["held_out"] == 3


def _stop_after_first_epoch(monkeypatch, train) -> None:
    """Run ``train()`` until its first training state is saved, then stop it as Ctrl-C would."""
    with monkeypatch.context() as patch:
        spy_train_model(patch, on_epoch=stop_at(1))
        with pytest.raises(Interrupt):
            train()


def test_interrupted_fold_resumes_from_its_partial_state(data, tmp_path, monkeypatch):
    cfg = TrainConfig(epochs=2, batch_size=50, lr=1e-3)
    reference = fold_model(data, "tinyhar", 1, config=cfg, cache_dir=tmp_path / "a", progress=False)
    _stop_after_first_epoch(
        monkeypatch, lambda: fold_model(data, "tinyhar", 1, config=cfg, cache_dir=tmp_path / "b", progress=False)
    )
    path = checkpoint_path(data, "tinyhar", 1, cfg, tmp_path / "b")
    partial = path.with_name(path.name + ".partial")
    assert partial.exists() and not path.exists()
    resumed = fold_model(data, "tinyhar", 1, config=cfg, cache_dir=tmp_path / "b", progress=False)
    assert_same_weights(weights(resumed), weights(reference))
    assert resumed.checkpoint_info["history"] == reference.checkpoint_info["history"]
    assert path.exists() and not partial.exists()


#: StepLR halves the rate after every epoch, so a continued run that restarted the schedule would differ
SNAP = TrainConfig(epochs=1, batch_size=50, lr=1e-3, step_size=1, gamma=0.5)


def count_epochs(monkeypatch):
    """Count the training epochs actually run (snapshots must not retrain what a checkpoint holds)."""
    epochs = []
    spy_train_model(monkeypatch, on_epoch=lambda epoch, loss: epochs.append(epoch))
    return epochs


def test_snapshot_of_a_longer_run_equals_a_fresh_run(data, tmp_path, monkeypatch):
    """1 then 2 epochs of one run = a fresh 1-epoch run and a fresh 2-epoch run, bit for bit."""
    two = replace(SNAP, epochs=2)
    fresh = {
        e: fold_model(
            data, "tinyhar", 1, config=replace(SNAP, epochs=e), cache_dir=tmp_path / f"fresh{e}", progress=False
        )
        for e in (1, 2)
    }
    assert fresh[2].checkpoint_info["resumed_from"] == 0
    epochs_run = count_epochs(monkeypatch)
    snaps = fold_snapshots(data, "tinyhar", 1, [2, 1], config=SNAP, cache_dir=tmp_path / "snap", progress=False)
    assert sorted(snaps) == [1, 2] and len(epochs_run) == 2  # one run: 2 epochs in all, not 1 + 2
    assert snaps[2].checkpoint_info["resumed_from"] == 1
    for e in (1, 2):
        assert_same_weights(weights(snaps[e]), weights(fresh[e]))
        info, ref = snaps[e].checkpoint_info, fresh[e].checkpoint_info
        assert info["history"] == ref["history"] and info["macro_f1"] == ref["macro_f1"]
        assert info["accuracy"] == ref["accuracy"] and info["config"]["epochs"] == e
        assert len(info["history"]) == e and info["wall_time_s"] > 0
    assert snaps[1].checkpoint_info["run"] == snaps[2].checkpoint_info["run"] == fresh[2].checkpoint_info["run"]
    assert snaps[2].checkpoint_info["wall_time_s"] >= snaps[1].checkpoint_info["wall_time_s"]
    # cached snapshots: no training at all, and the 2-epoch file is where fold_model(2) looks
    assert fold_snapshots(data, "tinyhar", 1, [1, 2], config=SNAP, cache_dir=tmp_path / "snap", progress=False)
    assert len(epochs_run) == 2 and checkpoint_path(data, "tinyhar", 1, two, tmp_path / "snap").exists()


def test_an_interrupted_longer_run_gives_the_shorter_snapshot(data, tmp_path, monkeypatch):
    """The partial state of a 2-epoch run stopped after epoch 1 is the 1-epoch model: no epoch is retrained."""
    reference = fold_snapshots(data, "tinyhar", 2, [1, 2], config=SNAP, cache_dir=tmp_path / "ref", progress=False)
    _stop_after_first_epoch(
        monkeypatch,
        lambda: fold_model(data, "tinyhar", 2, config=replace(SNAP, epochs=2), cache_dir=tmp_path, progress=False),
    )
    epochs_run = count_epochs(monkeypatch)
    one = fold_model(data, "tinyhar", 2, config=SNAP, cache_dir=tmp_path, progress=False)
    assert not epochs_run and one.checkpoint_info["resumed_from"] == 1
    assert_same_weights(weights(one), weights(reference[1]))
    two = fold_model(data, "tinyhar", 2, config=replace(SNAP, epochs=2), cache_dir=tmp_path, progress=False)
    assert len(epochs_run) == 1 and two.checkpoint_info["history"] == reference[2].checkpoint_info["history"]
    assert_same_weights(weights(two), weights(reference[2]))
    assert not list(tmp_path.glob("checkpoints/*.partial"))


def test_snapshots_never_continue_another_run(data, tmp_path, monkeypatch):
    """A checkpoint of other hyperparameters (here the learning rate) or another fold is not a starting point."""
    fold_model(data, "tinyhar", 1, config=replace(SNAP, lr=1e-2), cache_dir=tmp_path, progress=False)
    fold_model(data, "tinyhar", 2, config=SNAP, cache_dir=tmp_path, progress=False)
    epochs_run = count_epochs(monkeypatch)
    model = fold_model(data, "tinyhar", 1, config=replace(SNAP, epochs=2), cache_dir=tmp_path, progress=False)
    assert len(epochs_run) == 2 and model.checkpoint_info["resumed_from"] == 0
    with pytest.raises(ValueError, match="at least one"):
        fold_snapshots(data, "tinyhar", 1, [], config=SNAP, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="epochs"):
        fold_snapshots(data, "tinyhar", 1, [0, 1], config=SNAP, cache_dir=tmp_path)


def test_fold_model_rejects_bad_folds(data, tmp_path):
    with pytest.raises(ValueError, match="not a subject"):
        fold_model(data, "tinyhar", 7, config=TINY, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown model"):
        fold_model(data, "resnet", 1, config=TINY, cache_dir=tmp_path)
    alone = make_synthetic("wetlab", n_subjects=1, minutes=1, seed=0)
    with pytest.raises(ValueError, match="other subject"):
        fold_model(alone, "tinyhar", 1, config=TINY, cache_dir=tmp_path)
    with pytest.raises(TypeError, match="TrainConfig"):
        fold_model(data, "tinyhar", 1, config={"epochs": 1}, cache_dir=tmp_path)


# ------------------------------------------------------------------ command line
CLI = [
    "--dataset",
    "wetlab",
    "--model",
    "tinyhar",
    "--subjects",
    "3",
    "--minutes",
    "1",
    "--epochs",
    "1",
    "--batch-size",
    "50",
    "--no-progress",
]


def test_cli_end_to_end(tmp_path, capsys):
    args = CLI + ["--folds", "2", "--cache-dir", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    for column in ("fold", "macro-F1", "s/epoch", "checkpoint"):
        assert column in out
    path = list_checkpoints(tmp_path)["path"].item()
    assert path in out and read_checkpoint_info(path)["training_subjects"] == [1, 3]
    assert main(args) == 0  # second run: from the cache
    assert " yes " in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--folds", "9"], "not subjects"),
        (["--epochs", "0"], "epochs"),
        (["--source", "/no/such/folder"], "neither 'synthetic' nor an existing folder"),
        (["--model", "resnet"], "invalid choice"),
        (["--device", "warp-drive"], "device"),
    ],
)
def test_cli_bad_input_is_one_clear_message(tmp_path, capsys, extra, message):
    base = CLI[:4] + CLI[8:] if extra[0] == "--source" else CLI  # a real folder takes no --subjects/--minutes
    argv = base + ["--cache-dir", str(tmp_path)] + extra
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_interrupt_exits_130_with_resume_hint(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "fold_model", interrupted)
    assert main(CLI + ["--cache-dir", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert "interrupted; re-run the same command to resume" in err and "Traceback" not in err


def test_cli_help(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--folds" in out and "resume" in out
