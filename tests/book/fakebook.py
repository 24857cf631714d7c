"""A tiny book with a fake papermill and a fake jupyter-book, for fast build tests.

The fakes keep what the build relies on and drop the cost: papermill writes
the executed notebook (injected parameters, one output, papermill metadata
with absolute paths, like the real one); jupyter-book is a real child process
(a small script) that renders each page to HTML — Markdown's backslash escapes
as the characters they stand for, ``@`` entity-encoded, as Sphinx may — and
copies the sources to ``_sources/``.

Run as ``python -m tests.book.fakebook BOOK [--kill-at STEP] [--jb-sleep S]
[--jb-pidfile F]`` to build in a child process (the SIGKILL tests).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import nbformat
import yaml

PARAMS = 'data_source: str = "none"  # data source\nnote: str = ""  # printed by the study\n'

JB_SCRIPT = r'''
import html, json, os, pathlib, re, shutil, sys, time
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
if os.environ.get("FAKE_JB_PIDFILE"):
    pathlib.Path(os.environ["FAKE_JB_PIDFILE"]).write_text(str(os.getpid()))
time.sleep(float(os.environ.get("FAKE_JB_SLEEP", "0")))
if os.environ.get("FAKE_JB_FAIL"):
    print("Running Sphinx v7\nOSError: [Errno 28] No space left on device: '" + str(out) + "'")
    sys.exit(2)
dest = out / "_build" / "html"
dest.mkdir(parents=True)
for p in sorted(src.rglob("*")):
    if p.suffix not in (".md", ".ipynb"):
        continue
    rel = p.relative_to(src)
    text = p.read_text()
    if p.suffix == ".ipynb":
        nb = json.loads(text)
        parts = []
        for cell in nb["cells"]:
            parts.append("".join(cell["source"]))
            for o in cell.get("outputs", []):
                parts.append("".join(o.get("text", "")))
                parts.append("".join(o.get("data", {}).get("text/plain", "")))
        text = "\n".join(parts)
    text = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)  # Markdown escapes, as rendered
    body = html.escape(text).replace("@", "&#64;")
    page = dest / rel.with_suffix(".html")
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("<html><body><main><pre>" + body + "</pre></main></body></html>")
    copy = dest / "_sources" / rel
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(p, copy)
(dest / "_static").mkdir()
(dest / "_static" / "theme.js").write_text("// maintainer: someone@example.com")
(dest / "index.html").write_text('<meta http-equiv="refresh" content="0; url=summary.html">')
'''


def make_repo(root: Path, studies: int = 2) -> Path:
    """Create ``root/notebooks/t.ipynb`` and ``root/book``; return the book folder."""
    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(PARAMS)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Study"), cell,
                nbformat.v4.new_code_cell("print(note or 'revenue 1,234')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, root / "notebooks" / "t.ipynb")
    book = root / "book"
    book.mkdir(exist_ok=True)
    (book / "_config.yml").write_text("title: Test book\n")
    (book / "intro.md").write_text("# Intro\n\nA test book.\n")
    (book / "studies.yml").write_text(yaml.safe_dump({"studies": [
        {"slug": f"s{i}", "title": f"Study {i}", "template": "notebooks/t.ipynb"}
        for i in range(1, studies + 1)]}, sort_keys=False))
    return book


def fake_execute_notebook(input_path, output_path, parameters=None, **kwargs):
    """Write the executed notebook as papermill would (no kernel)."""
    nb = nbformat.read(str(input_path), as_version=4)
    params = dict(parameters or {})
    injected = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(2, injected)
    note = params.get("note", "")
    if note == "FAIL":
        from papermill.exceptions import PapermillExecutionError

        nbformat.write(nb, str(output_path))
        raise PapermillExecutionError(3, 1, "x", "DataError",
                                      "transactions: 2 duplicate keys ['anna@example.com', "
                                      "'bob@example.com'] in column 'customer_id'", [])
    if note == "CREDENTIAL":  # a study that prints a key it found in the data
        note = "key AKIA" + "IOSFODNN7EXAMPLE"
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                   text=(note or "revenue 1,234") + "\n")]
    nb.metadata["papermill"] = {"input_path": str(Path(input_path).resolve()),
                                "output_path": str(Path(output_path).resolve()),
                                "parameters": params}
    nbformat.write(nb, str(output_path))


def install(setattr, script: Path) -> None:
    """Install the fakes with ``setattr(obj, name, value)`` (monkeypatch.setattr or setattr)."""
    import papermill

    from crmstats.book import build, runner

    script.write_text(JB_SCRIPT)
    setattr(papermill, "execute_notebook", fake_execute_notebook)
    # no kernel is started: no kernel server either
    setattr(runner, "warm_kernels",
            lambda cwd=None, sources=(), fork=False, on_lean=None:
            contextlib.nullcontext("python3"))
    setattr(build, "_jupyter_book_command",
            lambda source, out, strict: [sys.executable, str(script), str(source), str(out)])
    setattr(build, "_personal_values", lambda studies, crms=None: ("Anna Berg", "anna@example.com"))


def published_text(book: Path) -> str:
    """All text of the published book's pages (to tell which build is live)."""
    html = book / "_build" / "html"
    return "".join(p.read_text() for p in sorted(html.rglob("*.html")))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("book")
    parser.add_argument("--kill-at", default="")
    parser.add_argument("--jb-sleep", type=float, default=0)
    parser.add_argument("--jb-pidfile", default="")
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    from crmstats.book import build_book, publish

    install(setattr, Path(args.book).parent / "fake_jb.py")
    if args.jb_sleep:
        os.environ["FAKE_JB_SLEEP"] = str(args.jb_sleep)
    if args.jb_pidfile:
        os.environ["FAKE_JB_PIDFILE"] = args.jb_pidfile
    if args.kill_at:
        def hook(step):
            if step == args.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        publish._step_hook = hook
    params = {"note": args.note} if args.note else None
    result = build_book(args.book, params=params, jobs=1)
    print(json.dumps({"published": result.published, "run": result.run_dir.name}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
