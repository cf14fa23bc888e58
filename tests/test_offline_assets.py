"""The files that make the built book complete without a network (no browser needed for these checks).

KaTeX renders the mathematics at build time with the KaTeX that sphinxcontrib-katex bundles, so the vendored
style sheet must be of the same version; every font and script the pages name must be in _ext/static.
tests/test_browser.py then checks the built pages themselves with the network blocked.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "_ext" / "static"
SPHINX = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["sphinx"]


def test_katex_renders_at_build_time_with_the_vendored_style_sheets_version():
    import sphinxcontrib.katex as katex

    config = SPHINX["config"]
    assert config["katex_prerender"] is True and config["html_math_renderer"] == "katex"
    assert "sphinxcontrib.katex" in SPHINX["extra_extensions"]
    css = STATIC / config["katex_css_path"]
    assert css.is_file(), css
    assert css.parent.name == f"katex-{katex.katex_version}", (
        f"sphinxcontrib-katex bundles KaTeX {katex.katex_version}, the style sheet is {css.parent.name}"
    )


def test_every_font_of_the_katex_style_sheet_is_vendored_as_woff2():
    """Each @font-face lists woff2 first, which every current browser reads; the woff and ttf copies that
    follow it are not vendored (the browser never asks for them)."""
    css = STATIC / SPHINX["config"]["katex_css_path"]
    sources = re.findall(r"src:([^;}]+)", css.read_text(encoding="utf-8"))
    assert len(sources) >= 20
    first = [re.search(r"url\(([^)]+)\)\s*format\([\"']?(\w+)", s).groups() for s in sources]
    assert all(fmt == "woff2" for _, fmt in first), first
    missing = [u for u, _ in first if not (css.parent / u.strip("'\"")).is_file()]
    assert not missing, missing


def test_the_widget_scripts_are_local_files():
    scripts = SPHINX["config"]["nb_ipywidgets_js"]
    assert scripts, "myst-nb's default loads require.js and the widgets embedder from CDNs"
    for path in scripts:
        assert "://" not in path and (STATIC / path).is_file(), path
    embed = next(STATIC / p for p in scripts if p.endswith("embed.js"))
    fonts = set(re.findall(r"[0-9a-f]{20}\.woff2", embed.read_text(encoding="utf-8")))
    assert fonts and all((embed.parent / f).is_file() for f in fonts), fonts


def test_the_book_extension_is_registered_and_excluded_from_the_pages():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert SPHINX["local_extensions"] == {"offline_book": "_ext"}
    assert (ROOT / "_ext" / "offline_book.py").is_file()
    assert "_ext" in config["exclude_patterns"]
