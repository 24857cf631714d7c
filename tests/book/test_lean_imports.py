"""A build's processes import jsonschema without its IRI checker (crmstats.book.lean)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from crmstats.book.lean import DEFERRED, JUPYTER_BOOK, SKIPPED

PROBE = """
import json, sys
from crmstats.book.lean import import_jsonschema
first, again = import_jsonschema(), import_jsonschema()
import jsonschema
checker = jsonschema.FormatChecker()
skipped = {name: name in sys.modules for name in %r}
valid = checker.conforms("2026-12-07", "date") and not checker.conforms("2026-13-07", "date")
import nbformat
nb = nbformat.v4.new_notebook()
nbformat.validate(nb)
print(json.dumps({"first": first, "again": again, "skipped": skipped, "valid": valid}))
"""


@pytest.mark.skipif(importlib.util.find_spec("rfc3987_syntax") is None,
                    reason="rfc3987_syntax is not installed: nothing to skip")
def test_jsonschema_is_imported_without_the_iri_checker():
    proc = subprocess.run([sys.executable, "-c", PROBE % (SKIPPED,)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out == {"first": True, "again": False, "skipped": dict.fromkeys(SKIPPED, False),
                   "valid": True}
    # and the module can still be imported by whoever wants it afterwards
    proc = subprocess.run([sys.executable, "-c", "from crmstats.book.lean import "
                           "import_jsonschema; import_jsonschema(); import rfc3987_syntax"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_jupyter_book_runs_lean_from_this_interpreter(tmp_path):
    from crmstats.book.build import _jupyter_book_command

    cmd = _jupyter_book_command(tmp_path / "src", tmp_path / "out", strict=True)
    assert cmd[:3] == [sys.executable, "-c", JUPYTER_BOOK]
    assert cmd[3:5] == ["build", str(tmp_path / "src")]
    probe = ("import jupyter_book.config\n"  # what imports jsonschema in a build
             f"print([n for n in {SKIPPED!r} if sys.modules.get(n) is not None])\n"
             "print('jsonschema' in sys.modules)\n"
             "sys.exit(main())")
    proc = subprocess.run([sys.executable, "-c", JUPYTER_BOOK.replace("sys.exit(main())", probe),
                           "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["[]", "True"]  # jsonschema imported, without the skipped modules
    assert "Jupyter Book" in proc.stdout


def test_the_book_extension_leaves_pandas_out_of_jupyter_book(tmp_path):
    """The search index is escaped without importing pandas (~0.4 CPU s of Jupyter Book)."""
    index = tmp_path / "searchindex.js"
    index.write_text('Search.setIndex({"alltitles": {"a <b>": [[0, "x"]]}, "titles": ["t"]})')
    probe = ("import json, sys\n"
             "from crmstats.book.sphinx_ext import escape_search_titles\n"
             f"changed = escape_search_titles({str(index)!r})\n"
             "print(json.dumps([changed, 'pandas' in sys.modules, 'numpy' in sys.modules]))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [True, False, False]
    assert "a &lt;b&gt;" in index.read_text()


DEFER_PROBE = """
import json, logging, sys
from crmstats.book.lean import DEFERRED, defer_notebook_executors
deferred = defer_notebook_executors()
import myst_nb.sphinx_ext  # what Jupyter Book loads
import myst_nb.core.execute as execute
before = "sqlalchemy" in sys.modules or "jupyter_cache" in sys.modules
import nbformat
from myst_nb.core.config import NbParserConfig
client = execute.NotebookClientDirect(nbformat.v4.new_notebook(), None, NbParserConfig(),
                                      logging.getLogger("probe"))
print(json.dumps({"deferred": deferred, "before": before, "module": type(client).__module__,
                  "name": type(client).__name__, "after": "jupyter_cache" in sys.modules}))
"""


@pytest.mark.skipif(importlib.util.find_spec("myst_nb") is None, reason="no MyST-NB")
def test_notebook_executors_are_imported_only_when_used():
    """Execution off: no jupyter-cache, no SQLAlchemy; execution on: the real executor."""
    proc = subprocess.run([sys.executable, "-c", DEFER_PROBE], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"deferred": list(DEFERRED), "before": False,
                   "module": "myst_nb.core.execute.direct", "name": "NotebookClientDirect",
                   "after": True}
