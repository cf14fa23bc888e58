"""Every public function and class says truthfully where the book introduces it.

"Introduced in Chapter N" in a docstring must name the first chapter whose code imports it from
leakage_core (directly or through a package that re-exports it); a name no chapter imports must not
claim a chapter. The chapters' imports are read from their code cells, except the hidden exercise
solutions, which reuse names without introducing them.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
CLAIM = re.compile(r"Introduced in Chapter (\d+)")


def _chapter_imports(path: Path) -> set[tuple[str, str]]:
    """(defining module, name) of every object a chapter imports from leakage_core."""
    out = set()
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code" or "hide-cell" in cell.get("metadata", {}).get("tags", []):
            continue  # exercise solutions (hidden cells) reuse names; they do not introduce them
        lines = "".join(cell["source"]).splitlines()  # IPython magics become `pass` (same indentation)
        source = "\n".join(
            line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!")) else line
            for line in lines
        )
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("leakage_core"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    obj = getattr(module, alias.name)
                    out.add((getattr(obj, "__module__", node.module), getattr(obj, "__name__", alias.name)))
    return out


def first_chapters() -> dict[tuple[str, str], int]:
    first: dict[tuple[str, str], int] = {}
    for path in CHAPTERS:
        for key in _chapter_imports(path):
            first.setdefault(key, int(path.name[:2]))
    return first


def public_definitions() -> list[tuple[str, str, str]]:
    """(module, name, docstring) of every public top-level function and class of leakage_core."""
    out = []
    for py in sorted((ROOT / "leakage_core").rglob("*.py")):
        module = ".".join(py.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.parse(py.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                out.append((module, node.name, ast.get_docstring(node) or ""))
    return out


def test_introduced_in_chapter_is_true():
    first = first_chapters()
    wrong = []
    for module, name, doc in public_definitions():
        claimed = [int(n) for n in CLAIM.findall(doc)]
        expected = first.get((module, name))
        if expected is None and claimed:
            wrong.append(f"{module}.{name}: claims Chapter {claimed[0]}, but no chapter imports it")
        elif expected is not None and claimed[:1] != [expected]:
            wrong.append(f"{module}.{name}: claims {claimed[:1] or 'nothing'}, first imported in Chapter {expected}")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_chapter_imports():
    first = first_chapters()
    assert first[("leakage_core.federated.client", "fedsgd_update")] == 1
    assert first[("leakage_core.attacks.bias.llbg", "llbg")] == 5
