"""Build the Jupyter Book aside, then swap it into place.

``build_book`` runs every study (papermill is the only executor; Jupyter Book
runs with execution off), assembles the book's sources and the executed
notebooks in a staging folder with a table of contents generated from
``studies.yml``, builds the HTML there, and only when everything succeeded
swaps it into ``book/_build/html``: the old HTML is renamed aside, the new one
renamed into place, then the old one deleted. A failing study or build leaves
the previously published HTML untouched. A lock file keeps two builds of the
same book from running at once.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crmstats.book.runner import StudyResult, run_studies
from crmstats.book.studies import Study, load_studies
from crmstats.exceptions import StudyError

__all__ = ["BuildResult", "build_book", "build_lock", "write_toc"]

#: Files and folders of ``book/`` that are generated, never book sources.
GENERATED = {"_build", "studies", "studies.yml", "_toc.yml", "runs"}


@dataclass
class BuildResult:
    """Outcome of :func:`build_book`.

    Attributes
    ----------
    html : pathlib.Path
        The published HTML folder (``book/_build/html``).
    studies : list of StudyResult
        Per-study outcomes.
    published : bool
        Whether the new HTML replaced the old one.
    """

    html: Path
    studies: list[StudyResult] = field(default_factory=list)
    published: bool = False

    @property
    def failures(self) -> list[StudyResult]:
        """Studies that failed."""
        return [r for r in self.studies if not r.ok]


@contextmanager
def build_lock(book_dir: Path):
    """Hold an exclusive lock on ``book_dir/.build.lock`` or raise StudyError at once."""
    book_dir.mkdir(parents=True, exist_ok=True)
    handle = open(book_dir / ".build.lock", "w")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StudyError(
                f"another build of {book_dir} is running (lock {book_dir / '.build.lock'}); "
                "try again when it has finished"
            ) from None
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def write_toc(studies: list[Study], path: Path, *, root: str = "intro",
              extra_pages: list[str] | None = None) -> None:
    """Write a Jupyter Book ``_toc.yml``: the intro page, then each study in order."""
    chapters = [{"file": f"studies/{s.slug}"} for s in studies]
    chapters += [{"file": p} for p in (extra_pages or [])]
    toc = {"format": "jb-book", "root": root,
           "parts": [{"caption": "Studies", "chapters": chapters}]}
    path.write_text(yaml.safe_dump(toc, sort_keys=False))


def _swap(new_html: Path, html: Path) -> None:
    html.parent.mkdir(parents=True, exist_ok=True)
    old = html.with_name(html.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if html.exists():
        html.rename(old)
    new_html.rename(html)
    if old.exists():
        shutil.rmtree(old)


def _jupyter_book(source: Path, out: Path, strict: bool) -> None:
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(source),
           "--path-output", str(out), "--builder", "html"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise StudyError(f"jupyter-book build failed (exit {proc.returncode}):\n{tail}")


def build_book(
    book_dir: str | Path = "book",
    *,
    params: dict[str, Any] | None = None,
    only: list[str] | None = None,
    jobs: int | None = None,
    keep_going: bool = False,
    strict: bool = True,
    on_done: Callable[[StudyResult], None] | None = None,
) -> BuildResult:
    """Run every study of ``book_dir/studies.yml`` and publish the book.

    Parameters
    ----------
    book_dir : str or Path
        The book folder (holding ``_config.yml``, ``intro.md``, ``studies.yml``).
    params : dict, optional
        Run-wide parameters (``--params run.yml``) for the studies that declare them.
    only : list of str, optional
        Run and publish only these study slugs.
    jobs : int, optional
        Studies executed in parallel; default the number of cores.
    keep_going : bool
        Run every study even after a failure (nothing is published either way
        while any study fails).
    strict : bool
        Treat Sphinx warnings as errors.
    on_done : callable, optional
        Progress callback, given each :class:`StudyResult`.

    Returns
    -------
    BuildResult

    Raises
    ------
    StudyError
        When a study or the book build fails (after the other studies ran, with
        ``keep_going``), naming each failed notebook and cell; the previously
        published HTML stays in place.
    """
    book_dir = Path(book_dir).resolve()
    root = book_dir.parent
    studies = load_studies(book_dir / "studies.yml", overrides=params, only=only)
    html = book_dir / "_build" / "html"
    result = BuildResult(html=html)
    with build_lock(book_dir):
        result.studies = run_studies(studies, book_dir / "studies", jobs=jobs, cwd=root,
                                     keep_going=keep_going, on_done=on_done)
        if result.failures or len(result.studies) < len(studies):
            lines = [str(r.error) for r in result.failures]
            skipped = len(studies) - len(result.studies)
            if skipped:
                lines.append(f"{skipped} study(ies) not run after the first failure "
                             "(use --keep-going to run them all)")
            raise StudyError("study failed; the book was not published:\n  "
                             + "\n  ".join(lines))
        staging = book_dir / "_build.staging"
        if staging.exists():
            shutil.rmtree(staging)
        source = staging / "src"
        source.mkdir(parents=True)
        for item in book_dir.iterdir():
            if item.name in GENERATED or item.name.startswith((".", "_build")):
                continue
            target = source / item.name
            if item.is_dir():
                shutil.copytree(item, target)
            else:
                shutil.copy2(item, target)
        (source / "studies").mkdir()
        for r in result.studies:
            shutil.copy2(r.output, source / "studies" / r.output.name)
        write_toc(studies, source / "_toc.yml")
        _jupyter_book(source, staging / "out", strict)
        _swap(staging / "out" / "_build" / "html", html)
        shutil.rmtree(staging, ignore_errors=True)
        result.published = True
    return result
