"""Check a built HTML book the way a reader sees it: in Chromium, with the network blocked.

`tests/test_browser.py` runs these checks twice with the same code: on small fixture pages, each broken in
one way that the checks must flag, and on the real book in `_build/html`. The book is served from a local
HTTP server on 127.0.0.1 (Sphinx's search fetches pages, which `file://` forbids) and every request to any
other address is aborted, so a page that needs the internet shows up as a failed request.

Per page, on a desktop viewport (`BookChecker.check_page`):

- no console error, no uncaught JavaScript exception, no failed request and no HTTP error status;
- every image loaded (`naturalWidth > 0`) and carrying alt text that is not just its file name;
- every equation rendered: no raw TeX (`$$`, `\\begin`, `\\frac`, `\\(` ...) in the text outside code blocks;
- every internal link and cross-reference (equation, figure, chapter, citation) resolving to an existing
  page and anchor; no unresolved cross-reference left as plain text;
- every Colab link pointing to a notebook of the configured repository and branch, and each notebook page
  linking to its own notebook (`colab.research.google.com/github/<org>/<repo>/blob/<branch>/<path>.ipynb`);
- every hidden block (solutions: `hide-cell` tags become `<details>`) opening when its summary is clicked;
- a screenshot saved when a folder is given.

At phone width (375 px, `check_phone`): the page does not scroll sideways, and anything wider than the
screen (tables, code, wide equations) scrolls inside its own box. `check_search` runs the search page.

A missing Playwright or Chromium raises `BrowserMissing` whose message names the fix.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

# Launch flags that work as root in a container without a GPU. Without the background-networking flags,
# Chromium's own connections (component updates, sync) are refused many at a time and slow every page.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}
INSTALL_CHROMIUM = "apt-get update && apt-get install -y chromium"
COLAB = "https://colab.research.google.com/github/"

# Raw TeX that a renderer would have consumed: display/inline delimiters, environments, control sequences.
RAW_TEX = re.compile(r"\$\$|\\(?:begin|end)\{|\\[()\[\]]|\\[A-Za-z]{2,}|\$[^$\s][^$]*[\\^_{][^$]*\$")
# MyST roles that were not parsed (a typo, or a role the build does not know).
RAW_ROLE = re.compile(r"\{(?:eq|numref|ref|doc|cite(?::[a-z]+)?|term|download)\}`")
IMAGE_NAME = re.compile(r"(?:^|/)[^/\s]+\.(?:png|jpe?g|gif|svg|webp)$", re.I)


class BrowserMissing(RuntimeError):
    """Playwright or Chromium is not installed; the message says how to install it."""


def chromium_path() -> str:
    """The system Chromium (Playwright's own browser download is not used)."""
    chosen = os.environ.get("LEAKAGE_HAR_CHROMIUM")
    candidates = (
        [chosen] if chosen else ["/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")]
    )
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    raise BrowserMissing(
        f"Chromium not found (looked for {', '.join(p for p in candidates if p) or '/usr/bin/chromium'}). "
        "Install it from the system packages: "
        f"`{INSTALL_CHROMIUM}` (Debian; .ci/run does this), or set LEAKAGE_HAR_CHROMIUM=/path/to/chromium."
    )


def sync_playwright():
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError as exc:
        raise BrowserMissing(
            "Playwright for Python is missing: `make env` installs it (it is in the 'test' extra, pinned in "
            ".ci/constraints.txt). Do not run `playwright install`: the test drives the system Chromium "
            f"(`{INSTALL_CHROMIUM}`)."
        ) from exc
    return start()


# --------------------------------------------------------------------------------------------------------
# A local server for the built book


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve(root: Path):
    """Serve `root` on 127.0.0.1 (a free port) in a thread; yields the base URL ending in '/'."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value or "")


@functools.lru_cache(maxsize=None)
def _ids_in(path: Path) -> frozenset[str]:
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return frozenset(parser.ids)


# --------------------------------------------------------------------------------------------------------
# What a page reports

_COLLECT = r"""
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const imgs = [...document.images];
  imgs.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(done => {
    i.addEventListener('load', done); i.addEventListener('error', done); setTimeout(done, 5000); })));
  const skip = 'script, style, noscript, template, pre, code, textarea, kbd, samp, annotation, '
             + '.katex-mathml, mjx-assistive-mml, .highlight, [aria-hidden="true"]';
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const p = n.parentElement;
    if (p && !p.closest(skip) && n.nodeValue.trim()) texts.push(n.nodeValue);
  }
  const unresolved = [...document.querySelectorAll('.xref')].filter(e => !e.closest('a'))
                       .map(e => e.textContent.trim().slice(0, 60));
  return {
    title: document.title,
    text: texts.join(' ').replace(/\s+/g, ' '),
    images: imgs.map(i => ({src: i.getAttribute('src') || '', alt: i.getAttribute('alt'),
                            complete: i.complete, width: i.naturalWidth})),
    links: [...document.querySelectorAll('a[href]')].map(a => ({href: a.href, raw: a.getAttribute('href'),
                                                               text: a.textContent.trim().slice(0, 60)})),
    ids: [...document.querySelectorAll('[id], a[name]')].map(e => e.id || e.getAttribute('name')),
    unresolved,
    equations: document.querySelectorAll('.katex, mjx-container, math').length,
    bytes: performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
             .reduce((s, e) => s + (e.decodedBodySize || 0), 0),
    requests: performance.getEntriesByType('resource').length + 1,
  };
}
"""

_OPENED = r"""
(nodes) => nodes.map(d => {
  const inner = [...d.children].filter(c => c.tagName !== 'SUMMARY');
  return {open: d.open, visible: inner.some(c => c.getBoundingClientRect().height > 0),
          label: (d.querySelector('summary') || d).textContent.trim().slice(0, 40)};
})
"""

_PHONE = r"""
() => {
  const vw = document.documentElement.clientWidth, slack = 1;
  const scrolls = s => s.overflowX === 'auto' || s.overflowX === 'scroll';
  const describe = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
      + (typeof e.className === 'string' && e.className ? '.' + e.className.trim().split(/\s+/).join('.') : '')
      + ' "' + (e.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 40) + '"';
  const problems = [];
  const offenders = new Set();
  for (const e of document.body.querySelectorAll('*')) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.right <= vw + slack) continue;
    const s = getComputedStyle(e);
    if (s.visibility === 'hidden' || s.position === 'fixed') continue;
    let box = null;  // the nearest ancestor that scrolls or clips and fits on the screen
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible' && a.getBoundingClientRect().right <= vw + slack) {
        box = a; break;
      }
    }
    if (box) {
      if (e.tagName === 'TABLE' && !scrolls(getComputedStyle(box)))
        problems.push('table cut off instead of scrolling in its box: ' + describe(e));
      continue;
    }
    if (e.parentElement && offenders.has(e.parentElement)) { offenders.add(e); continue; }
    offenders.add(e);
    problems.push(`wider than the ${vw} px screen (right edge ${Math.round(r.right)} px): ` + describe(e));
  }
  const sw = document.documentElement.scrollWidth;
  if (sw > vw + slack) problems.unshift(`the page scrolls sideways: ${sw} px of content on a ${vw} px screen`);
  return problems;
}
"""


@dataclass
class PageReport:
    """What one page showed: `problems` is empty when every check passed."""

    path: str
    problems: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.path}:\n" + "\n".join(f"  - {p}" for p in self.problems) if self.problems else self.path


@contextlib.contextmanager
def launch_browser():
    """The system Chromium under Playwright, with a fresh empty profile; one per process is enough."""
    executable = chromium_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class BookChecker:
    """Checks pages one after the other, each in a fresh browser context, in one Chromium.

    root: the built HTML (e.g. `_build/html`); source_root: the folder whose notebooks the Colab links name;
    repository: `{"url": ..., "branch": ..., "path_to_book": ...}` as in _config.yml (None: skip Colab checks);
    screenshots: a folder for one JPEG per page (None: no screenshots); browser: a running one from
    `launch_browser()` to share (Playwright's synchronous API allows one per thread), or None to start one.
    """

    def __init__(
        self,
        root: Path,
        *,
        source_root: Path | None = None,
        repository: dict | None = None,
        screenshots: Path | None = None,
        timeout_ms: int = 20_000,
        browser=None,
    ):
        self.root = Path(root).resolve()
        self.source_root = Path(source_root).resolve() if source_root else None
        self.repository = repository
        self.screenshots = Path(screenshots) if screenshots else None
        self.timeout_ms = timeout_ms
        self.browser = browser
        self._stack = contextlib.ExitStack()

    # -- set-up -------------------------------------------------------------------------------------------
    def __enter__(self) -> "BookChecker":
        if self.browser is None:
            self.browser = self._stack.enter_context(launch_browser())
        self.base = self._stack.enter_context(serve(self.root))
        self.host = urlsplit(self.base).netloc
        if self.screenshots:
            self.screenshots.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def pages(self) -> list[str]:
        """Every HTML page of the build, relative to root (genindex and search pages excluded)."""
        skip = {"genindex.html", "search.html", "py-modindex.html"}
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*.html")
            if p.name not in skip and not any(part.startswith("_") for part in p.relative_to(self.root).parts)
        )

    @contextlib.contextmanager
    def _page(self, viewport: dict, problems: list[str], *, mobile: bool = False):
        """A fresh browser context (empty cache: every page is a first visit) with the network blocked."""
        context = self.browser.new_context(
            viewport=viewport, is_mobile=mobile, has_touch=mobile, service_workers="block"
        )

        def route(route):
            url = route.request.url
            if urlsplit(url).netloc == self.host or url.startswith(("data:", "blob:", "about:")):
                route.continue_()
            else:
                route.abort("blockedbyclient")

        context.route("**/*", route)
        page = context.new_page()
        page.set_default_timeout(self.timeout_ms)
        page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text[:300]}"))
        page.on("pageerror", lambda e: problems.append(f"JavaScript error: {str(e)[:300]}"))

        def failed(request):
            note = " (blocked: the page needs the network)" if urlsplit(request.url).netloc != self.host else ""
            problems.append(f"failed request: {request.url[:200]} {request.failure or ''}{note}")

        page.on("requestfailed", failed)
        page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url[:200]}"))
        try:
            yield page
        finally:
            context.close()

    def _goto(self, page, path: str) -> None:
        page.goto(self.base + path, wait_until="load")
        with contextlib.suppress(Exception):  # a page that keeps polling never goes idle: the checks still run
            page.wait_for_load_state("networkidle", timeout=3_000)

    # -- desktop checks ----------------------------------------------------------------------------------
    def check_page(self, path: str) -> PageReport:
        report = PageReport(path)
        problems = report.problems
        start = time.perf_counter()
        with self._page(DESKTOP, problems) as page:
            self._goto(page, path)
            info = page.evaluate(_COLLECT)
            self._check_text(info, problems)
            self._check_images(info, problems)
            self._check_links(path, info, problems)
            self._check_colab(path, info, problems)
            if self.screenshots:
                name = path.replace("/", "__").removesuffix(".html") + ".jpg"
                page.screenshot(path=str(self.screenshots / name), full_page=True, type="jpeg", quality=60)
            report.stats["toggles"] = self._check_toggles(page, problems)
        report.stats.update(
            bytes=info["bytes"],
            requests=info["requests"],
            images=len(info["images"]),
            equations=info["equations"],
            seconds=round(time.perf_counter() - start, 2),
            text=info["text"],
        )
        return report

    @staticmethod
    def _check_text(info: dict, problems: list[str]) -> None:
        text = info["text"]
        raw = [text[max(m.start() - 25, 0) : m.end() + 25] for m in RAW_TEX.finditer(text)]
        if raw:
            problems.append(f"{len(raw)} raw TeX fragment(s) in the text, e.g. " + " | ".join(map(repr, raw[:3])))
        roles = [text[m.start() : m.end() + 30] for m in RAW_ROLE.finditer(text)]
        if roles:
            problems.append("unparsed MyST role(s): " + " | ".join(map(repr, roles[:3])))
        if info["unresolved"]:
            problems.append("unresolved cross-reference(s): " + ", ".join(map(repr, info["unresolved"][:5])))

    @staticmethod
    def _check_images(info: dict, problems: list[str]) -> None:
        for img in info["images"]:
            src = img["src"]
            if not img["complete"] or not img["width"]:
                problems.append(f"image not loaded (naturalWidth 0): {src[:120]}")
            alt = (img["alt"] or "").strip()
            if not alt:
                problems.append(f"image without alt text: {src[:120]}")
            elif alt == src or IMAGE_NAME.search(alt):
                problems.append(f"image alt text is its file name: {alt[:120]}")

    def _file_for(self, url_path: str) -> Path | None:
        target = (self.root / unquote(url_path).lstrip("/")).resolve()
        if target.is_dir():
            target = target / "index.html"
        if self.root not in target.parents and target != self.root:
            return None
        return target if target.is_file() else None

    def _check_links(self, path: str, info: dict, problems: list[str]) -> None:
        here = set(info["ids"])
        seen = set()
        for link in info["links"]:
            url = urlsplit(link["href"])
            if url.scheme not in ("http", "https") or url.netloc != self.host or link["href"] in seen:
                continue
            seen.add(link["href"])
            target = self._file_for(url.path)
            label = f"{link['raw'][:100]!r} ({link['text']!r})"
            if target is None:
                problems.append(f"dead internal link: {label}")
                continue
            fragment = unquote(url.fragment)
            if not fragment:
                continue
            same_page = target == self._file_for(urlsplit(self.base + path).path)
            ids = here if same_page else (_ids_in(target) if target.suffix == ".html" else None)
            if ids is not None and fragment not in ids:
                problems.append(f"link to a missing anchor: {label}")

    def _check_colab(self, path: str, info: dict, problems: list[str]) -> None:
        if not self.repository:
            return
        slug = self.repository["url"].rstrip("/").removeprefix("https://github.com/")
        prefix = f"{COLAB}{slug}/blob/{self.repository['branch']}/"
        book = (self.repository.get("path_to_book") or "").strip("/")
        own = f"{book}/{path}" if book else path
        own = own.removesuffix(".html") + ".ipynb"
        is_notebook = (self.root / "_sources" / path).with_suffix(".ipynb").is_file()
        colab = [link["href"] for link in info["links"] if link["href"].startswith("https://colab.research.google.com")]
        for href in sorted(set(colab)):
            if not href.startswith(prefix) or not href.endswith(".ipynb"):
                problems.append(f"Colab link not of the form {prefix}<path>.ipynb: {href}")
            elif self.source_root and not (self.source_root / href.removeprefix(prefix)).is_file():
                problems.append(f"Colab link to a notebook that is not in the repository: {href}")
            elif is_notebook and href != prefix + own:
                problems.append(f"Colab link to another chapter's notebook: {href} (expected {prefix + own})")
        if is_notebook and prefix + own not in colab:
            problems.append(f"no Colab link to this chapter's notebook {prefix + own}")

    def _check_toggles(self, page, problems: list[str]) -> int:
        """Click every closed <details> in the article (hidden solutions); each must open and show content."""
        closed = page.locator("main details:not([open]) > summary")
        handles = closed.element_handles()
        for summary in handles:
            try:
                summary.scroll_into_view_if_needed(timeout=5_000)
                summary.click(timeout=5_000)
            except Exception as exc:  # noqa: BLE001 - report and go on to the next toggle
                problems.append(f"hidden block cannot be clicked open: {str(exc).splitlines()[0][:150]}")
        if handles:
            details = page.evaluate(_OPENED, [h.evaluate_handle("s => s.parentElement") for h in handles])
            for d in details:
                if not d["open"] or not d["visible"]:
                    problems.append(f"hidden block does not show its content when clicked: {d['label']!r}")
        return len(handles)

    # -- phone width, search ------------------------------------------------------------------------------
    def check_phone(self, path: str) -> PageReport:
        report = PageReport(path)
        with self._page(PHONE, report.problems, mobile=True) as page:
            self._goto(page, path)
            page.evaluate(_COLLECT)  # waits for math and images, like the desktop pass
            report.problems.extend(page.evaluate(_PHONE))
            if self.screenshots:
                name = "phone__" + path.replace("/", "__").removesuffix(".html") + ".jpg"
                page.screenshot(path=str(self.screenshots / name), full_page=False, type="jpeg", quality=60)
        return report

    def check_search(self, query: str, expected: str) -> PageReport:
        """The search page, asked for `query`, must list the page `expected` (a path relative to root)."""
        report = PageReport(f"search.html?q={query}")
        with self._page(DESKTOP, report.problems) as page:
            page.goto(self.base + f"search.html?q={query}", wait_until="load")
            try:
                page.wait_for_function(
                    "() => /finished|did not match/i.test("
                    "(document.querySelector('#search-results') || {}).innerText || '')",
                    timeout=self.timeout_ms,
                )
            except Exception:  # noqa: BLE001
                report.problems.append("the search never finished")
                return report
            hits = page.eval_on_selector_all("#search-results ul.search li a", "as => as.map(a => a.href)")
            found = sorted({urlsplit(h).path.lstrip("/") for h in hits})
            report.stats["results"] = found
            if expected not in found:
                report.problems.append(f"search for {query!r} does not list {expected} (found: {found[:8]})")
        return report
