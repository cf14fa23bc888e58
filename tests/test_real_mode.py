"""A chapter runs on real data with the switch: LEAKAGE_HAR_SOURCE=real and a data folder in the real format.

The folder holds generated recordings of another seed written as sbj_<k>.csv (the real WEAR layout: 12 sensor
columns, string labels, empty NULL), so the chapter's numbers must change while every cell still runs.
"""

import json
from pathlib import Path

import nbformat

from leakage_core.data import DATA_ENV, SOURCE_ENV, make_synthetic, write_real

CHAPTER = Path(__file__).resolve().parents[1] / "chapters" / "01_introduction.ipynb"


def _texts(nb) -> list[str]:
    out = []
    for c in nb.cells:
        if c.cell_type == "code":
            out.append(json.dumps([o.get("text") or o.get("data", {}).get("text/plain") for o in c.get("outputs", [])]))
    return out


def test_chapter_runs_on_real_format_data(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    for profile in ("wear", "wetlab"):  # the chapter reads both datasets
        write_real(
            make_synthetic(profile, n_subjects=2, minutes=11, seed=7), tmp_path / "data" / profile, null_label=""
        )
    monkeypatch.setenv(SOURCE_ENV, "real")
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    committed = nbformat.read(CHAPTER, as_version=4)
    nb = nbformat.read(CHAPTER, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(CHAPTER.parent)}}
    ).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = "\n".join(_texts(nb))
    assert "using the embedded generator" not in text  # the real folder was found, no fallback
    assert _texts(nb) != _texts(committed)  # other data: other numbers
