"""The book's data switch ($LEAKAGE_HAR_SOURCE): generator by default, real data when downloaded."""

import numpy as np
import pytest

from leakage_core.data import (
    DATA_ENV,
    SOURCE_ENV,
    book_dataset,
    data_source,
    first_minutes,
    make_synthetic,
    real_data_available,
    write_real,
)
from leakage_core.data import results_dir
from leakage_core.study import N_SUBJECTS, study_dataset


def write_wetlab(folder, n_subjects=3, minutes=2.0):
    """Generated Wetlab-like clients (another seed) in the processed real format, NULL spelled null_class."""
    write_real(
        make_synthetic("wetlab", n_subjects=n_subjects, minutes=minutes, seed=5), folder, null_label="null_class"
    )


def test_default_is_the_generator(monkeypatch):
    monkeypatch.delenv(SOURCE_ENV, raising=False)
    assert data_source() == "synthetic"
    a = book_dataset("wetlab", n_subjects=2, minutes=3, seed=1)
    b = make_synthetic("wetlab", n_subjects=2, minutes=3, seed=1)
    assert a.fingerprint() == b.fingerprint() and a.source == "synthetic"


def test_bad_source(monkeypatch):
    monkeypatch.setenv(SOURCE_ENV, "wear")
    with pytest.raises(ValueError, match="is not a data source; use one of"):
        book_dataset("wear", n_subjects=1, minutes=1)


def test_real_without_data_falls_back_with_a_note(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(SOURCE_ENV, "real")
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert not real_data_available("wetlab")
    d = book_dataset("wetlab", n_subjects=2, minutes=3, seed=0)
    assert d.source == "synthetic"
    assert "python data_download.py wetlab" in capsys.readouterr().out


def test_real_data_when_downloaded(monkeypatch, tmp_path):
    write_wetlab(tmp_path / "wetlab", n_subjects=3, minutes=2.0)
    monkeypatch.setenv(SOURCE_ENV, "real")
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert real_data_available("wetlab")
    full = book_dataset("wetlab")
    assert full.subject_ids == [1, 2, 3] and full.source == str(tmp_path / "wetlab")
    short = book_dataset("wetlab", n_subjects=2, minutes=1.0)
    assert short.subject_ids == [1, 2]
    for k in short.subject_ids:
        s, f = short.subjects[k], full.subjects[k]
        assert len(s.sample_labels) == 3000
        np.testing.assert_array_equal(s.windows, f.windows[: s.n_windows])
        np.testing.assert_array_equal(s.labels, f.labels[: s.n_windows])
    assert study_dataset("wetlab").subject_ids == [1, 2, 3][:N_SUBJECTS]


def test_first_minutes_rejects_nonpositive():
    with pytest.raises(ValueError, match="minutes must be positive"):
        first_minutes(make_synthetic("wear", n_subjects=1, minutes=1), 0)


def test_real_results_folder_is_separate(monkeypatch, tmp_path):
    monkeypatch.setenv(SOURCE_ENV, "real")
    monkeypatch.delenv("LEAKAGE_HAR_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="results-real"):
        results_dir()
    monkeypatch.setenv(SOURCE_ENV, "synthetic")
    assert results_dir().name == "results"


def test_hidden_claim_checks_report_instead_of_stopping_on_real_data(monkeypatch):
    """On real data a failed hidden assert prints the claim and the cell runs on; on the default data it fails."""
    from IPython.core.interactiveshell import InteractiveShell

    from leakage_core.book import setup_notebook

    shell = InteractiveShell.instance()
    try:
        monkeypatch.setenv(SOURCE_ENV, "synthetic")
        shell.run_cell("from leakage_core.book import setup_notebook; setup_notebook(0)")
        assert not shell.run_cell("assert 1 == 2").success
        monkeypatch.setenv(SOURCE_ENV, "real")
        setup_notebook(0)
        setup_notebook(0)  # registered once
        res = shell.run_cell("x = 3\nassert x == 4, 'no'\ny = 5")
        assert res.success and shell.user_ns["y"] == 5
        assert sum(type(t).__name__ == "Soften" for t in shell.ast_transformers) == 1
    finally:
        shell.ast_transformers.clear()
        InteractiveShell.clear_instance()
