"""The publication scan's HTML half: what would run in a reader's browser.

:func:`scan_html` finds what did not come from the book's theme: scripts,
frames, embedded objects, event-handler attributes and ``javascript:`` URLs;
:func:`scan_search_index` checks the titles of Sphinx's ``searchindex.js``,
which its search page writes into the page as HTML. Re-exported by
:mod:`crmstats.privacy`; the text half is :mod:`crmstats.text_scan`.
"""

from __future__ import annotations

import json
import posixpath
import re
import urllib.parse
from html.parser import HTMLParser

from crmstats.text_scan import Finding

#: Scripts the book's theme (sphinx-book-theme, pydata-sphinx-theme) and the Sphinx extensions
#: Jupyter Book loads put on every page, as paths from the book's root (cache keys such as
#: ``?v=...`` or ``?digest=...`` dropped), and MathJax, which Sphinx loads from its CDN on a
#: page with math. A page's ``<script src>`` must resolve to one of them.
THEME_SCRIPTS = frozenset({
    "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js",
    "_static/clipboard.min.js", "_static/copybutton.js", "_static/design-tabs.js",
    "_static/doctools.js", "_static/documentation_options.js", "_static/language_data.js",
    "_static/scripts/bootstrap.js", "_static/scripts/fontawesome.js",
    "_static/scripts/pydata-sphinx-theme.js", "_static/scripts/sphinx-book-theme.js",
    "_static/searchtools.js", "_static/sphinx-thebe.js", "_static/sphinx_highlight.js",
    "_static/togglebutton.js", "searchindex.js",
})

#: The theme's inline scripts, whitespace collapsed; ``{page}`` stands for the page's own name
#: (``studies/clv-demo``) and ``{folder}`` for its folder (``./studies``).
THEME_INLINE_SCRIPTS = (
    'document.documentElement.dataset.mode = localStorage.getItem("mode") || "light"; '
    'document.documentElement.dataset.theme = localStorage.getItem("theme") || "light";',
    "let toggleHintShow = 'Click to show';",
    "let toggleHintHide = 'Click to hide';",
    "let toggleOpenOnPrint = 'true';",
    "var togglebuttonSelector = '.toggle, .admonition.dropdown';",
    'const THEBE_JS_URL = "https://unpkg.com/thebe@0.8.2/lib/index.js"; const thebe_selector = '
    '".thebe,.cell"; const thebe_selector_input = "pre"; const thebe_selector_output = '
    '".output, .cell_output"',
    "DOCUMENTATION_OPTIONS.pagename = '{page}';",
    "DOCUMENTATION_OPTIONS.search_as_you_type = false;",
    "kernelName = 'python3'",
    'window.MathJax = {"options": {"processHtmlClass": '
    '"tex2jax_process|mathjax_process|math|output_area"}}',
    '// Activate the search field on page load let searchInput = document.querySelector('
    '"form.bd-search input"); if (searchInput) { searchInput.focus(); searchInput.select(); '
    'console.log("[PST]: Set focus on search field."); }',
    '{ requestKernel: true, binderOptions: { repo: "binder-examples/jupyter-stacks-datascience", '
    'ref: "master", }, codeMirrorConfig: { theme: "abcdef", mode: "python" }, kernelOptions: { '
    'name: "python3", path: "{folder}" }, predefinedOutput: true }',
)

#: Event-handler attributes of the theme's own buttons: ``(tag, attribute, value)``.
THEME_HANDLERS = frozenset({("button", "onclick", "window.print()"),
                            ("button", "onclick", "toggleFullScreen()")})

#: Tags that run or embed active content wherever they appear in a page.
_EXECUTABLE_TAGS = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "base",
                    "portal", "fencedframe"}
#: Attributes holding a URL a browser may follow or load.
_URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster",
                   "background", "lowsrc", "dynsrc", "cite", "longdesc", "ping", "srcset",
                   "content", "to", "from", "values", "by"}
_SCRIPT_URL = re.compile(r"^(?:(?:javascript|vbscript|livescript):|data:(?:text/html|"
                         r"application/(?:xhtml|x?html|javascript)|image/svg|text/javascript))",
                         re.I)
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]+")


def _script_url(value: str) -> bool:
    """Whether a URL attribute value runs script (``javascript:``, ``data:text/html``, ...)."""
    return bool(_SCRIPT_URL.match(_URL_NOISE.sub("", value)))


def _inline_allowed(body: str, page: str) -> bool:
    text = " ".join(body.split())
    name = page.removesuffix(".html").removesuffix(".htm")
    folder = "./" + posixpath.dirname(name) if posixpath.dirname(name) else "./."
    return any(text == allowed.replace("{page}", name).replace("{folder}", folder)
               for allowed in THEME_INLINE_SCRIPTS)


class _ExecutableFinder(HTMLParser):
    """Collect ``(line, column, kind)`` of what would run in a browser and is not the theme's."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)  # attribute values decoded as a browser does
        self.page = page
        self.hits: list[tuple[int, int, str]] = []
        self._script: tuple[int, int] | None = None
        self._body: list[str] = []

    def _hit(self, kind: str) -> None:
        line, column = self.getpos()
        self.hits.append((line, column, kind))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name, value in attrs:
            if name.startswith("on") and (tag, name, value) not in THEME_HANDLERS:
                self._hit(f"event handler attribute {name}=")
            elif name in _URL_ATTRIBUTES or name.endswith(":href"):
                if name == "content" and tag != "meta":
                    continue
                if name == "content":  # <meta http-equiv=refresh content="0; url=...">
                    value = re.sub(r"^[^;]*;\s*url\s*=\s*['\"]?", "", value or "", flags=re.I)
                if value and _script_url(value):
                    scheme = _URL_NOISE.sub("", value).split(":", 1)[0].lower()
                    self._hit(f"{scheme}: URL in {name}=")
        if tag == "script":
            src = values.get("src")
            if src:
                if not self._theme_src(src):
                    self._hit("script not from the theme (<script src>)")
            else:
                self._script = self.getpos()
                self._body = []
        elif tag in _EXECUTABLE_TAGS:
            self._hit(f"executable tag <{tag}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._body.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            if not _inline_allowed("".join(self._body), self.page):
                self.hits.append((*self._script, "script not from the theme (inline <script>)"))
            self._script = None

    def close(self) -> None:
        super().close()
        if self._script is not None:  # an unclosed script still runs
            self.hits.append((*self._script, "script not from the theme (inline <script>)"))
            self._script = None

    def _theme_src(self, src: str) -> bool:
        parts = urllib.parse.urlsplit(_URL_NOISE.sub("", src))
        if parts.scheme or parts.netloc:  # only the exact address Sphinx writes (MathJax)
            return src in THEME_SCRIPTS
        path = posixpath.normpath(posixpath.join(posixpath.dirname(self.page), parts.path))
        return path in THEME_SCRIPTS


def scan_html(text: str, *, page: str = "") -> list[Finding]:
    """Find what would run in a reader's browser and did not come from the book's theme.

    ``<script>`` elements other than the theme's (:data:`THEME_SCRIPTS` by
    source, :data:`THEME_INLINE_SCRIPTS` by exact text), frames and embedded
    objects (``<iframe>``, ``<object>``, ``<embed>``, ``<base>`` ...), event
    handler attributes (``onerror=``, ``onload=`` ...; only the theme's own
    buttons keep theirs) and URLs that run script (``javascript:``,
    ``data:text/html``) in any link or source, entity-encoded or split by
    whitespace as browsers accept them. Text that shows such markup escaped
    (``&lt;script&gt;``) is not a finding.

    Parameters
    ----------
    text : str
        The page's HTML (not decoded: decoding would turn shown text into markup).
    page : str
        The page's path from the book's root (``studies/clv-demo.html``), to
        resolve relative script sources and recognise the theme's per-page script.

    Returns
    -------
    list of Finding
        Kind and position of each, in page order; never the value.
    """
    finder = _ExecutableFinder(page)
    finder.feed(text)
    finder.close()
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    return [Finding(kind, line_starts[min(line, len(line_starts)) - 1] + column, line)
            for line, column, kind in sorted(finder.hits)]


#: How Sphinx wraps the JSON of ``searchindex.js``.
SEARCH_INDEX_PREFIX, SEARCH_INDEX_SUFFIX = "Search.setIndex(", ")"


def read_search_index(text: str) -> dict | None:
    """Return the JSON object of a Sphinx ``searchindex.js``, or None if it is not one."""
    text = text.strip()
    if not (text.startswith(SEARCH_INDEX_PREFIX) and text.endswith(SEARCH_INDEX_SUFFIX)):
        return None
    try:
        index = json.loads(text[len(SEARCH_INDEX_PREFIX):-len(SEARCH_INDEX_SUFFIX)])
    except ValueError:
        return None
    return index if isinstance(index, dict) else None


def scan_search_index(text: str) -> list[Finding]:
    """Find titles in a Sphinx ``searchindex.js`` that its search page would run.

    The search page writes the titles that match a query into the page as
    HTML, so every title of the index (page titles, section titles, index
    entries) is checked with :func:`scan_html`. Findings are named
    ``"<kind> in a search title"`` at line 1 (the index is one line). An
    index that cannot be read is a finding too (``"unreadable search index"``):
    what the scan cannot read it cannot pass.
    """
    index = read_search_index(text)
    if index is None:
        return [Finding("unreadable search index", 0, 1)]
    titles = [t for t in index.get("titles") or [] if isinstance(t, str)]
    for key in ("alltitles", "indexentries"):
        titles += [t for t in (index.get(key) or {}) if isinstance(t, str)]
    return [Finding(f"{f.pattern} in a search title", 0, 1)
            for title in titles for f in scan_html(title)]
