"""What a build's processes need not import: jsonschema's IRI checker, ~1.4 s of CPU each.

jsonschema imports ``rfc3987_syntax`` when it is installed (jupyter-events pulls it
in through jsonschema's ``format-nongpl`` extra), and that module compiles 38 Lark
grammars as it is imported: 1.3-1.8 CPU s in every process that imports nbformat
(the build, through papermill; the kernel server; Jupyter Book) — a third of
Jupyter Book's whole run — for the ``iri`` and ``iri-reference`` format checks,
which no schema a build validates uses (nbformat's and Jupyter Book's schemas
have no such format, and neither checks formats). :func:`import_jsonschema`
imports jsonschema without it; :data:`JUPYTER_BOOK` runs Jupyter Book's command
line likewise. Everything else (every other format checker, the validation
itself) is as before, and ``rfc3987_syntax`` can still be imported afterwards.
"""

from __future__ import annotations

import contextlib
import sys

__all__ = ["JUPYTER_BOOK", "SKIPPED", "import_jsonschema"]

#: Modules jsonschema imports if they are there, that a build does not need.
SKIPPED = ("rfc3987_syntax",)

#: ``python -c JUPYTER_BOOK build ...`` is ``jupyter-book build ...`` without :data:`SKIPPED`.
JUPYTER_BOOK = (
    "import sys\n"
    f"sys.modules.update(dict.fromkeys({SKIPPED!r}))  # None: their import fails\n"
    "from jupyter_book.cli.main import main\n"
    "sys.argv[0] = 'jupyter-book'\n"
    "sys.exit(main())\n"
)


def import_jsonschema() -> bool:
    """Import jsonschema without :data:`SKIPPED`, unless it is imported already.

    Returns
    -------
    bool
        Whether it was imported here.
    """
    if "jsonschema" in sys.modules:
        return False
    blocked = [name for name in SKIPPED if name not in sys.modules]
    sys.modules.update(dict.fromkeys(blocked))  # a None entry makes ``import name`` fail
    try:
        with contextlib.suppress(ImportError):
            import jsonschema  # noqa: F401
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return "jsonschema" in sys.modules
