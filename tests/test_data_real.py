"""The real-format loader: layouts, label spellings, and one clear error per kind of bad input."""

from pathlib import Path

import shutil

import numpy as np
import pandas as pd
import pytest

from leakage_core.data import (
    DATA_ENV,
    EXCERPT_FILES,
    PROFILES,
    data_dir,
    get_profile,
    load_dataset,
    load_excerpts,
    load_real,
    make_synthetic,
    read_excerpt_csv,
    write_real,
)

#: 400 rows of each public excerpt (licence: tests/fixtures/excerpts/README.md)
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "excerpts"


def write_subject(folder: Path, k: int, dataset: str, labels: list[str], n_channels: int | None = None) -> Path:
    prof = PROFILES[dataset]
    n_ch = len(prof.channels) if n_channels is None else n_channels
    rng = np.random.default_rng(k)
    df = pd.DataFrame(rng.normal(size=(len(labels), n_ch)), columns=[f"c{i}" for i in range(n_ch)])
    df.insert(0, "sbj_id", k)
    df["label"] = labels
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"sbj_{k}.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("layout", ["", "raw/inertial", "raw/inertial/50hz", "data/wetlab/raw/inertial"])
def test_layouts_and_label_spellings(tmp_path, layout):
    labels = ["null_class"] * 60 + ["pour catalysator"] * 40 + [""] * 30 + ["Pipetting "] * 20
    write_subject(tmp_path / layout, 2, "wetlab", labels)
    write_subject(tmp_path / layout, 10, "wetlab", ["null"] * 100)
    d = load_real(tmp_path, "wetlab")
    assert d.subject_ids == [2, 10]
    lab = d.subjects[2].sample_labels
    names = d.class_names
    assert names[lab[0]] == "null" and names[lab[70]] == "pouring" and names[lab[120]] == "null"
    assert names[lab[-1]] == "pipetting"
    assert d.subjects[2].windows.shape == (1 + (150 - 50) // 25, 50, 3)
    assert d.subjects[2].labels.tolist() == [lab[49 + 25 * i] for i in range(5)]


def test_wear_subject_selection_and_same_object_as_generator(tmp_path):
    names = PROFILES["wear"].class_names
    for k in (1, 2, 3):
        write_subject(tmp_path, k, "wear", [names[(i // 40) % len(names)] for i in range(200)])
    d = load_dataset(str(tmp_path), profile="wear", subjects=[3, 1])
    assert d.subject_ids == [1, 3] and d.n_channels == 12 and d.n_classes == 19
    assert type(d).__name__ == "HARDataset" and d.source == str(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_real(tmp_path / "nope", "wear")


def test_no_csvs(tmp_path):
    (tmp_path / "raw" / "inertial").mkdir(parents=True)
    with pytest.raises(ValueError, match="no sbj_<k>.csv files"):
        load_real(tmp_path, "wear")


def test_missing_label_column(tmp_path):
    path = write_subject(tmp_path, 1, "wetlab", ["null"] * 60)
    pd.read_csv(path).drop(columns="label").to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"sbj_1\.csv: no 'label' column"):
        load_real(tmp_path, "wetlab")


def test_unknown_label(tmp_path):
    write_subject(tmp_path, 1, "wetlab", ["null"] * 50 + ["juggling"] * 10)
    with pytest.raises(ValueError, match=r"sbj_1\.csv: unknown label\(s\) \['juggling'\]"):
        load_real(tmp_path, "wetlab")


def test_wrong_channel_count(tmp_path):
    write_subject(tmp_path, 1, "wear", ["null"] * 60, n_channels=3)
    with pytest.raises(ValueError, match="3 sensor columns, but wear has 12"):
        load_real(tmp_path, "wear")


def test_nans(tmp_path):
    path = write_subject(tmp_path, 1, "wetlab", ["null"] * 60)
    df = pd.read_csv(path)
    df.loc[7, "c1"] = np.nan
    df.to_csv(path, index=False)
    with pytest.raises(ValueError, match="1 rows with missing or non-numeric sensor values .first at data row 8"):
        load_real(tmp_path, "wetlab")


def test_unknown_subject(tmp_path):
    write_subject(tmp_path, 1, "wetlab", ["null"] * 60)
    with pytest.raises(ValueError, match=r"subjects \[5\] not found"):
        load_real(tmp_path, "wetlab", subjects=[5])


def test_excerpt_fixture_converted_to_processed_format_loads(tmp_path):
    """A real Wetlab excerpt written in the processed sbj_<k>.csv format reads back unchanged."""
    raw = pd.read_csv(
        FIXTURES / "wetlab_0_10.csv",
        header=None,
        names=["idx", "time", "sbj", "acc_x", "acc_y", "acc_z", "action", "task"],
    )
    out = raw[["sbj", "acc_x", "acc_y", "acc_z", "action"]].rename(columns={"sbj": "sbj_id", "action": "label"})
    out.to_csv(tmp_path / "sbj_1.csv", index=False)
    d = load_real(tmp_path, "wetlab")
    s = d.subjects[1]
    assert s.n_windows == 1 + (len(raw) - 50) // 25
    np.testing.assert_allclose(s.signals, raw[["acc_x", "acc_y", "acc_z"]].to_numpy(np.float32))
    assert set(np.unique(s.sample_labels)) == {0, d.class_names.index("pouring")}


@pytest.mark.parametrize("dataset", ["wear", "wetlab"])
def test_excerpts_load_as_three_channel_clients(dataset):
    d = load_excerpts(FIXTURES, dataset)
    assert d.n_channels == 3 and d.subject_ids == [1, 2] and d.class_names == get_profile(dataset).class_names
    for k, name in enumerate(EXCERPT_FILES[dataset], start=1):
        raw = pd.read_csv(FIXTURES / name, header=None, keep_default_na=False)
        cols = [2, 3, 4] if dataset == "wear" else [3, 4, 5]
        s = d.subjects[k]
        np.testing.assert_allclose(s.signals, raw[cols].to_numpy(np.float32))
        names = raw[5 if dataset == "wear" else 6].replace({"": "null", "null_class": "null"})
        assert [d.class_names[i] for i in s.sample_labels] == list(names)
        assert s.n_windows == 1 + (len(raw) - 50) // 25
    assert len(np.unique(np.concatenate([d.subjects[k].labels for k in d.subject_ids]))) >= 3


def test_excerpts_default_folder_is_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert data_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="python data_download.py excerpts"):
        load_excerpts(dataset="wear")
    (tmp_path / "excerpts").mkdir()
    for name in EXCERPT_FILES["wear"]:
        shutil.copy(FIXTURES / name, tmp_path / "excerpts" / name)
    assert load_excerpts(dataset="wear").subject_ids == [1, 2]
    with pytest.raises(FileNotFoundError, match="python data_download.py wetlab"):
        load_real(dataset="wetlab")


def test_data_dir_default_without_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert data_dir() == tmp_path / "leakage_har"
    assert data_dir("~/x") == Path("~/x").expanduser()


def test_excerpt_bad_input(tmp_path):
    (tmp_path / "short.csv").write_text("1,2,3\n")
    with pytest.raises(ValueError, match="3 columns, but a wear excerpt has 6"):
        read_excerpt_csv(tmp_path / "short.csv", "wear")
    lines = (FIXTURES / "wear_0_10.csv").read_text().splitlines()
    lines[10] = lines[10].replace(lines[10].split(",")[2], "oops", 1)
    (tmp_path / "nan.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="1 rows with missing or non-numeric acceleration values"):
        read_excerpt_csv(tmp_path / "nan.csv", "wear")
    with pytest.raises(ValueError, match="6 columns, but a wetlab excerpt has 8"):
        read_excerpt_csv(FIXTURES / "wear_0_10.csv", "wetlab")
    lines[10] = ",".join(lines[11].split(",")[:5] + ["dancing"])
    (tmp_path / "label.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"unknown label\(s\) \['dancing'\]"):
        read_excerpt_csv(tmp_path / "label.csv", "wear")


@pytest.mark.parametrize("profile,null_label", [("wear", ""), ("wear", "null"), ("wetlab", "null_class")])
def test_write_real_round_trips_through_load_real(tmp_path, profile, null_label):
    d = make_synthetic(profile, n_subjects=2, minutes=2, seed=3)
    paths = write_real(d, tmp_path, null_label=null_label)
    assert [p.name for p in paths] == ["sbj_1.csv", "sbj_2.csv"] and not list(tmp_path.glob(".*"))
    back = load_real(tmp_path, profile)
    for k in d.subject_ids:
        np.testing.assert_allclose(back.subjects[k].signals, d.subjects[k].signals, rtol=1e-6)
        np.testing.assert_array_equal(back.subjects[k].labels, d.subjects[k].labels)
    with pytest.raises(ValueError, match="null_label must be one of"):
        write_real(d, tmp_path, null_label="none")
