"""The book as readers see it: every page in Chromium with the network blocked (tests/browser_checks.py).

First the checks themselves, on fixture pages each broken in one way (raw TeX, a broken image, a console
error, a dead internal link, ...): the same code that checks the book must flag every one of them and pass a
clean page. Then the built book in `_build/html` (`make book-check` builds it; `make browser` runs this
file after it; both are part of `make test`): every page at desktop width, with a screenshot in
`_build/browser/`, every page again at phone width, and the search page.

Run alone: `make book-check browser`, or `.venv/bin/python -m pytest tests/test_browser.py -m browser`.
Playwright and Chromium missing: the tests fail with the fix in the message under `make test` and CI
(`LEAKAGE_HAR_BROWSER=required` or `CI` set), and are skipped with that message otherwise.
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from pathlib import Path

import pytest
import yaml

from browser_checks import BookChecker, BrowserMissing, launch_browser

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build" / "html"
ARTEFACTS = ROOT / "_build" / "browser"
REQUIRED = os.environ.get("LEAKAGE_HAR_BROWSER") == "required" or os.environ.get("CI", "").lower() in ("1", "true")
# A word and the chapter that must come back when the search page is asked for it.
SEARCHES = [("reconciliation", "chapters/12_reproducing_the_paper.html"), ("clipping", "chapters/11_local_dp.html")]


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module (Playwright's synchronous API allows one per thread)."""
    try:
        context = launch_browser()
        running = context.__enter__()
    except BrowserMissing as exc:
        (pytest.fail if REQUIRED else pytest.skip)(str(exc))
    yield running
    context.__exit__(None, None, None)


def _png(width: int, height: int) -> bytes:
    """A tiny grey PNG, written here so the fixtures need no binary files."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _page(body: str) -> str:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><title>fixture</title></head>"
        f"<body><main>{body}</main></body></html>"
    )


REPOSITORY = {"url": "https://github.com/example-org/example-book", "branch": "main", "path_to_book": ""}
GOOD_COLAB = "https://colab.research.google.com/github/example-org/example-book/blob/main/chapter.ipynb"

# A page that passes every check: a loaded image with alt text, rendered (MathML) mathematics, an internal
# link to an anchor of another page, a hidden solution that opens, a wide table that scrolls in its box.
GOOD = _page(
    "<h1 id='top'>A clean page</h1>"
    "<p>The bias gradient <math><mi>g</mi><mo>=</mo><mfrac><mi>a</mi><mi>b</mi></mfrac></math> is rendered.</p>"
    "<pre style='overflow-x:auto'><code>label = r'$\\frac{a}{b}$'  # TeX inside code is not rendered mathematics"
    "</code></pre>"
    "<img src='plot.png' alt='A grey square standing for a figure'>"
    "<p>See <a href='other.html#section-2'>Section 2</a>, <a href='#top'>the top</a> and "
    "<a href='chapter.html'>the chapter</a>.</p>"
    "<details><summary>Solution (click to show)</summary><p>The answer, in words.</p></details>"
    "<div style='overflow-x:auto'><table style='width:900px'><tr><td>a wide table</td></tr></table></div>"
)
CHAPTER = _page(f"<h1>A chapter</h1><p><a href='{GOOD_COLAB}'>Open this chapter in Colab</a></p>")
OTHER = _page("<h1>Other</h1><h2 id='section-2'>Section 2</h2>")

# Each broken page, and a piece of the problem the checks must report for it.
BROKEN = {
    "raw_tex.html": (_page("<p>The update is $$\\frac{\\partial L}{\\partial b}$$ per class.</p>"), "raw TeX"),
    "broken_image.html": (_page("<img src='missing.png' alt='a figure that is not there'>"), "image not loaded"),
    "console_error.html": (_page("<script>console.error('the widget manager failed')</script>"), "console error"),
    "js_error.html": (_page("<script>const X = 1;</script><script>const X = 2;</script>"), "JavaScript error"),
    "dead_link.html": (_page("<a href='chapters/nowhere.html'>Chapter 99</a>"), "dead internal link"),
    "dead_anchor.html": (_page("<a href='other.html#equation-missing'>(3.1)</a>"), "missing anchor"),
    "unresolved_xref.html": (
        _page("<p>See <span class='xref std std-ref'>fig-missing</span>.</p>"),
        "unresolved cross-reference",
    ),
    "network.html": (_page("<script src='https://cdn.example.invalid/mathjax.js'></script>"), "needs the network"),
    "no_alt.html": (_page("<img src='plot.png'>"), "without alt text"),
    "alt_is_file_name.html": (_page("<img src='plot.png' alt='../_images/plot.png'>"), "alt text is its file name"),
    "wrong_colab.html": (
        _page("<a href='https://colab.research.google.com/github/someone/else/blob/dev/x.ipynb'>Colab</a>"),
        "Colab link not of the form",
    ),
    "dead_toggle.html": (_page("<details><summary>Solution</summary></details>"), "does not show its content"),
}
PHONE_BROKEN = {
    "wide_text.html": (_page("<p style='width:800px'>A paragraph that is wider than a phone.</p>"), "scrolls sideways"),
    "cut_table.html": (
        _page("<div style='overflow:hidden'><table style='width:900px'><tr><td>cut</td></tr></table></div>"),
        "table cut off",
    ),
}


@pytest.fixture(scope="module")
def fixture_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("fixture_site")
    (site / "plot.png").write_bytes(_png(8, 8))
    (site / "_sources").mkdir()
    (site / "_sources" / "chapter.ipynb").write_text("{}")  # marks chapter.html as a notebook page
    (site / "chapter.ipynb").write_text("{}")  # the notebook in the 'repository'
    for name, html in {
        "good.html": GOOD,
        "chapter.html": CHAPTER,
        "other.html": OTHER,
        **{k: v[0] for k, v in {**BROKEN, **PHONE_BROKEN}.items()},
    }.items():
        (site / name).write_text(html, encoding="utf-8")
    return site


@pytest.fixture(scope="module")
def fixture_checker(fixture_site, browser):
    with BookChecker(fixture_site, source_root=fixture_site, repository=REPOSITORY, browser=browser) as checker:
        yield checker


def test_a_clean_page_passes_every_check(fixture_checker):
    for path in ("good.html", "chapter.html"):
        report = fixture_checker.check_page(path)
        assert not report.problems, str(report)
        assert not fixture_checker.check_phone(path).problems
    assert fixture_checker.check_page("good.html").stats["toggles"] == 1


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_each_broken_fixture_page_is_flagged(fixture_checker, name):
    report = fixture_checker.check_page(name)
    expected = BROKEN[name][1]
    assert any(expected in p for p in report.problems), f"{name}: expected {expected!r}, got {report.problems}"


@pytest.mark.parametrize("name", sorted(PHONE_BROKEN))
def test_each_broken_phone_layout_is_flagged(fixture_checker, name):
    report = fixture_checker.check_phone(name)
    expected = PHONE_BROKEN[name][1]
    assert any(expected in p for p in report.problems), f"{name}: expected {expected!r}, got {report.problems}"


def test_a_notebook_page_without_its_colab_link_is_flagged(fixture_site, fixture_checker):
    (fixture_site / "_sources" / "good.ipynb").write_text("{}")
    try:
        problems = fixture_checker.check_page("good.html").problems
    finally:
        (fixture_site / "_sources" / "good.ipynb").unlink()
    assert any("no Colab link to this chapter's notebook" in p for p in problems), problems


# --------------------------------------------------------------------------------------------------------
# The built book


def test_the_built_book_in_a_browser_without_network(browser):
    if not (BUILD / "index.html").is_file():
        (pytest.fail if REQUIRED else pytest.skip)(f"no built book in {BUILD}: run `make book-check` first")
    repository = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]
    start = time.perf_counter()
    checker = BookChecker(BUILD, source_root=ROOT, repository=repository, screenshots=ARTEFACTS, browser=browser)
    checker.__enter__()
    reports, summary = [], {}
    try:
        for path in checker.pages():
            report = checker.check_page(path)
            if (BUILD / "_sources" / path).with_suffix(".ipynb").is_file() and "Solution to exercise" in report.stats[
                "text"
            ]:
                if not report.stats["toggles"]:
                    report.problems.append("the chapter's hidden solutions have no toggle to click")
            reports.append(report)
            summary[path] = {k: v for k, v in report.stats.items() if k != "text"}
        for path in checker.pages():
            phone = checker.check_phone(path)
            phone.path = f"{path} at 375 px"
            reports.append(phone)
        for query, expected in SEARCHES:
            reports.append(checker.check_search(query, expected))
    finally:
        checker.__exit__(None, None, None)
    seconds = round(time.perf_counter() - start, 1)
    failing = [r for r in reports if r.problems]
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / "report.json").write_text(
        json.dumps({"seconds": seconds, "pages": summary, "problems": {r.path: r.problems for r in failing}}, indent=1)
    )
    assert len(summary) >= 15, f"only {len(summary)} pages found in {BUILD}"
    for path in summary:  # the widgets embedder only where a widget is shown
        html = (BUILD / path).read_text(encoding="utf-8")
        shows, loads = "application/vnd.jupyter.widget-view+json" in html, "html-manager" in html
        assert shows == loads, f"{path}: {'shows widgets without' if shows else 'loads'} the widgets embedder"
    assert not failing, (
        f"{len(failing)} page(s) with problems ({seconds} s; screenshots in {ARTEFACTS}):\n"
        + "\n".join(map(str, failing))
    )
