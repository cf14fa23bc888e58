"""The excerpts bundled with the book (chapters/data/real_excerpts/*.csv.gz) are the published files, unchanged."""

import gzip
import hashlib
from pathlib import Path

import pytest

from leakage_core.data import EXCERPT_FILES, load_excerpts

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "chapters" / "data" / "real_excerpts"
REGISTRY = ROOT / "leakage_core" / "data_registry.txt"


def registry_hashes() -> dict[str, str]:
    rows = [
        line.split()
        for line in REGISTRY.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return {name: sha for name, sha, *_ in rows}


@pytest.mark.parametrize("name", [f for files in EXCERPT_FILES.values() for f in files])
def test_bundled_copy_decompresses_to_the_registered_file(name):
    expected = registry_hashes()[f"excerpts/{name}"]
    data = gzip.decompress((BUNDLED / f"{name}.gz").read_bytes())
    assert hashlib.sha256(data).hexdigest() == expected


def test_bundled_copies_load_and_carry_their_licence():
    for dataset in EXCERPT_FILES:
        d = load_excerpts(BUNDLED, dataset)
        assert d.subject_ids == [1, 2] and all(d.subjects[k].n_windows == 1199 for k in d.subject_ids)
    assert "CC BY-NC-SA 4.0" in (BUNDLED / "README.md").read_text(encoding="utf-8")
