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
import importlib
import sys
import types

__all__ = ["DEFERRED", "JUPYTER_BOOK", "SKIPPED", "defer_notebook_executors",
           "import_jsonschema"]

#: Modules jsonschema imports if they are there, that a build does not need.
SKIPPED = ("rfc3987_syntax",)

#: MyST-NB's notebook executors that a book with execution off never runs, and their classes:
#: importing them imports jupyter-cache and SQLAlchemy (~0.4 CPU s of Jupyter Book's run).
DEFERRED = {"myst_nb.core.execute.cache": "NotebookClientCache",
            "myst_nb.core.execute.direct": "NotebookClientDirect"}

#: ``python -c JUPYTER_BOOK build ...`` is ``jupyter-book build ...`` without :data:`SKIPPED`,
#: and with :data:`DEFERRED` imported only if a notebook is executed.
JUPYTER_BOOK = (
    "import sys\n"
    f"sys.modules.update(dict.fromkeys({SKIPPED!r}))  # None: their import fails\n"
    "from crmstats.book.lean import defer_notebook_executors\n"
    "defer_notebook_executors()\n"
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


def defer_notebook_executors() -> list[str]:
    """Put off importing MyST-NB's :data:`DEFERRED` executors until one is created.

    The book's notebooks are executed by papermill and Jupyter Book only
    renders them (``execute_notebooks: "off"``), so MyST-NB never creates its
    caching or direct executor; yet importing them imports jupyter-cache and
    with it SQLAlchemy. Each module is replaced by a stand-in whose class,
    when a book with execution on creates one, imports the real module and
    returns the real executor. Modules already imported are left as they are.

    Returns
    -------
    list of str
        The modules deferred.
    """
    done = []
    for name, cls_name in DEFERRED.items():
        if name not in sys.modules:
            sys.modules[name] = _stand_in(name, cls_name)
            done.append(name)
    return done


def _stand_in(name: str, cls_name: str) -> types.ModuleType:
    module = types.ModuleType(name, f"Stand-in for {name} (crmstats.book.lean): imported on use.")

    def real() -> type:
        if sys.modules.get(name) is module:
            del sys.modules[name]
        return getattr(importlib.import_module(name), cls_name)

    class Deferred:
        def __new__(cls, *args, **kwargs):
            return real()(*args, **kwargs)

    Deferred.__name__ = Deferred.__qualname__ = cls_name
    setattr(module, cls_name, Deferred)
    return module
