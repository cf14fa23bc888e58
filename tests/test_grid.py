"""The experiment engine: settings, caching and resume, parallel == serial, the attack protocol, scaling."""

import json

import numpy as np
import pandas as pd
import pytest

import leakage_core.study.grid as grid
from leakage_core.attacks import ATTACKS, PAPER_ATTACKS
from leakage_core.data import make_synthetic, scale_batch
from leakage_core.study import Setting, paper_settings, run_grid, score
from leakage_core.models import TrainConfig, build_model
from leakage_core.federated import make_batches
from leakage_core.federated import LDP, client_update, fedavg_update, fedsgd_update

ATTACK_SET = {"llg": {}, "llg_star": {"n_dummy": 8}, "llbg": {}, "ebi": {}, "ilrg": {}, "llg_plus": {"n_aux": 8}}


@pytest.fixture(scope="module")
def data():
    return make_synthetic("wetlab", n_subjects=3, minutes=3, seed=0)


def small_settings():
    return [
        Setting("tinyhar", sampler="shuffle"),
        Setting("tinyhar", sampler="shuffle", ldp=LDP(sigma=0.1)),
        Setting("tinyhar", sampler="sequential", ldp=LDP(rho=0.1, scope="all")),
        Setting("tinyhar", sampler="balanced", batch_size=100, n_steps=2, lr=1e-3),
    ]


def counts_equal(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    meta = [c for c in a.columns if c not in ("true", "pred")]
    return (
        a[meta].equals(b[meta])
        and all(np.array_equal(x, y) for x, y in zip(a["true"], b["true"]))
        and all(np.array_equal(x, y) for x, y in zip(a["pred"], b["pred"]))
    )


# ---------------------------------------------------------------- settings


def test_setting_defaults_are_the_papers_single_step():
    s = Setting("deepconvlstm")
    assert (s.state, s.sampler, s.batch_size, s.n_steps, s.lr, s.ldp, s.scaling, s.seed) == (
        "untrained",
        "shuffle",
        100,
        1,
        1e-4,
        None,
        "none",
        0,
    )
    assert not s.class_weighted


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model": "resnet"}, "model must be one of"),
        ({"state": "pretrained"}, "state must be one of"),
        ({"sampler": "random"}, "sampler must be one of"),
        ({"batch_size": 100, "n_steps": 3}, "must divide"),
        ({"lr": 0}, "lr must be a positive"),
        ({"scaling": "zscore"}, "scaling must be one of"),
        ({"ldp": 0.1}, "ldp must be None or"),
        ({"batch_size": 0}, "positive integer"),
    ],
)
def test_setting_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Setting(**{"model": "tinyhar", **kwargs})


def test_setting_keys_ignore_fields_that_do_not_apply():
    a, b = Setting("tinyhar", epochs=3), Setting("tinyhar", epochs=50)
    assert a.key() == b.key()  # untrained: training epochs do not matter
    assert Setting("tinyhar", state="trained", epochs=3).key() != Setting("tinyhar", state="trained", epochs=50).key()
    assert Setting("tinyhar", lr=1e-3).key() == Setting("tinyhar").key()  # FedSGD: lr unused
    assert Setting("tinyhar", ldp=LDP(sigma=0.1)).model_key() == Setting("tinyhar").model_key()
    assert len(paper_settings("tinyhar", ldp=True)) == 12


def test_run_grid_input_errors(data):
    with pytest.raises(ValueError, match="non-empty list"):
        run_grid(data, [], progress=False)
    with pytest.raises(ValueError, match="duplicates"):
        run_grid(data, [Setting("tinyhar"), Setting("tinyhar")], progress=False)
    with pytest.raises(ValueError, match=r"subjects must be .* got \[9\] \(\[9\] not among them\)"):
        run_grid(data, Setting("tinyhar"), subjects=[9], progress=False)
    with pytest.raises(ValueError, match="unknown attack"):
        run_grid(data, Setting("tinyhar"), attacks=["magic"], progress=False)
    with pytest.raises(ValueError, match="has no option 'impcat'"):
        run_grid(data, Setting("tinyhar"), attacks={"llbg": {"impcat": "empirical"}}, progress=False)
    with pytest.raises(ValueError, match="n_jobs"):
        run_grid(data, Setting("tinyhar"), n_jobs=0, progress=False)


def test_run_grid_refuses_a_batch_size_above_every_client(data):
    largest = max(data.subject_ids, key=lambda s: data.subjects[s].n_windows)
    n_max = data.subjects[largest].n_windows
    message = (
        rf"batch_size must be an integer from 1 to {n_max}, got {n_max + 1}; the largest attacked client, "
        rf"subject {largest}, has {n_max} windows"
    )
    with pytest.raises(ValueError, match=message):
        run_grid(data, [Setting("tinyhar"), Setting("tinyhar", batch_size=n_max + 1)], attacks=["llbg"], progress=False)
    # exactly the largest client's windows: one batch of that client, none of the others
    one = run_grid(data, Setting("tinyhar", batch_size=n_max), attacks=["llbg"], progress=False)
    assert len(one) >= 1 and set(one["subject"]) <= {s for s in data.subject_ids if data.subjects[s].n_windows == n_max}


def test_run_grid_refuses_a_file_as_cache_dir_up_front(data, tmp_path):
    file = tmp_path / "not_a_folder"
    file.write_text("x")
    message = r"cache_dir must be None or a folder .* got '.*not_a_folder' \(that path is a file"
    with pytest.raises(ValueError, match=message):
        run_grid(data, Setting("tinyhar", state="trained", epochs=1), cache_dir=file, progress=False)
    assert not (tmp_path / "checkpoints").exists()  # refused before any training


def test_score_names_bad_input():
    with pytest.raises(ValueError, match="results must be .*a non-empty table of attack rows.*batch_size"):
        score(pd.DataFrame(columns=["subject", "attack", "batch", "true", "pred"]))
    rows = pd.DataFrame({"subject": [1], "attack": ["a"], "true": [np.array([1, 1])], "pred": [np.array([2, 0])]})
    with pytest.raises(
        ValueError,
        match=r"by must be columns of the results from \['subject', 'attack', 'true', "
        r"'pred'\], got \['colour'\] \(\['colour'\] not among them\)",
    ):
        score(rows, by=["colour"])
    with pytest.raises(ValueError, match="results must be a pandas DataFrame"):
        score([1, 2])


# ---------------------------------------------------------------- results equal a per-batch computation


def test_grid_equals_per_batch_calls(data):
    """Each row equals building the batch's update and calling ATTACKS[name](update, ...) per batch."""
    settings = small_settings()
    df = run_grid(data, settings, attacks=ATTACK_SET, subjects=[2], progress=False)
    model = build_model("tinyhar", data.n_channels, data.n_classes, seed=0)
    client = data.subjects[2]
    aux = data.windows_of([1, 3])
    for st in settings:
        batches = make_batches(client.labels, st.batch_size, st.sampler, seed=st.seed)
        mine = df[df["ldp"] == grid.ldp_label(st.ldp)]
        mine = mine[(mine["sampler"] == st.sampler) & (mine["n_steps"] == st.n_steps)]
        assert len(mine) == len(batches) * len(ATTACK_SET)
        for b, idx in enumerate(batches):
            x, y = client.windows[idx], client.labels[idx]
            if st.n_steps > 1:
                u = fedavg_update(model, x, y, n_steps=st.n_steps, lr=st.lr, seed=b, ldp=st.ldp)
            else:
                u = fedsgd_update(model, x, y, seed=b, ldp=st.ldp)
            for key, opts in ATTACK_SET.items():
                row = mine[(mine["batch"] == b) & (mine["attack"] == key)].iloc[0]
                np.testing.assert_array_equal(row["true"], np.bincount(y, minlength=data.n_classes))
                np.testing.assert_array_equal(row["pred"], ATTACKS[key](u, model=model, aux=aux, **opts))


def test_rows_and_columns(data):
    df = run_grid(data, Setting("tinyhar"), attacks=["llbg", "ebi"], progress=False)
    n_batches = sum(s.n_windows // 100 for s in data.subjects.values())
    assert len(df) == 2 * n_batches
    assert list(df.columns[:5]) == ["subject", "attack", "batch", "true", "pred"]
    assert {"model", "state", "sampler", "batch_size", "n_steps", "lr", "ldp", "scaling", "seed"} <= set(df.columns)
    for t, p in zip(df["true"], df["pred"]):
        assert t.sum() == p.sum() == 100 and p.min() >= 0 and p.dtype == np.int64
    assert set(df.attrs["timings"]) == {"prepare", "client", "attacks", "wall"}


def test_n_jobs_two_equals_one(data):
    settings = small_settings()[:2]
    one = run_grid(data, settings, attacks=["llbg", "ilrg", "llg_star"], progress=False, n_jobs=1)
    two = run_grid(data, settings, attacks=["llbg", "ilrg", "llg_star"], progress=False, n_jobs=2)
    assert counts_equal(one, two)


# ---------------------------------------------------------------- cache and resume


def untrained_model(data):
    """A ``models`` argument for run_grid that builds what it builds itself for untrained settings; records calls."""

    def models(setting, held_out):
        models.calls.append((held_out, setting.model_key()))
        return build_model(setting.model, data.n_channels, data.n_classes, seed=setting.seed)

    models.calls = []
    return models


def refuse_models(setting, held_out):
    pytest.fail(f"a model was requested for subject {held_out}: its results were recomputed, not read from the cache")


def test_given_models_are_used_once_per_client_and_model(data):
    settings = small_settings()[:2]  # two LDP variants of one model state: one model per client
    given = untrained_model(data)
    out = run_grid(data, settings, attacks=["llbg", "ebi"], progress=False, models=given)
    assert given.calls == [(s, settings[0].model_key()) for s in data.subject_ids]
    assert counts_equal(out, run_grid(data, settings, attacks=["llbg", "ebi"], progress=False))
    other = build_model("tinyhar", data.n_channels, data.n_classes, seed=5)
    changed = run_grid(data, settings, attacks=["llbg"], progress=False, models=lambda st, s: other)
    assert not counts_equal(changed, out[out["attack"] == "llbg"].reset_index(drop=True))


def test_cache_hit_equals_recomputation_and_skips_work(data, tmp_path):
    settings = small_settings()[:2]
    first = run_grid(data, settings, attacks=["llbg", "ebi"], cache_dir=tmp_path, progress=False)
    files = sorted((tmp_path / "grid").rglob("*.json"))
    assert len(files) == 3 * len(settings)
    again = run_grid(data, settings, attacks=["llbg", "ebi"], cache_dir=tmp_path, progress=False, models=refuse_models)
    assert counts_equal(first, again)
    assert again.attrs["timings"]["client"] == 0.0
    fresh = run_grid(data, settings, attacks=["llbg", "ebi"], progress=False)
    assert counts_equal(first, fresh)


def test_new_attack_or_changed_option_is_computed_not_taken_from_cache(data, tmp_path):
    run_grid(data, Setting("tinyhar"), attacks=["llbg"], cache_dir=tmp_path, progress=False)
    df = run_grid(
        data, Setting("tinyhar"), attacks={"llbg": {"impact": "empirical"}}, cache_dir=tmp_path, progress=False
    )
    ref = run_grid(data, Setting("tinyhar"), attacks={"llbg": {"impact": "empirical"}}, progress=False)
    assert counts_equal(df, ref)


def test_interrupted_grid_resumes_without_losing_finished_results(data, tmp_path):
    settings = small_settings()[:2]
    build = untrained_model(data)

    def ctrl_c(module, inputs):
        raise KeyboardInterrupt

    def ctrl_c_in_client_3(setting, held_out):  # Ctrl-C in the first layer client 3's model runs
        model = build(setting, held_out)
        if held_out == 3:
            for layer in model.modules():
                layer.register_forward_pre_hook(ctrl_c)
        return model

    with pytest.raises(KeyboardInterrupt):
        run_grid(
            data, settings, attacks=["llbg", "ilrg"], cache_dir=tmp_path, progress=False, models=ctrl_c_in_client_3
        )
    stored = sorted(p.name.split("-")[0] for p in (tmp_path / "grid").rglob("*.json"))
    assert stored == ["sbj1"] * len(settings) + ["sbj2"] * len(settings)  # finished clients kept
    assert not list((tmp_path / "grid").rglob("*.tmp"))  # nothing half-written

    resumed = untrained_model(data)
    out = run_grid(data, settings, attacks=["llbg", "ilrg"], cache_dir=tmp_path, progress=False, models=resumed)
    assert [s for s, _ in resumed.calls] == [3]  # only the unfinished client is computed
    assert counts_equal(out, run_grid(data, settings, attacks=["llbg", "ilrg"], progress=False))


@pytest.mark.parametrize("damage", ["truncate", "edit", "garbage"])
def test_corrupt_cache_file_is_reported_and_recomputed(data, tmp_path, damage):
    first = run_grid(data, Setting("tinyhar"), attacks=["llbg"], cache_dir=tmp_path, progress=False)
    path = sorted((tmp_path / "grid").rglob("*.json"))[0]
    text = path.read_text()
    if damage == "truncate":
        path.write_text(text[: len(text) // 2])
    elif damage == "edit":  # valid JSON, a count changed: the checksum catches it
        doc = json.loads(text)
        doc["payload"]["attacks"]["llbg"]["pred"][0][0] += 1
        path.write_text(json.dumps(doc))
    else:
        path.write_bytes(b"\x00\xff" * 10)
    with pytest.warns(UserWarning, match="recomputed"):
        again = run_grid(data, Setting("tinyhar"), attacks=["llbg"], cache_dir=tmp_path, progress=False)
    assert counts_equal(first, again)
    assert (
        json.loads(path.read_text())["payload"]["attacks"]["llbg"]["pred"]
        == json.loads(text)["payload"]["attacks"]["llbg"]["pred"]
    )


def test_cache_key_depends_on_data_setting_and_version(data, tmp_path, monkeypatch):
    st = Setting("tinyhar")
    other_data = make_synthetic("wetlab", n_subjects=3, minutes=3, seed=1)
    a = grid.cache_file(tmp_path, "wetlab", 1, st, data.fingerprint())
    assert a == grid.cache_file(tmp_path, "wetlab", 1, Setting("tinyhar"), data.fingerprint())
    assert a != grid.cache_file(tmp_path, "wetlab", 1, st, other_data.fingerprint())
    assert a != grid.cache_file(tmp_path, "wetlab", 2, st, data.fingerprint())
    assert a != grid.cache_file(tmp_path, "wetlab", 1, Setting("tinyhar", seed=1), data.fingerprint())
    import leakage_core

    monkeypatch.setattr(leakage_core, "__version__", "9.9.9")
    assert a != grid.cache_file(tmp_path, "wetlab", 1, st, data.fingerprint())


# ---------------------------------------------------------------- LOSO guard


def test_grid_refuses_a_model_trained_on_the_attacked_client(data):
    def leaky_model(setting, held_out):
        m = build_model("tinyhar", data.n_channels, data.n_classes, seed=0)
        m.training_subjects = tuple(data.subject_ids)  # includes the attacked client
        return m

    with pytest.raises(ValueError, match="subject 1 is in the model's training data.*must be unseen"):
        run_grid(data, Setting("tinyhar"), attacks=["llbg"], progress=False, models=leaky_model)


def test_train_config_of_a_trained_setting():
    st = Setting(
        "tinyhar", state="trained", epochs=3, train_lr=1e-3, class_weighted=True, scaling="batch_minmax", seed=2
    )
    assert st.train_config() == TrainConfig(epochs=3, lr=1e-3, class_weighted=True, scaling="batch_minmax", seed=2)
    assert Setting("tinyhar", state="trained").train_config() == TrainConfig()  # the paper's training
    with pytest.raises(ValueError, match="state='trained'"):
        Setting("tinyhar").train_config()


# ---------------------------------------------------------------- attack protocol


def test_registry_declares_families_and_needs():
    assert PAPER_ATTACKS == ("llg", "llg_star", "llbg", "ebi", "ilrg")
    assert [ATTACKS[a].family for a in PAPER_ATTACKS] == ["weight", "weight", "bias", "bias", "bias"]
    assert ATTACKS["llg"].requires() == "update" and ATTACKS["ebi"].requires() == "update"
    assert ATTACKS["llg_star"].requires() == "model" and ATTACKS["ilrg"].requires() == "model"
    assert ATTACKS["ilrg"].requires(probabilities="uniform") == "update"
    assert ATTACKS["llg_plus"].requires() == "model+aux"
    assert ATTACKS["llbg"].requires() == "update" and ATTACKS["llbg"].requires(confidence="aux") == "model+aux"
    with pytest.raises(ValueError, match="has no option"):
        ATTACKS["ebi"].requires(impact="analytic")


# ---------------------------------------------------------------- input scaling


def test_batch_minmax_scaling_is_one_min_and_max_per_batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 50, 3)).astype(np.float32) * np.array([1, 10, 100], dtype=np.float32)
    s = scale_batch(x, "batch_minmax")
    assert s.dtype == np.float32 and s.min() == 0.0 and s.max() == pytest.approx(1.0)
    np.testing.assert_allclose(s, (x - x.min()) / (x.max() - x.min()), rtol=1e-6)
    assert s[..., 0].max() < 0.6  # channels share the batch's range: no per-channel rescaling
    assert scale_batch(x, "none") is not None and np.array_equal(scale_batch(x, "none"), x)
    np.testing.assert_array_equal(scale_batch(np.ones((2, 5, 1)), "batch_minmax"), np.zeros((2, 5, 1)))
    with pytest.raises(ValueError, match="unknown input scaling"):
        scale_batch(x, "per_channel")


def test_scaling_reaches_every_forward_pass(data):
    model = build_model("tinyhar", data.n_channels, data.n_classes, seed=0)
    c = data.subjects[1]
    x, y = c.windows[:100], c.labels[:100]
    scaled = fedsgd_update(model, x, y, scaling="batch_minmax")
    manual = fedsgd_update(model, scale_batch(x, "batch_minmax"), y)
    np.testing.assert_array_equal(scaled.bias_grad, manual.bias_grad)
    assert not np.allclose(scaled.bias_grad, fedsgd_update(model, x, y).bias_grad)
    auto, _ = client_update(model, x, y, scaling="batch_minmax", method="autograd")
    np.testing.assert_allclose(auto.weight_grad, manual.weight_grad, atol=1e-6)
    # FedAvg scales each local step's mini-batch on its own
    avg = fedavg_update(model, x, y, n_steps=2, lr=1e-4, scaling="batch_minmax")
    pre = np.concatenate([scale_batch(x[:50], "batch_minmax"), scale_batch(x[50:], "batch_minmax")])
    np.testing.assert_allclose(avg.bias_grad, fedavg_update(model, pre, y, n_steps=2, lr=1e-4).bias_grad, atol=1e-6)


def test_grid_with_scaling_differs_and_matches_manual(data):
    st = Setting("tinyhar", scaling="batch_minmax", sampler="sequential")
    df = run_grid(data, st, attacks=["ilrg"], subjects=[1], progress=False)
    model = build_model("tinyhar", data.n_channels, data.n_classes, seed=0)
    c = data.subjects[1]
    for b, idx in enumerate(make_batches(c.labels, 100, "sequential")):
        u = fedsgd_update(model, c.windows[idx], c.labels[idx], seed=b, scaling="batch_minmax")
        np.testing.assert_array_equal(df["pred"].iloc[b], ATTACKS["ilrg"](u, model=model))


# ---------------------------------------------------------------- score


def test_score_gives_mean_and_spread_over_clients():
    true = [np.array([10, 0])] * 4
    pred = [np.array([10, 0]), np.array([10, 0]), np.array([5, 5]), np.array([5, 5])]
    df = pd.DataFrame({"attack": "a", "sampler": "shuffle", "subject": [1, 1, 2, 2], "true": true, "pred": pred})
    table = score(df, by=["attack"])
    assert table.loc["a", ("ln_acc", "mean")] == pytest.approx(0.75)
    assert table.loc["a", ("ln_acc", "std")] == pytest.approx(np.std([1.0, 0.5], ddof=1))
    assert (table.loc["a", ("ln_acc", "min")], table.loc["a", ("ln_acc", "max")]) == (0.5, 1.0)
    assert table.loc["a", ("clients", "n")] == 2
    per = score(df, by=["attack"], per_client=True)
    assert list(per["ln_acc"]) == [1.0, 0.5]


def test_score_default_groups_by_varying_settings(data):
    df = run_grid(data, small_settings()[:2], attacks=["llbg"], progress=False)
    table = score(df)
    assert list(table.index.names) == ["ldp", "attack"]
    assert set(table.index.get_level_values("ldp")) == {"none", "noise 0.1"}


def test_trained_setting_attacks_each_client_with_its_own_loso_model(data, tmp_path, monkeypatch):
    import leakage_core.models.training as training

    monkeypatch.setenv("LEAKAGE_HAR_CACHE", str(tmp_path / "default"))
    calls = []
    real = training.fold_model

    def spy(dataset, model_name, held_out, config, cache_dir=None, progress=True, device=None, bias=True):
        model = real(dataset, model_name, held_out, config=config, cache_dir=cache_dir, progress=False, bias=bias)
        calls.append((held_out, model.training_subjects, config))
        return model

    monkeypatch.setattr(training, "fold_model", spy)
    st = Setting("tinyhar", state="trained", epochs=1, train_lr=1e-3, sampler="sequential")
    df = run_grid(data, st, attacks=["llbg", "ebi"], cache_dir=tmp_path, progress=False)
    assert sorted(h for h, _, _ in calls) == data.subject_ids  # one fold per attacked client
    for held_out, subjects, config in calls:
        assert held_out not in subjects and sorted(subjects) == [s for s in data.subject_ids if s != held_out]
        assert (config.epochs, config.lr, config.class_weighted) == (1, 1e-3, False)
    assert set(df["state"]) == {"trained"} and len(list((tmp_path / "checkpoints").glob("*.pt"))) == 3
    # the rows come from the fold models: recompute one client by hand
    model = real(data, "tinyhar", 2, config=calls[0][2], cache_dir=tmp_path, progress=False)
    c = data.subjects[2]
    idx = make_batches(c.labels, 100, "sequential")[0]
    u = fedsgd_update(model, c.windows[idx], c.labels[idx], seed=0)
    row = df[(df["subject"] == 2) & (df["attack"] == "ebi") & (df["batch"] == 0)].iloc[0]
    np.testing.assert_array_equal(row["pred"], ATTACKS["ebi"](u))
    calls.clear()  # a second run takes models and results from the caches
    again = run_grid(data, st, attacks=["llbg", "ebi"], cache_dir=tmp_path, progress=False)
    assert calls == [] and counts_equal(df, again)
