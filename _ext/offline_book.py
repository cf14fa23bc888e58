"""The book's local Sphinx extension: pages that are complete without a network.

Registered in _config.yml (`sphinx.local_extensions`). It

- puts `_ext/static` on the HTML static path: the vendored KaTeX style sheet and fonts (the mathematics is
  rendered to HTML at build time by sphinxcontrib-katex, so pages need no script for it), the vendored
  Jupyter widgets embedder (`nb_ipywidgets_js` in _config.yml points to it; myst-nb adds it to pages whose
  notebook saved widget state), and `book.css`, added to every page (phone-width layout);
- drops a second copy of an identical inline script: sphinx-thebe 0.3.1 registers its configuration script
  after the builder is set up, so Sphinx 7.4 adds it twice (once as filename None, once as ''), and every page
  stopped with "Identifier 'THEBE_JS_URL' has already been declared";
- drops the widget scripts and saved state from a page that shows no widget (chapter 5's notebook saved the
  state of a progress bar that none of its outputs shows);
- gives the figures that notebook cells draw their alt text from `chapters/figure_alt.yml`, keyed by
  notebook and cell id, so the notebooks' code cells and outputs stay as executed (myst-nb would use the
  image's file name); a figure inside a saved widget (the explorer panel) gets its text through
  `widget_alt.js`, loaded with the widgets embedder.

Nothing here reaches the network.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import yaml
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

STATIC = Path(__file__).resolve().parent / "static"
logger = logging.getLogger(__name__)


def _add_static(app: Sphinx) -> None:
    app.config.html_static_path.append(str(STATIC))
    app.add_css_file("book.css", priority=900)


def _tidy_scripts(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Drop a repeated identical script, and the widget scripts of a page that shows no widget."""
    scripts = context.get("script_files")
    if not scripts:
        return
    shows_widgets = doctree is not None and any(
        "widget-view+json" in node.astext() for node in doctree.findall(nodes.raw)
    )
    widget_files = {f"_static/{path}" for path in app.config.nb_ipywidgets_js} | set(app.config.nb_ipywidgets_js)
    seen, kept = set(), []
    for js in scripts:
        filename = getattr(js, "filename", js) or ""
        attributes = getattr(js, "attributes", {})
        if not shows_widgets and (filename in widget_files or "widget-state+json" in attributes.get("type", "")):
            continue
        key = (filename, tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


def _alt_texts(app: Sphinx) -> dict:
    path = Path(app.srcdir) / app.config.figure_alt_file
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _set_figure_alt(app: Sphinx, doctree: nodes.document) -> None:
    docname = app.env.docname
    source = Path(app.env.doc2path(docname))
    if source.suffix != ".ipynb":
        return
    alts = _alt_texts(app).get(source.stem, {})
    if not alts:
        return
    cells = json.loads(source.read_text(encoding="utf-8"))["cells"]
    used = set()
    for container in doctree.findall(nodes.container):
        if container.get("nb_element") != "cell_code" or container.get("cell_index") is None:
            continue
        cell_id = cells[container["cell_index"]].get("id")
        if cell_id not in alts:
            continue
        texts = alts[cell_id]
        texts = [texts] if isinstance(texts, str) else list(texts)
        texts = [" ".join(str(t).split()) for t in texts]
        images = [im for im in container.findall(nodes.image) if im.get("alt") in (None, "", im.get("uri"))]
        widgets = [r for r in container.findall(nodes.raw) if "widget-view+json" in r.astext()]
        if len(images) + (1 if widgets else 0) != len(texts):
            logger.warning(
                f"{source.name} cell {cell_id}: {len(texts)} alt text(s) in "
                f"{app.config.figure_alt_file} for {len(images)} figure(s) and "
                f"{len(widgets)} widget(s)",
                location=docname,
            )
        for image, text in zip(images, texts):
            image["alt"] = text
        if widgets and len(texts) > len(images):
            # The widgets embedder draws saved figures without alt text; widget_alt.js copies this one onto them.
            note = f'<span class="widget-image-alt" hidden>{html.escape(texts[len(images)])}</span>'
            widgets[-1].parent.append(nodes.raw("", note, format="html"))
        used.add(cell_id)
    for cell_id in sorted(set(alts) - used):
        logger.warning(f"{app.config.figure_alt_file}: {source.stem} has no code cell {cell_id!r}", location=docname)


def setup(app: Sphinx) -> dict:
    app.add_config_value("figure_alt_file", "chapters/figure_alt.yml", "env")
    app.connect("builder-inited", _add_static)
    app.connect("html-page-context", _tidy_scripts, priority=900)
    app.connect("doctree-read", _set_figure_alt)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
