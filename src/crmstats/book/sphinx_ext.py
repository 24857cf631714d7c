"""A Sphinx extension the book loads: fixes to the published HTML.

``sphinx-thebe`` (loaded by Jupyter Book 1.x even with launch buttons off)
registers its inline configuration script each time Sphinx reads the sources,
so pages can declare ``const THEBE_JS_URL`` twice — a JavaScript error in every
reader's browser console. This extension drops exact duplicate script entries
from every page before it is written.

``sphinx-book-theme`` puts each page's title into the page a second time, for
printing (``<h1>{{ pagetitle }}</h1>``), and the book's title into the sidebar
(``{{ root_title }}``), as plain text that its templates do not escape: a title
naming a data source called ``<script>...`` would be markup there, though the
page's own heading shows it as text. This extension escapes both.

Sphinx's search index (``searchindex.js``) holds every section title as plain
text (``alltitles``, and index entries likewise), and the search page writes
the titles that match a query into the page as HTML (``innerHTML``): searching
for a title that names ``<img src=x onerror=...>`` ran it. When the build has
finished, this extension rewrites those titles HTML-escaped, as the page
titles of the same index already are, so the search page shows them as text.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

#: Template variables that sphinx-book-theme fills with plain text and writes unescaped.
_PLAIN_TEXT_CONTEXT = ("pagetitle", "root_title")


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in scripts:
        attributes = dict(getattr(script, "attributes", {}) or {})
        # an inline script is registered with filename None or "": same script
        filename = str(getattr(script, "filename", script) or "")
        key = (filename, repr(sorted(attributes.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    scripts[:] = unique


def _escape_plain_titles(app, pagename, templatename, context, doctree) -> None:
    """HTML-escape the theme's plain-text titles (set by the theme at the default priority)."""
    for key in _PLAIN_TEXT_CONTEXT:
        value = context.get(key)
        if type(value) is str:  # text, not markupsafe.Markup
            context[key] = html.escape(value, quote=True)




def escape_search_titles(path: str | Path) -> bool:
    """HTML-escape the section titles and index entries of a Sphinx ``searchindex.js``.

    Returns whether the file was changed. Titles that become equal when
    escaped keep all their places; a title already escaped stays as it is.
    """
    # from its own module: crmstats.privacy would import pandas into Jupyter Book (~0.4 CPU s)
    from crmstats.html_scan import read_search_index

    path = Path(path)
    index = read_search_index(path.read_text(encoding="utf-8"))
    if index is None:  # not Sphinx's format: the publication scan refuses it
        return False
    changed = False
    for key in ("alltitles", "indexentries"):
        entries = index.get(key)
        if not isinstance(entries, dict):
            continue
        escaped: dict[str, list] = {}
        for title, places in entries.items():
            # unescaped first: an index written by an earlier incremental build stays as it is
            shown = html.escape(html.unescape(title), quote=False)
            escaped.setdefault(shown, []).extend(places)
        changed |= list(escaped) != list(entries)
        index[key] = escaped
    if changed:  # written as Sphinx writes it
        from crmstats.html_scan import SEARCH_INDEX_PREFIX, SEARCH_INDEX_SUFFIX

        path.write_text(SEARCH_INDEX_PREFIX + json.dumps(index, sort_keys=True)
                        + SEARCH_INDEX_SUFFIX, encoding="utf-8")
    return changed


def _escape_search_index(app, exception) -> None:
    if exception is not None or getattr(app.builder, "format", "") != "html":
        return
    index = Path(app.outdir) / getattr(app.builder, "searchindex_filename", "searchindex.js")
    if index.is_file():
        escape_search_titles(index)


def setup(app) -> dict[str, Any]:
    """Register the extension with Sphinx."""
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("html-page-context", _escape_plain_titles, priority=900)
    app.connect("build-finished", _escape_search_index)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
