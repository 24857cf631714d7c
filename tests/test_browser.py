"""The built book in a real headless Chromium: pages load, images render, links resolve.

Needs the Debian package ``chromium`` (Playwright drives it; it cannot download
its own browser here). Skips with a message where it is absent, fails under
``CI=true``. Screenshots of the summary and of one study are saved to
``tests/artifacts/`` (git-ignored).
"""

import contextlib
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest

from tests.conftest import ROOT, requires_system_tool

ARTIFACTS = ROOT / "tests" / "artifacts"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextlib.contextmanager
def _serve(html: Path):
    """Serve a built book's HTML over HTTP on loopback (as a web server would publish it)."""
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", html
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def served_book(built_book):
    """Serve the built HTML over HTTP on loopback (as a web server would publish it)."""
    book, _, _ = built_book
    with _serve(book / "_build" / "html") as served:
        yield served


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    requires_system_tool(executable is not None, "Chromium",
                         "apt-get install chromium; .ci/run does this")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=executable, headless=True,
                                      args=["--no-sandbox", "--disable-gpu"])
        yield instance
        instance.close()


@pytest.mark.slow
def test_every_page_loads_renders_and_links(browser, served_book):
    base, html = served_book
    # every page of the book (_static/ holds theme template fragments, not pages)
    pages = sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html")
                   if not p.relative_to(html).as_posix().startswith("_static/"))
    assert "summary.html" in pages and "index.html" in pages
    problems: list[str] = []
    checked_links: set[str] = set()
    images_seen = 0
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    failed: list[str] = []

    def on_console(message):
        # a failed resource load is reported below with its URL
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    def on_response(response):
        # browsers ask every site for /favicon.ico on their own; the book has none
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            failed.append(f"{response.url} -> HTTP {response.status}")

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", on_response)
    page.on("requestfailed", lambda r: failed.append(f"{r.url} failed"))
    for rel in pages:
        errors.clear()
        response = page.goto(base + rel, wait_until="networkidle")  # index.html redirects
        if response is None or not response.ok:
            problems.append(f"{rel}: HTTP {response.status if response else 'no response'}")
            continue
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.getAttribute('src'), e.complete, e.naturalWidth])")
        for src, complete, width in images:
            images_seen += 1
            if not complete or width == 0:
                problems.append(f"{rel}: image {src} did not render")
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        for href in hrefs:
            target = urldefrag(urljoin(base + rel, href)).url
            if urlparse(target).scheme not in ("http", "https") or not target.startswith(base):
                continue  # external or mailto: not part of the book
            if target in checked_links:
                continue
            checked_links.add(target)
            status = page.request.get(target).status
            if status != 200:
                problems.append(f"{rel}: link {href} -> HTTP {status}")
        if errors:
            problems.append(f"{rel}: console errors {errors[:3]}")
        if failed:
            problems.append(f"{rel}: resources failed to load {failed[:3]}")
            failed.clear()
    assert images_seen >= 5
    assert len(checked_links) >= len(pages) // 2
    assert not problems, "\n".join(problems)


#: What a page for readers must not show: tracebacks, warnings, machine paths.
_LEAKS = [
    ("a traceback", r"Traceback \(most recent call last\)|^\s*File \"[^\"]+\", line \d+"),
    ("an exception", r"\b[A-Z][A-Za-z]+(Error|Exception): "),
    ("a warning", r"\b[A-Za-z]*Warning\b|warnings\.warn|UserWarning"),
    ("a machine path", r"(^|[\s'\"(=])(/(tmp|home|root|work|srv|var|usr|opt|private)/|"
                       r"[A-Z]:\\|~/)|site-packages"),
]

#: In the browser: every table fits its column, or sits in a box that scrolls sideways.
_OVERFLOWING_TABLES = r"""() => {
  const main = document.querySelector('article.bd-article') || document.querySelector('main');
  const limit = main.getBoundingClientRect().right + 1;
  const bad = [];
  for (const table of main.querySelectorAll('table')) {
    let ok = table.getBoundingClientRect().right <= limit;
    for (let el = table.parentElement; !ok && el && el !== main; el = el.parentElement) {
      const style = getComputedStyle(el).overflowX;
      if ((style === 'auto' || style === 'scroll') && el.getBoundingClientRect().right <= limit)
        ok = true;
    }
    if (!ok) bad.push((table.innerText || '').slice(0, 60).replace(/\s+/g, ' '));
  }
  return bad;
}"""


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_pages_read_like_a_report(browser, served_book, built_book):
    """No table overflows its column; no traceback, warning or path; findings come first."""
    import re

    base, html = served_book
    book, _, spec = built_book
    machine = str(book.parent)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    studies = [s["slug"] for s in spec["studies"]]
    for rel in ["summary.html", "intro.html", *(f"studies/{s}.html" for s in studies)]:
        page.goto(base + rel, wait_until="load")
        text = page.locator("article.bd-article").inner_text()
        source = (html / rel).read_text()
        for what, pattern in _LEAKS:
            found = re.search(pattern, text, flags=re.M)
            if found:
                problems.append(f"{rel}: shows {what}: {found.group(0)!r}")
        if machine in source:
            problems.append(f"{rel}: the HTML holds the build machine's path")
        for css in (".output.stderr", ".output.traceback", "div.output.error"):
            if page.locator(css).count():
                problems.append(f"{rel}: has a {css} output")
        overflowing = page.evaluate(_OVERFLOWING_TABLES)
        if overflowing:
            problems.append(f"{rel}: tables run past the page: {overflowing[:3]}")
        if rel.startswith("studies/"):
            headings = page.locator("article.bd-article h2").all_inner_texts()
            if not headings or not headings[0].startswith("Key findings"):
                problems.append(f"{rel}: does not open with Key findings ({headings[:2]})")
            elif "Data notes" not in " ".join(headings):
                problems.append(f"{rel}: has no Data notes section")
            findings = page.locator("#key-findings + ul > li")
            if not 1 <= findings.count() <= 5:
                problems.append(f"{rel}: {findings.count()} key findings")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_wide_tables_scroll_inside_their_column(browser, served_book, built_book):
    """On a narrow screen, tables wider than the column scroll in their box."""
    base, _ = served_book
    _, _, spec = built_book
    page = browser.new_page(viewport={"width": 700, "height": 900})
    wide = 0
    for study in spec["studies"]:
        page.goto(base + f"studies/{study['slug']}.html", wait_until="load")
        assert page.evaluate(_OVERFLOWING_TABLES) == [], study["slug"]
        wide += page.evaluate("""() => [...document.querySelectorAll('article.bd-article table')]
            .filter(t => t.getBoundingClientRect().width
                         > document.querySelector('article.bd-article').clientWidth).length""")
    assert wide >= 1, "no table wider than the column at 700 px: the check saw nothing to scroll"


@pytest.mark.slow
def test_screenshots_of_summary_and_a_study(browser, served_book, built_book):
    base, _ = served_book
    _, _, spec = built_book
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    slugs = [s["slug"] for s in spec["studies"]]
    study = "clv" if "clv" in slugs else slugs[-1]
    for rel, name in [("summary.html", "summary.png"), (f"studies/{study}.html", f"{study}.png")]:
        page.goto(base + rel, wait_until="load")
        assert "KPI" in page.title() or page.locator("h1").count() >= 1
        page.screenshot(path=str(ARTIFACTS / name), full_page=True)
        shot = Path(ARTIFACTS / name)
        assert shot.exists() and shot.stat().st_size > 10_000
    # the summary's KPI table is visible and links to the studies
    page.goto(base + "summary.html", wait_until="load")
    assert page.locator("table").first.is_visible()
    assert page.locator("a[href^='studies/']").count() >= 3


# ----------------------------------------------------------------------------- hostile names

#: Names a CRM user can type (a UTM value, a stage, a source file's ``name:``), mapped onto
#: the small demo by a source file's ``values:``: script, event handlers, Markdown/MyST tricks.
HOSTILE_CHANNELS = {
    "paid_search": "<script>alert(1)</script>",
    "email": '"><img src=x onerror=alert(2)>',
    "social": "[click](javascript:alert(3)) {raw}`html <b onmouseover=alert(4)>x</b>`",
    "organic_search": "$\\foo{ $ organic <svg onload=alert(5)>",
}
HOSTILE_STAGE = ("unqualified", '"><img src=x onerror=alert(6)>')
HOSTILE_VALUES = {
    "segment": {"retail": "*{{ x }}* <iframe src=javascript:alert(7)>"},
    "industry": {"software": "```{raw} html <script>alert(8)</script>"},
    "product_category": {"software": ":::{raw} html <script>alert(9)</script>"},
}
HOSTILE_SOURCE_NAME = "<script>alert(10)</script> <img src=x onerror=alert(11)> $x$"
#: Studies that show channels, stages, segments and the source name (the summary is built too).
HOSTILE_STUDIES = [("data-quality", "notebooks/data_quality.ipynb"),
                   ("attribution-demo", "notebooks/attribution.ipynb"),
                   ("funnel-demo", "notebooks/funnel.ipynb"),
                   # acquisition channels as covariates (CLV), channels as media (next euro)
                   ("clv-demo", "notebooks/clv.ipynb"),
                   ("next-euro-demo", "notebooks/next_euro.ipynb")]


def hostile_source(folder: Path) -> Path:
    """Write the small demo's tables and a ``crmstats.yml`` naming them with hostile text."""
    import pyarrow.parquet as pq
    import yaml

    import crmstats
    from tests.conftest import SMALL_DEMO

    # with media on, spend is recorded daily, so the media-mix study applies too
    files = crmstats.export_crm(crmstats.load_crm(SMALL_DEMO + ",media_share=0.35"), folder)
    tables = {}
    for path in files:
        name = path.stem
        values = {}
        for column in ("channel", "acquisition_channel"):
            values[column] = dict(HOSTILE_CHANNELS)
        if name == "stage_events":
            values["stage"] = {HOSTILE_STAGE[0]: HOSTILE_STAGE[1]}
        values.update(HOSTILE_VALUES)
        present = set(pq.read_schema(path).names)
        tables[name] = {"file": path.name,
                        **({"values": {c: m for c, m in values.items() if c in present}}
                           if any(c in present for c in values) else {})}
    spec = {"name": HOSTILE_SOURCE_NAME, "location": ".", "tables": tables}
    (folder / "crmstats.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder / "crmstats.yml"


@pytest.fixture(scope="module")
def hostile_book(tmp_path_factory):
    """A book of three studies and the summary, built on the demo renamed with hostile names.

    Built with ``keep_going`` so that a study the names break is a failure page (asserted
    separately) rather than no book at all.
    """
    import yaml

    from crmstats.book import build_book

    root = tmp_path_factory.mktemp("hostile")
    source = hostile_source(root / "data")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    book = root / "book"
    book.mkdir()
    for name in ("_config.yml", *(p.name for p in (ROOT / "book").glob("*.md"))):
        shutil.copy2(ROOT / "book" / name, book / name)
    if (ROOT / "book" / "_static").is_dir():
        shutil.copytree(ROOT / "book" / "_static", book / "_static")
    # each study keeps the repository book's requirements for its template
    requires = {s["template"]: s["requires"] for s in
                yaml.safe_load((ROOT / "book" / "studies.yml").read_text())["studies"]
                if "requires" in s}
    spec = {"defaults": {"data_source": source.relative_to(root).as_posix()},  # studies run in root
            "studies": [{"slug": slug, "title": "{source} — " + slug, "template": template,
                         **({"requires": requires[template]} if template in requires else {})}
                        for slug, template in HOSTILE_STUDIES]}
    (book / "studies.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    here = os.getcwd()
    os.chdir(root)  # as `crmstats book build` runs: titles read the source file from here
    try:
        result = build_book(book, jobs=2, keep_going=True)
    finally:
        os.chdir(here)
    return book, result


@pytest.fixture(scope="module")
def served_hostile_book(hostile_book):
    book, _ = hostile_book
    with _serve(book / "_build" / "html") as served:
        yield served


@pytest.mark.slow
def test_hostile_names_show_as_text_and_fire_no_dialog(browser, hostile_book,
                                                       served_hostile_book):
    """Every page of a book whose names carry script: zero dialogs, the names readable."""
    _, result = hostile_book
    base, html = served_hostile_book
    pages = sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html")
                   if not p.relative_to(html).as_posix().startswith("_static/"))
    assert len(pages) >= len(HOSTILE_STUDIES) + 2
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    dialogs: list[str] = []

    def on_dialog(dialog):
        dialogs.append(f"{page.url.removeprefix(base)}: {dialog.type}({dialog.message})")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    texts = {}
    for rel in pages:
        page.goto(base + rel, wait_until="networkidle")
        page.mouse.move(400, 400)  # handlers such as onmouseover get their chance
        texts[rel] = page.locator("body").inner_text()
    # the search page writes matching titles into the page: search for each hostile title
    from urllib.parse import quote

    finished = ("() => (document.querySelector('#search-results .search-summary') || {})"
                ".innerText?.startsWith('Search finished')")
    for slug, _ in HOSTILE_STUDIES:
        # the whole title (Sphinx matches it against every title), then a word of it
        for query in (f"{HOSTILE_SOURCE_NAME} — {slug}", slug.split("-")[0]):
            page.goto(base + "search.html?q=" + quote(query), wait_until="networkidle")
            page.wait_for_function(finished, timeout=20_000)
            page.mouse.move(400, 400)
            texts[f"search for {query}"] = page.locator("#search-results").inner_text()
    assert dialogs == [], f"{len(dialogs)} dialog(s):\n" + "\n".join(dialogs[:30])
    failed = [f"{r.slug}: {r.error}" for r in result.failures]
    assert not failed, "a hostile name broke a study:\n" + "\n".join(failed)
    # the names were on the pages, shown as the text typed
    everything = "\n".join(texts.values())
    for name in (*HOSTILE_CHANNELS.values(), HOSTILE_STAGE[1], HOSTILE_SOURCE_NAME):
        assert name in everything, f"{name!r} is not shown as text on any page"
    assert HOSTILE_SOURCE_NAME in texts["summary.html"]
    # the studies that tabulate channels show the typed names (not only the data-quality page)
    for slug in ("attribution-demo", "clv-demo", "next-euro-demo"):
        shown = [n for n in HOSTILE_CHANNELS.values() if n in texts[f"studies/{slug}.html"]]
        assert shown, f"no channel name is shown on {slug}"
    for slug, _ in HOSTILE_STUDIES:
        assert texts[f"studies/{slug}.html"].count(HOSTILE_SOURCE_NAME) >= 1, slug
        found = texts[f"search for {slug.split('-')[0]}"]
        assert f"{HOSTILE_SOURCE_NAME} — {slug}" in found, (slug, found[:500])
