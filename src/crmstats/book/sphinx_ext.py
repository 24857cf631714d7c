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
"""

from __future__ import annotations

import html
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


def setup(app) -> dict[str, Any]:
    """Register the extension with Sphinx."""
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("html-page-context", _escape_plain_titles, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
