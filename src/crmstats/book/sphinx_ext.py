"""A Sphinx extension the book loads: fixes to the published HTML.

``sphinx-thebe`` (loaded by Jupyter Book 1.x even with launch buttons off)
registers its inline configuration script each time Sphinx reads the sources,
so pages can declare ``const THEBE_JS_URL`` twice — a JavaScript error in every
reader's browser console. This extension drops exact duplicate script entries
from every page before it is written.
"""

from __future__ import annotations

from typing import Any


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


def setup(app) -> dict[str, Any]:
    """Register the extension with Sphinx."""
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
