"""Structural checks of the committed chapters (strict nbval re-executes them separately).

A notebook committed without outputs would pass strict nbval trivially, so this file checks that
every chapter was executed in order, has outputs and no errors, uses the python3 kernel, stays under a
size budget, and points its Colab link and install cell to the repository named in _config.yml. The book must
read offline (tests/test_browser.py opens it with the network blocked), so no markdown cell embeds an image from
the network, and every figure a code cell draws has alt text in chapters/figure_alt.yml.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))
SIZE_BUDGET_BYTES = 1_500_000


def _config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return files


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 3


def test_toc_lists_every_chapter_and_nothing_missing():
    toc = _toc_files()
    for f in toc:
        assert (ROOT / f"{f}.ipynb").exists() or (ROOT / f"{f}.md").exists(), f"_toc.yml names missing {f}"
    for nb in NOTEBOOKS:
        assert f"chapters/{nb.stem}" in toc, f"{nb.name} is not in _toc.yml"
    numbered = [f for f in toc if re.match(r"chapters/\d\d_", f) and not f.endswith("00_welcome")]
    assert numbered == sorted(numbered), "chapters must appear in number order"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_was_executed_cleanly(path: Path):
    nb = _load(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "a chapter without code"
    assert any(c.get("outputs") for c in code), "committed without outputs: strict nbval would check nothing"
    counts = [c.get("execution_count") for c in code]
    assert all(isinstance(n, int) for n in counts), f"unexecuted cells: {counts}"
    assert counts == list(range(1, len(counts) + 1)), f"cells executed out of order: {counts}"
    for c in code:
        if "raises-exception" in _tags(c):
            continue
        assert not [o for o in c.get("outputs", []) if o["output_type"] == "error"], c["source"][:80]
    assert path.stat().st_size < SIZE_BUDGET_BYTES, f"{path.name} is {path.stat().st_size} bytes"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_badge_and_install_cell_point_to_the_repository(path: Path):
    cfg = _config()["repository"]
    slug = cfg["url"].removeprefix("https://github.com/")
    nb = _load(path)
    first = "".join(nb["cells"][0]["source"])
    assert nb["cells"][0]["cell_type"] == "markdown" and first.startswith("# ")
    link = f"https://colab.research.google.com/github/{slug}/blob/{cfg['branch']}/chapters/{path.name}"
    assert f"]({link})" in first, f"first cell must carry the Colab link {link}"
    setup = next(c for c in nb["cells"] if c["cell_type"] == "code")
    src = "".join(setup["source"])
    assert "remove-cell" in _tags(setup)
    assert f"git+{cfg['url']}@{cfg['branch']}" in src
    for line in src.splitlines():  # the chapters that fetch the committed results clone the same repository
        if "git clone" in line:
            assert f" --branch {cfg['branch']} {cfg['url']} /content/" in line, f"{path.name}: {line.strip()}"
    assert "setup_notebook(seed=" in src


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_markdown_cell_embeds_an_image_from_the_network(path: Path):
    """A remote image (such as Colab's badge) is a broken image for a reader without a network."""
    for cell in _load(path)["cells"]:
        if cell["cell_type"] == "markdown":
            src = "".join(cell["source"])
            assert not re.search(r"!\[[^\]]*\]\(\s*https?://", src), f"{path.name}: remote image in {src[:80]!r}"
            assert not re.search(r"<img[^>]+src=[\"']https?://", src), f"{path.name}: remote image in {src[:80]!r}"


def _figures(cell: dict) -> int:
    """Figures a code cell shows: its image outputs, plus one for saved widgets (the explorer panel's figure)."""
    outputs = cell.get("outputs", [])
    images = sum(any(k.startswith("image/") for k in o.get("data", {})) for o in outputs)
    widget = any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    return images + (1 if widget and "explorer_panel(" in "".join(cell["source"]) else 0)


def test_every_figure_has_alt_text():
    """chapters/figure_alt.yml: one text per figure of each code cell, keyed by notebook and cell id."""
    alts = yaml.safe_load((CHAPTERS / "figure_alt.yml").read_text(encoding="utf-8"))
    for path in NOTEBOOKS:
        cells = {c.get("id"): c for c in _load(path)["cells"] if c["cell_type"] == "code"}
        mine = alts.get(path.stem, {})
        for cell_id in mine:
            assert cell_id in cells, f"figure_alt.yml: {path.stem} has no code cell {cell_id!r}"
        for cell_id, cell in cells.items():
            texts = mine.get(cell_id, [])
            texts = [texts] if isinstance(texts, str) else texts
            assert len(texts) == _figures(cell), (
                f"{path.name} cell {cell_id}: {_figures(cell)} figure(s), {len(texts)} alt text(s) in figure_alt.yml"
            )
            assert all(len(t.split()) >= 8 for t in texts), f"{path.name} cell {cell_id}: alt text too short"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_ends_with_summary_and_exercises(path: Path):
    text = "\n".join("".join(c["source"]) for c in _load(path)["cells"] if c["cell_type"] == "markdown")
    assert "## Summary" in text and "## Exercises" in text


def test_notebooks_do_not_reimplement_the_attack_math():
    """Chapters call leakage_core; a softmax or a closed-form gradient typed in a notebook is a smell."""
    pattern = re.compile(r"def (softmax|last_layer_gradients|fedsgd|fedavg|ln_acc|le_acc|class_acc)\b")
    for path in NOTEBOOKS:
        for c in _load(path)["cells"]:
            if c["cell_type"] == "code":
                assert not pattern.search("".join(c["source"])), f"{path.name} re-implements module code"


def _exercise_numbers(nb: dict) -> list[int]:
    """Numbers of the exercises listed under a chapter's '## Exercises' heading."""
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and "## Exercises" in src:
            block = src.split("## Exercises", 1)[1]
            return [int(m) for m in re.findall(r"^(\d+)\. ", block, flags=re.M)]
    return []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_a_solution_in_words_then_code(path):
    """Every exercise: a markdown cell '**Solution to exercise N**' that explains in words, followed by an
    executed code cell hidden in the web book ('hide-cell'), whose output nbval checks."""
    nb = _load(path)
    cells = nb["cells"]
    for n in _exercise_numbers(nb):
        heads = [
            i
            for i, c in enumerate(cells)
            if c["cell_type"] == "markdown"
            and "".join(c["source"]).lstrip().startswith(f"**Solution to exercise {n}**")
        ]
        assert len(heads) == 1, f"{path.name}: exercise {n} needs exactly one solution, found {len(heads)}"
        words = re.sub(
            r"\*\*Solution to exercise \d+\*\*\s*\(click to show\)\.?", "", "".join(cells[heads[0]]["source"])
        )
        assert len(words.split()) >= 15, f"{path.name}: the solution to exercise {n} needs an explanation in words"
        code = cells[heads[0] + 1] if heads[0] + 1 < len(cells) else None
        assert code is not None and code["cell_type"] == "code" and "hide-cell" in _tags(code), (
            f"{path.name}: the solution to exercise {n} needs a hidden code cell right after its words"
        )
        assert code.get("outputs"), f"{path.name}: the solution code of exercise {n} has no output"


def test_exercise_parser_sees_a_missing_solution():
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["## Exercises\n", "1. a\n", "2. b\n"]},
            {"cell_type": "markdown", "source": ["**Solution to exercise 1** (click to show). " + "word " * 20]},
            {"cell_type": "code", "source": ["1"], "metadata": {"tags": ["hide-cell"]}, "outputs": [{}]},
        ]
    }
    assert _exercise_numbers(nb) == [1, 2]
