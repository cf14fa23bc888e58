"""A chapter as a Colab user runs it: the hidden setup cell installs the package from git, then the first cells run.

Colab is not reachable from CI, so the test builds its closest stand-in here:

- **Colab's packages.** A clean virtual environment (``python3.11 -m venv``, no system site packages) with the
  major versions Colab ships, pinned in ``COLAB_PACKAGES``. Building it takes about 4 minutes (torch alone is
  1.4 GB installed), so it is built once per pin set under the user's cache folder, next to pip's own cache
  (``~/.cache/leakage_har_test/colab-venv-<hash of the pins>``), and never installed into afterwards. Each run
  makes a new, empty venv whose one ``.pth`` line puts the cached packages on its path after its own
  site-packages: the setup cell's ``%pip install`` sees them as installed (as on Colab) and writes only into the
  new venv, so the package is installed fresh by every run and the cached venv stays as built.
- **The repository.** The committed ``HEAD`` of this working tree, fetched into a temporary bare repository under
  the branch name of ``_config.yml`` (uncommitted edits are not seen, as Colab would not see them either).
- **The chapter.** Its setup cell and the cells after it, up to the first that reads the study results the setup
  cell cloned, and that cell's hidden check, run through IPython (``tests/colab_runner.py``) with a stand-in
  ``google.colab`` imported, so ``%pip install`` and ``!git clone`` run for real. The only edits to the cells:
  the repository URL of ``_config.yml`` becomes the temporary repository's ``file://`` URL, and ``/content/``
  (Colab's working folder) becomes a temporary folder. The URL is taken from ``_config.yml``, so a chapter whose
  install line drifts from it fails here (tests/test_notebooks.py checks the same line on every chapter).

Then: the cells succeed, ``leakage_core`` is imported from the new venv (not from this checkout), and the
setup cell installed ``leakage_core`` and nothing else: no Colab package up- or downgraded (on Colab that asks
for a runtime restart) and in particular no CUDA build of torch pulled in by ``torch>=...``.

Run alone: ``make colab``. Needs python3.11 and PyPI (the venv build, and setuptools for building the package).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.colab

ROOT = Path(__file__).resolve().parents[1]
RUNNER = Path(__file__).resolve().parent / "colab_runner.py"
FAKE_COLAB = Path(__file__).resolve().parent / "fixtures" / "fake_colab"
#: A light chapter whose setup cell both installs the package and clones the repository (for its results).
CHAPTER = ROOT / "chapters" / "07_measuring_leakage.ipynb"

#: Colab's runtime: torch 2, numpy 2, pandas 2, matplotlib 3 and its IPython 7 (Colab reported numpy 2.0.2 and
#: pandas 2.2.2 in 2025, with Python 3.12; google-colab requires ipython==7.34.0). torch is the CPU build that
#: ``pip install torch==2.13.0`` takes from this machine's disk (an open range would pull a CUDA build of
#: several GB). The package's other dependencies are pinned too, so that Colab already has all of them, as it does.
#: pip is installed first, at Colab's 24.x: ``%pip`` runs it, and pip 23's parser rejects ``git+file://`` URLs.
COLAB_PACKAGES = {
    "pip": "24.1.2",
    "torch": "2.13.0",
    "numpy": "2.0.2",
    "pandas": "2.2.2",
    "matplotlib": "3.10.0",
    "ipython": "7.34.0",
    "ipykernel": "6.17.1",
    "scipy": "1.16.1",
    "tqdm": "4.67.1",
    "joblib": "1.5.1",
    "pooch": "1.8.2",
}
#: leakage_core's dependencies that the Colab-like venv does not hold, so the setup cell installs them: Opacus (DP-SGD
#: and the privacy accountants of the Defenses part) and its dependency opt_einsum (which Colab itself ships)
NOT_IN_COLAB = ("opacus", "opt_einsum")
VENV_TIMEOUT_S = 1800
RUN_TIMEOUT_S = 900


def _repository() -> tuple[str, str]:
    """The repository URL and branch the chapters' install lines must name (``_config.yml``)."""
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]
    return cfg["url"], cfg["branch"]


def _python311() -> str:
    """An interpreter for the venv: Python 3.11, for which torch 2.13.0's CPU wheel lies on this machine's disk."""
    if sys.version_info[:2] == (3, 11):
        return getattr(sys, "_base_executable", sys.executable)
    found = shutil.which("python3.11")
    if not found:
        pytest.fail("tests/test_colab.py needs python3.11 on the PATH (torch 2.13.0's CPU wheel is for Python 3.11)")
    return found


def _cache_root() -> Path:
    """Next to pip's cache (``$XDG_CACHE_HOME`` or ``~/.cache``), so what keeps pip's cache between CI runs keeps it.

    Not ``$LEAKAGE_HAR_CACHE``: tests/conftest.py points it to a folder removed at the end of every session.
    """
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "leakage_har_test"


def _run(cmd: list, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)
    if done.returncode != 0:
        command = " ".join(map(str, cmd))
        pytest.fail(f"{command} exited with {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _colab_packages() -> Path:
    """The cached venv with Colab's packages (built on first use, then only read); its site-packages folder."""
    python = _python311()
    version = _run([python, "-c", "import platform; print(platform.python_version())"], 60).stdout.strip()
    pins = {"python": version, "machine": platform.machine(), "packages": COLAB_PACKAGES}
    key = hashlib.sha256(json.dumps(pins, sort_keys=True).encode()).hexdigest()[:12]
    root = _cache_root()
    venv = root / f"colab-venv-{key}"
    ready = venv / "pins.json"  # written last: a venv without it was interrupted and is rebuilt
    if not ready.is_file():
        for stale in root.glob("colab-venv-*.building-*"):  # builds whose process has gone (1.4 GB each)
            if not _running(int(stale.name.rsplit("-", 1)[1])):
                shutil.rmtree(stale, ignore_errors=True)
        building = venv.with_name(f"{venv.name}.building-{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        _run([python, "-m", "venv", building], 300)
        pip = [building / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        _run([*pip, f"pip=={COLAB_PACKAGES['pip']}"], 300)
        # torch==2.13.0 exactly: pip takes the local CPU wheel (a newer or open-ended torch means a CUDA download).
        _run([*pip, *(f"{name}=={v}" for name, v in COLAB_PACKAGES.items() if name != "pip")], VENV_TIMEOUT_S)
        (building / "pins.json").write_text(json.dumps(pins, indent=1), encoding="utf-8")
        shutil.rmtree(venv, ignore_errors=True)  # an interrupted build of the same pins
        try:
            building.rename(venv)
        except OSError:  # another session finished the same venv first
            shutil.rmtree(building, ignore_errors=True)
        for old in root.glob("colab-venv-*"):  # complete venvs of earlier pins
            if old != venv and ".building-" not in old.name and (old / "pins.json").is_file():
                shutil.rmtree(old, ignore_errors=True)
    found = list(venv.glob("lib/python3.*/site-packages"))
    assert len(found) == 1, found
    return found[0]


def _fresh_venv(path: Path, colab_site: Path) -> Path:
    """An empty venv (no pip of its own, no system site packages) that sees Colab's packages after its own."""
    _run([_python311(), "-m", "venv", "--without-pip", path], 120)
    site = next(path.glob("lib/python3.*/site-packages"))
    # addsitedir (not a bare path) so the cached venv's own .pth files are processed too
    (site / "colab_preinstalled.pth").write_text(f"import site; site.addsitedir({str(colab_site)!r})\n")
    return path / "bin" / "python"


def _bare_clone(dest: Path, branch: str) -> Path:
    """This working tree's HEAD as branch ``branch`` (the default branch) of a new bare repository."""
    _run(["git", "init", "--quiet", "--bare", dest], 60)
    _run(["git", "-C", dest, "fetch", "--quiet", "--no-tags", ROOT, f"HEAD:refs/heads/{branch}"], 300)
    _run(["git", "-C", dest, "symbolic-ref", "HEAD", f"refs/heads/{branch}"], 60)
    return dest


def _cells_to_run(nb: dict) -> list[dict]:
    """The setup cell, then every code cell up to the first reading the cloned study results, and its hidden check."""
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    first = next((i for i, c in enumerate(code) if "load_results(" in "".join(c["source"])), None)
    assert first is not None, f"{CHAPTER.name}: no cell reads the study results; pick another chapter for this test"
    last = first + 1 if "remove-cell" in code[first + 1].get("metadata", {}).get("tags", []) else first
    return [{"id": c.get("id"), "source": "".join(c["source"])} for c in code[: last + 1]]


def _as_on_colab(source: str, url: str, branch: str, repo: Path, content: Path) -> str:
    """A cell with the public repository replaced by the local one and Colab's /content/ by a temporary folder."""
    source = source.replace(f"git+{url}@{branch}", f"git+{repo.as_uri()}@{branch}")  # the %pip install line
    source = source.replace(url, repo.as_uri())  # the !git clone line
    return source.replace("/content/", f"{content}/")


def test_a_chapter_runs_on_a_colab_like_environment(tmp_path: Path):
    url, branch = _repository()
    nb = json.loads(CHAPTER.read_text(encoding="utf-8"))
    cells = _cells_to_run(nb)
    setup = cells[0]["source"]
    assert "%pip install" in setup and f'"leakage_core @ git+{url}@{branch}"' in setup, (
        f"{CHAPTER.name}: the setup cell must install the package from _config.yml's repository {url}@{branch}"
    )
    assert "!git clone" in setup and f" {url} /content/" in setup, setup

    started = time.perf_counter()
    colab_site = _colab_packages()
    built = time.perf_counter()
    repo = _bare_clone(tmp_path / "leakage-har-book.git", branch)
    content = tmp_path / "content"
    content.mkdir()
    for cell in cells:
        cell["source"] = _as_on_colab(cell["source"], url, branch, repo, content)
        assert "github.com" not in cell["source"] and "/content/" not in cell["source"].replace(f"{content}/", ""), (
            f"cell {cell['id']} still names the network or Colab's /content folder:\n{cell['source']}"
        )
    (tmp_path / "cells.json").write_text(json.dumps(cells), encoding="utf-8")
    python = _fresh_venv(tmp_path / "venv", colab_site)

    drop = ("PYTHON", "LEAKAGE_HAR_", "VIRTUAL_ENV", "CONDA_", "JUPYTER", "IPYTHON", "MPL", "PYTEST_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}  # nothing of this checkout or session
    env.update(
        PATH=f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        LEAKAGE_HAR_CACHE=str(tmp_path / "leakage_har_cache"),
        IPYTHONDIR=str(tmp_path / "ipython"),
        MPLCONFIGDIR=str(tmp_path / "matplotlib"),
        MPLBACKEND="module://matplotlib_inline.backend_inline",
    )
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [str(python), str(RUNNER), str(FAKE_COLAB), str(tmp_path / "cells.json"), str(report_path)],
        cwd=content,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    log = f"stdout:\n{done.stdout[-6000:]}\nstderr:\n{done.stderr[-6000:]}"
    assert report_path.is_file(), log
    report = json.loads(report_path.read_text(encoding="utf-8"))
    timing = f"Colab-like venv ready in {built - started:.0f} s; chapter cells " + ", ".join(
        f"{c['id']} {c['seconds']} s" for c in report["cells"]
    )
    print(timing)
    assert done.returncode == 0 and "error" not in report, f"{report.get('error')}\n{log}"
    assert [c["id"] for c in report["cells"]] == [c["id"] for c in cells]

    # %pip install and !git clone both ran (and succeeded: the runner stops at a failing command)
    commands = [c["command"] for c in report["commands"]]
    assert len(commands) == 2 and "-m pip install" in commands[0] and commands[1].startswith("git clone"), commands
    assert report["results_env"] == f"{content}/leakage-har-book/results" and Path(report["results_env"]).is_dir()

    # the package came from the fresh venv, installed by the setup cell, and nothing else changed
    venv_site = next((tmp_path / "venv").glob("lib/python3.*/site-packages"))
    assert Path(report["modules"]["leakage_core"]["file"]).is_relative_to(venv_site), report["modules"]
    # (pip installs into the fresh venv only: an upgraded Colab package would show up there beside leakage_core)
    installed = sorted(p.name.split("-")[0] for p in venv_site.glob("*.dist-info"))
    assert "leakage_core" in installed and set(installed) <= {"leakage_core", *NOT_IN_COLAB}, (
        f"the setup cell installed more than the package and the dependencies Colab lacks: {installed}"
    )

    # and the run used Colab's versions, torch's CPU build among them
    for name, pinned in [
        ("torch", "torch"),
        ("numpy", "numpy"),
        ("pandas", "pandas"),
        ("matplotlib", "matplotlib"),
        ("IPython", "ipython"),
    ]:
        module = report["modules"][name]
        assert module["version"].split("+")[0] == COLAB_PACKAGES[pinned], (name, module)
        assert Path(module["file"]).is_relative_to(colab_site), (name, module)
    assert report["torch_cuda"] is None
    assert "matplotlib_inline" in report["matplotlib_backend"]
