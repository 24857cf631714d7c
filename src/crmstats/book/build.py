"""Build the Jupyter Book aside, scan it, then switch it in with one atomic step.

``build_book`` runs every study (papermill is the only executor; Jupyter Book
runs with execution off), assembles the book's sources and the executed
notebooks in a staging folder with a table of contents generated from
``studies.yml``, builds the HTML there, scans every page and published source
for personal data, credentials and machine paths (:func:`scan_book`), and only
when everything succeeded publishes it.

Publishing is crash-safe. The published book ``book/_build/html`` is a
symbolic link to ``book/_build/releases/<run>``; a new book is moved into
``releases/`` and the link replaced by a rename of a temporary link — one
atomic step, so a reader (or a crash) sees the old book or the new one, never
none. Every build first repairs what a killed build may have left
(:func:`recover`): a missing or dangling link is pointed at the last good
book, half-made links, unpublished releases and the staging folder are
removed, and the published run's record is brought up to date. A
``book/_build/html`` folder of an older crmstats is moved into ``releases/``
by the same repair. A failing study, build or scan leaves the published book
untouched. A lock file keeps two builds of the same book from running at once
(taken with ``flock`` before the holder's pid is written, so a refused build
never erases it); the Jupyter Book process runs in its own process group and
dies with the build (also when the build is killed). Every filesystem error
(a full disk, a permission) is a one-line :class:`~crmstats.StudyError` naming
the step and the cause, and the staging folder is removed on every exit.

Every run is archived under ``book/runs/<stamp>/`` (the newest 30 are kept, and
always the latest published one; see ``keep_runs``): the executed notebooks and
``kpis.json``, the KPI records each study made with
:func:`crmstats.book.record_kpis`, with the run's parameters and each study's
status. The book opens with a summary page written from those records,
showing the change against the previous published run.

With ``keep_going``, a failed study does not stop the others, and the book is
published with the failed study marked as failed (a page naming notebook, cell
and error type, with values redacted, and a warning on the summary);
:attr:`BuildResult.failures` lists them, and the command line exits non-zero.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crmstats.book.kpis import (
    NOT_AVAILABLE,
    NOT_AVAILABLE_PAGE,
    read_kpis,
    strip_kpi_records,
    summary_page,
)
from crmstats.book.report import md_text
from crmstats.book.runner import StudyResult, run_studies
from crmstats.book.studies import Study, load_studies, source_label
from crmstats.exceptions import CRMStatsError, StudyError
from crmstats.privacy import check_key

__all__ = ["PUBLISH_STEPS", "BuildResult", "build_book", "build_lock", "needs_text",
           "prune_runs", "recover", "scan_book", "scan_refusal", "unmet_needs", "write_toc"]


#: Files and folders of ``book/`` that are generated, never book sources.
GENERATED = {"_build", "studies", "studies.yml", "_toc.yml", "runs", "summary.md"}


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
    run_dir : pathlib.Path or None
        The run's archive folder (``book/runs/<stamp>``).
    recovered : list of str
        What :func:`recover` repaired before this build (an interrupted earlier one).
    unavailable : dict
        ``{slug: unmet requirements}`` of the studies not run because their
        source lacks what they need (each requirement a list of alternatives).
    """

    html: Path
    studies: list[StudyResult] = field(default_factory=list)
    published: bool = False
    run_dir: Path | None = None
    recovered: list[str] = field(default_factory=list)
    unavailable: dict[str, list[list[str]]] = field(default_factory=dict)

    @property
    def failures(self) -> list[StudyResult]:
        """Studies that failed."""
        return [r for r in self.studies if not r.ok]


@contextmanager
def build_lock(book_dir: Path):
    """Hold an exclusive lock on ``book_dir/.build.lock`` or raise StudyError at once.

    The file is opened without truncation and locked with ``flock`` before the
    holder writes its pid, so a refused build never erases the running
    build's record (the error names its pid). The kernel releases the lock
    when the holder dies, even by SIGKILL.
    """
    path = book_dir / ".build.lock"
    with _fs_step("taking the build lock"):
        book_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # never O_TRUNC: keep the holder's pid
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            pid = f" (pid {holder})" if re.fullmatch(r"\d{1,10}", holder) else ""
            raise StudyError(
                f"another build of {book_dir} is running{pid} (lock {path}); "
                "try again when it has finished"
            ) from None
        with _fs_step("taking the build lock"):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def write_toc(studies: list[Study], path: Path, *, root: str = "summary",
              front_pages: list[str] | None = None, extra_pages: list[str] | None = None) -> None:
    """Write a Jupyter Book ``_toc.yml``: the root page, front pages, then each study."""
    chapters = [{"file": f"studies/{s.slug}", "title": s.title} for s in studies]
    chapters += [{"file": p} for p in (extra_pages or [])]
    parts = []
    if front_pages:
        parts.append({"caption": "About", "chapters": [{"file": p} for p in front_pages]})
    parts.append({"caption": "Studies", "chapters": chapters})
    toc = {"format": "jb-book", "root": root, "parts": parts}
    path.write_text(yaml.safe_dump(toc, sort_keys=False))


def _runs(runs_dir: Path) -> list[Path]:
    """Run archive folders, newest first (their names are timestamps)."""
    if not runs_dir.exists():
        return []
    return sorted((p for p in runs_dir.iterdir() if p.is_dir()), reverse=True)


def _published(runs: list[Path]):
    """Yield ``(folder, record)`` of the published runs among ``runs``, in their order."""
    for folder in runs:
        try:
            data = json.loads((folder / "kpis.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a run that died before writing its record, or a stray folder
        if data.get("published"):
            yield folder, data


def prune_runs(runs_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` run archives; return the deleted folders.

    The latest *published* run is always kept, even when newer runs failed,
    because the next build compares its KPIs with it. ``keep <= 0`` keeps
    everything.
    """
    if keep <= 0:
        return []
    runs = _runs(runs_dir)
    latest_published = next((folder for folder, _ in _published(runs)), None)
    doomed = [p for p in runs[keep:] if p != latest_published]
    for folder in doomed:
        shutil.rmtree(folder, ignore_errors=True)
    return doomed


def _kept_studies(studies: list[Study], runs_dir: Path) -> dict[str, tuple[Path, dict]]:
    """For studies not rerun (``--only``): ``{slug: (run folder, study record)}``.

    Each comes from the latest published run in which it succeeded with the
    same parameters and whose executed notebook is still archived; a study
    with no such run is not kept (it is run instead, see :func:`build_book`).
    """
    kept: dict[str, tuple[Path, dict]] = {}
    runs = list(_published(_runs(runs_dir)))
    for study in studies:
        for folder, data in runs:
            done = data.get("studies") or {}
            # a renamed study (clv-demo -> clv) keeps the page archived under its old slug
            name = next((n for n in (study.slug, *study.formerly) if n in done), None)
            entry = done.get(name) if name else None
            if (entry and entry.get("status") in ("ok", "kept")
                    and entry.get("parameters") == study.parameters
                    and (folder / "notebooks" / f"{name}.ipynb").exists()):
                kept[study.slug] = (folder, {**entry, "archived_as": name})
                break
    return kept


def _kept_notebook(kept: dict[str, tuple[Path, dict]], slug: str) -> Path:
    """Return the archived notebook of a study kept from an earlier run."""
    folder, entry = kept[slug]
    return folder / "notebooks" / f"{entry.get('archived_as', slug)}.ipynb"


def _run_date(stamp: str) -> str:
    """``2026-12-01_061500`` as ``2026-12-01 06:15 UTC``."""
    day, _, time = stamp.partition("_")
    return f"{day} {time[:2]}:{time[2:4]} UTC" if len(time) >= 4 else stamp


def _kept_banner(stamp: str) -> str:
    return (f"**Not rerun in this build:** these are the results of run **{stamp}** "
            f"({_run_date(stamp)}), the last published run of this study.")


def _archive(run_dir: Path, studies: list[Study], results: list[StudyResult],
             params: dict[str, Any] | None, started: str,
             kept: dict[str, tuple[Path, dict]] | None = None,
             unavailable: dict[str, list[tuple[str, ...]]] | None = None) -> dict[str, Any]:
    """Copy the executed notebooks into ``run_dir`` and write its ``kpis.json``."""
    kept, unavailable = kept or {}, unavailable or {}
    (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    by_slug = {r.slug: r for r in results}
    record: dict[str, Any] = {"run": run_dir.name, "started": started,
                              "parameters": dict(params or {}), "published": False,
                              "studies": {}}
    for study in studies:
        res = by_slug.get(study.slug)
        entry: dict[str, Any] = {"title": study.title, "parameters": study.parameters,
                                 "template": study.template.name, "kpis": {}}
        if study.formerly:
            entry["formerly"] = list(study.formerly)
        if study.slug in unavailable:
            entry.update(status=NOT_AVAILABLE, error=None,
                         needs=[list(item) for item in unavailable[study.slug]])
        elif study.slug in kept:
            folder, old = kept[study.slug]
            entry.update(status="kept", error=None, kpis=old.get("kpis") or {},
                         from_run=old.get("from_run") or folder.name)
            shutil.copy2(_kept_notebook(kept, study.slug),
                         run_dir / "notebooks" / f"{study.slug}.ipynb")
        elif res is None:
            entry.update(status="not run", error="not run after an earlier failure")
        else:
            entry.update(status="ok" if res.ok else "failed",
                         error=None if res.ok else str(res.error), seconds=round(res.seconds, 1))
            if res.output.exists():
                shutil.copy2(res.output, run_dir / "notebooks" / res.output.name)
                if res.ok:
                    entry["kpis"] = read_kpis(res.output)
        record["studies"][study.slug] = entry
    (run_dir / "kpis.json").write_text(json.dumps(record, indent=2, default=str))
    return record


def _failure_page(study: Study, error: str, run: str) -> str:
    return (f"# {md_text(study.title)}\n\n:::{{error}}\nThis study **failed** in run {run}; its "
            f"previous results are not shown because they would not match this run's data.\n\n"
            f"```text\n{error}\n```\n:::\n")


def public_error(error: str, personal: tuple = (), paths: list[str] | None = None) -> str:
    """Return the failure text that may be shown on a published page.

    The first line of the error (notebook, cell, error type and message, up
    to the first ``"; "`` — what follows is detail, such as the columns a
    file was found to hold), with values taken out: anything the publication
    scan would flag (e-mails, phone numbers, credentials, personal values,
    machine paths), lists (``[...]``, usually offending rows or ids) and
    quoted text that is not a plain column name. Column names and counts
    stay. The full error stays in the run archive and on the command line.
    """
    from crmstats.privacy import redact

    text = (error or "failed").strip().splitlines()[0] if (error or "").strip() else "failed"
    head, sep, _ = text.partition("; ")  # details after "; " (e.g. what a file holds) stay out
    text = head + (" (details in the run archive)" if sep else "")
    text = redact(text, extra_values=personal, paths=paths, mark="…")
    text = re.sub(r"\[[^\[\]]*\]", "[…]", text)
    text = re.sub(r"(['\"])[^'\"]*\1",
                  lambda m: m.group() if re.fullmatch(r"['\"][A-Za-z_][A-Za-z0-9_.]{0,40}['\"]",
                                                      m.group()) else "'…'", text)
    return text[:300] + ("…" if len(text) > 300 else "")


#: The publishing steps, in order. A build can be killed between any two of
#: them (the tests do so at each, with SIGKILL); the next build's
#: :func:`recover` then leaves the last good book or the new one published.
PUBLISH_STEPS = ("built", "scanned", "moved", "linked", "switched", "recorded", "cleaned")

#: Test hook: called with each step name of :data:`PUBLISH_STEPS` as it is reached.
_step_hook: Callable[[str], None] | None = None


def _reached(step: str) -> None:
    if _step_hook is not None:
        _step_hook(step)


def _os_cause(exc: OSError) -> str:
    """``No space left on device (ENOSPC) on book/_build/x``: the cause of an OSError."""
    code = errno.errorcode.get(exc.errno or 0, "")
    cause = exc.strerror or str(exc) or type(exc).__name__
    cause += f" ({code})" if code else ""
    return cause + (f" on {exc.filename}" if exc.filename else "")


@contextmanager
def _fs_step(step: str):
    """Turn a filesystem error in ``step`` into a one-line StudyError naming step and cause."""
    try:
        yield
    except OSError as exc:
        raise StudyError(f"{step} failed: {_os_cause(exc)}") from None


def _remove(path: Path) -> None:
    """Delete a file, link or folder; a folder is renamed aside first, so no half is left."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        trash = path.parent / f".trash-{path.name}-{os.getpid()}"
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)


def _point(link: Path, target: str, *, steps: bool = False) -> None:
    """Make ``link`` a symlink to ``target`` (relative) in one atomic rename."""
    tmp = link.with_name(f".{link.name}.next")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    if steps:
        _reached("linked")
    os.replace(tmp, link)
    if steps:
        _reached("switched")


def _current_release(html: Path) -> Path | None:
    """Return the release folder ``html`` points at, if it is a valid link."""
    if html.is_symlink():
        target = (html.parent / os.readlink(html)).resolve()
        if target.is_dir() and target.parent == (html.parent / "releases").resolve():
            return target
    return None


def recover(book_dir: str | Path) -> list[str]:
    """Repair what an interrupted build left; return what was done (for the log).

    Run by every build under its lock, before anything else:

    * ``book/_build/html`` missing or a dangling link (a build killed
      mid-switch, or an older crmstats killed between its two renames): it is
      pointed at the last good book — the release named in
      ``releases/.published``, else ``html.old`` of an older crmstats, else
      the newest release;
    * ``book/_build/html`` a real folder (an older crmstats): moved into
      ``releases/`` and linked, so the next switch is atomic;
    * temporary links, releases that were never switched in, folders being
      deleted and the staging folder are removed;
    * the run record of the published release is marked published (a build
      killed right after its switch).
    """
    book_dir = Path(book_dir)
    build, html = book_dir / "_build", book_dir / "_build" / "html"
    releases = build / "releases"
    done: list[str] = []
    with _fs_step("repairing an interrupted build"):
        staging = book_dir / "_build.staging"
        if staging.exists():
            _remove(staging)
            done.append("removed the staging folder of an interrupted build")
        for leftover in book_dir.glob(".trash-*"):
            _remove(leftover)
        if not build.exists():
            return done
        for leftover in [*build.glob(".html.next"), *build.glob(".trash-*"),
                         *(releases.glob(".trash-*") if releases.exists() else [])]:
            _remove(leftover)
        marker = releases / ".published"
        old = build / "html.old"
        if html.is_dir() and not html.is_symlink():  # layout of an older crmstats
            name = f"legacy-{_dt.datetime.now(_dt.UTC):%Y%m%d%H%M%S}"
            releases.mkdir(exist_ok=True)
            _write_atomic(marker, name)
            os.rename(html, releases / name)
            _point(html, f"releases/{name}")
            done.append("moved the published book into releases/ (atomic switching from now on)")
        elif _current_release(html) is None:
            candidates = []
            named = marker.read_text().strip() if marker.exists() else ""
            if named and (releases / named).is_dir():
                candidates.append(named)
            if old.is_dir():
                name = f"legacy-{_dt.datetime.now(_dt.UTC):%Y%m%d%H%M%S}"
                releases.mkdir(exist_ok=True)
                os.rename(old, releases / name)
                candidates.append(name)
            if releases.exists():
                candidates += sorted((p.name for p in releases.iterdir() if p.is_dir()
                                      and not p.name.startswith(".")),
                                     key=lambda n: (releases / n).stat().st_mtime, reverse=True)
            if candidates:
                _write_atomic(marker, candidates[0])
                _point(html, f"releases/{candidates[0]}")
                done.append(f"restored the last good book ({candidates[0]}) "
                            "after an interrupted switch")
        if old.exists():
            _remove(old)
        current = _current_release(html)
        if current is not None:
            if not marker.exists() or marker.read_text().strip() != current.name:
                _write_atomic(marker, current.name)
            for release in releases.iterdir():
                if release.is_dir() and release != current:
                    _remove(release)
                    done.append(f"removed release {release.name} that was never published")
            _mark_published(book_dir / "runs" / current.name)
    return done


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _mark_published(run_dir: Path) -> None:
    """Set ``published`` in a run record (atomically), if the record exists."""
    record_path = run_dir / "kpis.json"
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return
    if not record.get("published"):
        record["published"] = True
        _write_atomic(record_path, json.dumps(record, indent=2, default=str))


def _publish(new_html: Path, book_dir: Path, name: str) -> None:
    """Switch ``new_html`` in as ``book/_build/html`` with one atomic rename of a link."""
    build = book_dir / "_build"
    html, releases = build / "html", build / "releases"
    with _fs_step("publishing (moving the new book into place)"):
        releases.mkdir(parents=True, exist_ok=True)
        release = releases / name
        os.rename(new_html, release)
        _reached("moved")
    with _fs_step("publishing (switching the link)"):
        _point(html, f"releases/{name}", steps=True)
    with _fs_step("publishing (recording the run)"):
        _write_atomic(releases / ".published", name)
        _mark_published(book_dir / "runs" / name)
        _reached("recorded")
    # the old releases go; a failure here leaves only garbage the next build removes
    for old in releases.iterdir():
        if old.is_dir() and old.name != name:
            try:
                _remove(old)
            except OSError:
                pass
    _reached("cleaned")


def _jupyter_book_command(source: Path, out: Path, strict: bool) -> list[str]:
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(source),
           "--path-output", str(out), "--builder", "html"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    return cmd


#: Run a command so that it dies with the thread that started it (Linux
#: PR_SET_PDEATHSIG), also when the build is killed with SIGKILL.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "parent = int(sys.argv[1])\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)\n"
    "if os.getppid() != parent:\n"
    "    sys.exit(137)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _jupyter_book(source: Path, out: Path, strict: bool) -> None:
    cmd = _jupyter_book_command(source, out, strict)
    if sys.platform.startswith("linux"):
        cmd = [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *cmd]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env, start_new_session=True)
    except OSError as exc:
        raise StudyError(f"building the HTML failed: cannot start jupyter-book "
                         f"({_os_cause(exc)})") from None
    try:
        output, _ = proc.communicate()
    finally:
        if proc.poll() is None:  # interrupted: the builder and its children go with us
            _kill_group(proc)
    if proc.returncode != 0:
        cause = re.findall(r"\[Errno \d+\] ([^:\n]+)", output or "")
        if cause:
            raise StudyError(f"building the HTML failed: {cause[-1].strip()} "
                             f"(jupyter-book exit {proc.returncode})")
        tail = "\n".join((output or "").strip().splitlines()[-25:])
        raise StudyError(f"jupyter-book build failed (exit {proc.returncode}):\n{tail}")


#: Files of the built book that are scanned (text that came from the studies or pages).
_SCANNED = {".html", ".htm", ".ipynb", ".md", ".txt", ".json", ".js", ".svg", ".csv", ".py"}


def scan_book(html_dir: str | Path, *, personal: tuple = (),
              paths: list[str] | None = None) -> list[tuple[str, str, int]]:
    r"""Scan a built book for what must not be published.

    Every HTML page and every published source (``_sources/``, the search
    index) — not the theme's own assets under ``_static/`` — is decoded
    (HTML entities, ``%40``, ``\u0040`` escapes) and searched for e-mail addresses,
    phone numbers, credentials, ``personal`` values and machine ``paths``
    (:func:`crmstats.privacy.scan_text`); every HTML page and SVG image also
    for scripts, frames, event handlers and ``javascript:`` URLs that did not
    come from the theme (:func:`crmstats.privacy.scan_html`), and the search
    index for titles that its search page would run
    (:func:`crmstats.privacy.scan_search_index`).

    Returns
    -------
    list of (page, pattern, line)
        Page relative to ``html_dir``; never the value found.
    """
    from crmstats.privacy import notebook_text, scan_html, scan_search_index, scan_text

    html_dir = Path(html_dir)
    found: list[tuple[str, str, int]] = []
    for page in sorted(html_dir.rglob("*")):
        rel = page.relative_to(html_dir)
        if rel.parts[0] == "_static" or page.suffix.lower() not in _SCANNED or not page.is_file():
            continue
        raw = page.read_text(errors="replace")
        text = notebook_text(raw) if page.suffix == ".ipynb" else raw
        for f in scan_text(text, extra_values=personal, paths=paths):
            found.append((rel.as_posix(), f.pattern, f.line))
        if page.suffix.lower() in (".html", ".htm", ".svg"):  # what a browser would run
            found += [(rel.as_posix(), f.pattern, f.line)
                      for f in scan_html(raw, page=rel.as_posix())]
        elif rel.as_posix() == "searchindex.js":  # the search page shows its titles as HTML
            found += [(rel.as_posix(), f.pattern, f.line) for f in scan_search_index(raw)]
    return found


#: What to do about each kind of finding of the publication scan.
_SCAN_FIXES = {
    "machine path": "a page shows a path of this machine: a study printed a file or folder "
                    "(a parameter, a warning, an error); name the data source by its name "
                    "(`name:` in crmstats.yml) and print file names, not paths "
                    "(crmstats.book.report.reader_text)",
    "email address": "a page shows personal data: publish pseudonymous ids "
                     "(crmstats.privacy.pseudonymous) or counts, and mark the column "
                     "`personal:` in crmstats.yml",
    "credential": "a page shows a credential: give credentials through environment variables "
                  "(e.g. PGPASSWORD), never in data, parameters or prints, and rotate this "
                  "one if it is real",
}
_SCAN_FIXES["phone number"] = _SCAN_FIXES["personal value"] = _SCAN_FIXES["email address"]


def _is_value_finding(pattern: str) -> bool:
    """Whether a finding is a value the redaction replaces (not executable content)."""
    from crmstats.privacy import CREDENTIAL_PATTERNS

    return pattern in _SCAN_FIXES or pattern in {name for name, _ in CREDENTIAL_PATTERNS}


def _scan_fix(pattern: str) -> str:
    if pattern in _SCAN_FIXES:
        return _SCAN_FIXES[pattern]
    from crmstats.privacy import CREDENTIAL_PATTERNS

    if pattern in {name for name, _ in CREDENTIAL_PATTERNS}:
        return _SCAN_FIXES["credential"]
    return ("a page holds content a browser would run that did not come from the theme: a "
            "name from the data or the configuration reached the page unescaped; write it with "
            "crmstats.book.report.md_text (Markdown) or html.escape")


def _scan_excerpt(html_dir: Path, page: str, line: int, personal: tuple,
                  paths: list[str] | None) -> str:
    """Return the finding's line of ``page``, redacted, around the first redaction."""
    from crmstats.privacy import decode, notebook_text, redact

    try:
        raw = (html_dir / page).read_text(errors="replace")
    except OSError:
        return ""
    text = decode(notebook_text(raw) if page.endswith(".ipynb") else raw)
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return ""
    shown = re.sub(r"<[^>]*>", " ", redact(lines[line - 1], extra_values=personal, paths=paths,
                                            mark="[…]"))
    shown = " ".join(shown.split())
    at = shown.find("[…]")
    start = max(0, at - 30) if at >= 0 else 0
    excerpt = shown[start:start + 60]
    return ("…" if start else "") + excerpt + ("…" if start + 60 < len(shown) else "")


def scan_refusal(html_dir: str | Path, findings: list[tuple[str, str, int]], *,
                 personal: tuple = (), paths: list[str] | None = None) -> str:
    """Say why the publication scan refused a book: page, kind, redacted excerpt, fix.

    One line per page and kind of finding (at most 20 pages), with the
    line numbers, an excerpt of the first finding's line with every value
    the scan flags replaced by ``[…]``, and what to do about that kind of
    finding; never the value itself.
    """
    html_dir = Path(html_dir)
    by_page: dict[str, dict[str, list[int]]] = {}
    for page, pattern, line in findings:
        by_page.setdefault(page, {}).setdefault(pattern, []).append(line)
    listed: list[str] = []
    fixes: dict[str, list[str]] = {}
    for page, kinds in list(by_page.items())[:20]:
        for pattern, lines in kinds.items():
            numbers = sorted(set(lines))
            # an excerpt shows where a value was redacted; executable content has none
            excerpt = (_scan_excerpt(html_dir, page, numbers[0], personal, paths)
                       if _is_value_finding(pattern) else "")
            listed.append(f"{page}: {pattern} (line{'s' if len(numbers) > 1 else ''} "
                          f"{', '.join(map(str, numbers[:5]))})"
                          + (f": \"{excerpt}\"" if excerpt else ""))
            kinds_of_fix = fixes.setdefault(_scan_fix(pattern), [])
            if pattern not in kinds_of_fix:
                kinds_of_fix.append(pattern)
    more = f"\n  ... and {len(by_page) - 20} more pages" if len(by_page) > 20 else ""
    how = "\n".join(f"fix ({', '.join(patterns)}): {fix}" for fix, patterns in fixes.items())
    return (f"publication scan: {len(findings)} finding(s) of personal data, credentials, "
            "machine paths or executable content; the book was not published (the last good "
            "book stays):\n  "
            + "\n  ".join(listed) + more + "\n" + how)


_TEXT_ID = re.compile(r"(?=[^\s]*[A-Za-z])(?=[^\s]*\d)[^\s]{5,}")


def _personal_values(studies: list[Study], crms: dict[Any, Any] | None = None) -> tuple:
    """Values of the personal columns of every data source the studies read.

    The columns are those :meth:`crmstats.CRMData.personal_columns` marks
    (the schema's name, e-mail, phone, ... plus a source file's own marks),
    and the text ids of customers, contacts, leads and accounts (``C000123``:
    published lists show pseudonyms, so a raw id on a page is a leak; numeric
    ids are left out, they cannot be told from other numbers). A source or a
    table that cannot be loaded gives none (the studies reading it failed
    already); any other error stops the build rather than scanning without it.
    """
    import crmstats
    from crmstats.privacy import ID_COLUMNS

    values: set[str] = set()
    if crms is None:
        crms = _load_sources(studies, Path.cwd())
    for crm in crms.values():
        if isinstance(crm, CRMStatsError):
            continue
        for name in crm.tables():
            try:
                with warnings.catch_warnings():  # the studies have shown them already
                    warnings.simplefilter("ignore")
                    table = crm.table(name)  # any source kind: frame, file, database
                present = set(table.columns)
                columns = [c for c in crm.personal_columns(name) if c in present]
                ids = [c for c in ID_COLUMNS if c in present]
                if not columns and not ids:
                    continue
                frame = crmstats.execute(table.select(*columns, *ids))
            except CRMStatsError:
                continue
            for column in columns:
                values.update(str(v) for v in frame[column].dropna().unique())
            for column in ids:
                values.update(v for v in frame[column].dropna().astype(str).unique()
                              if _TEXT_ID.fullmatch(v))
    return tuple(sorted(values))


def _source_of(study: Study) -> Any:
    """Return the data source a study reads (its template's default is the demo)."""
    return study.parameters.get("data_source", "demo")


def _load_sources(studies: list[Study], root: Path) -> dict[Any, Any]:
    """Load each study's data source once, as its kernel will read it (from ``root``).

    Returns ``{data_source: CRMData}``, or the CRMStatsError for a source
    that cannot be loaded (its studies run and report it themselves).
    """
    import crmstats
    from crmstats.sources import resolve_source

    crms: dict[Any, Any] = {}
    for study in studies:
        source = _source_of(study)
        if not isinstance(source, str) or not source or source in crms:
            continue
        try:
            crms[source] = crmstats.load_crm(resolve_source(source, root))
        except CRMStatsError as exc:
            crms[source] = exc
    return crms


def _has_column(crm: Any, table: str, column: str) -> bool:
    """Whether ``table`` of ``crm`` has ``column`` once mapped.

    A table that fails validation counts as having it: the study runs and
    reports the real problem.
    """
    with warnings.catch_warnings():  # the studies show them
        warnings.simplefilter("ignore")
        try:
            return column in crm.table(table).columns
        except CRMStatsError:
            return True


def unmet_needs(study: Study, crm: Any, source: Any = None) -> list[tuple[str, ...]]:
    """Return what ``study`` requires that ``crm`` does not hold (empty: the study applies).

    ``source`` is the data source as written (default ``crm.source``): a
    simulated demo source counts as holding experiments
    (:func:`crmstats.attribution.experiment_data` simulates its holdouts).
    """
    from crmstats.book.studies import unmet_requirements

    if not study.requires:
        return []
    tables = set(crm.tables())
    if str(crm.source if source is None else source).strip().partition(":")[0] == "demo":
        tables.add("experiments")
    return unmet_requirements(study.requires, tables,
                              lambda table, column: _has_column(crm, table, column))


def _unavailable(studies: list[Study], crms: dict[Any, Any]) -> dict[str, list[tuple[str, ...]]]:
    """``{slug: unmet requirements}`` of the studies their source cannot serve.

    A study whose source cannot be loaded is not listed: it runs, and fails
    naming the problem.
    """
    out: dict[str, list[tuple[str, ...]]] = {}
    for study in studies:
        crm = crms.get(_source_of(study))
        if crm is None or isinstance(crm, CRMStatsError):
            continue
        unmet = unmet_needs(study, crm, _source_of(study))
        if unmet:
            out[study.slug] = unmet
    return out


def _table_example(table: str) -> str:
    """Return a crmstats.yml entry mapping ``table`` (its required columns), as an example."""
    from crmstats.schema import TABLES

    spec = TABLES.get(table)
    columns = spec.required if spec is not None else ["..."]
    mapping = ", ".join(f"{c}: <your column>" for c in columns)
    return f"  {table}:\n    file: <your {table} file>.csv\n    columns: {{{mapping}}}"


def needs_text(item: tuple[str, ...]) -> str:
    """Describe an unmet requirement for readers: ```deals` or `stage_events```."""
    words = [f"`{o}`" if "." not in o else "column `{1}` of `{0}`".format(*o.split(".", 1))
             for o in item]
    return " or ".join(words)


def _not_available_page(studies: list[Study], unavailable: dict[str, list[tuple[str, ...]]],
                        root: Path | None = None) -> str:
    """Write the one page listing the studies the source cannot serve, and how to add data."""
    from crmstats.book.report import reader_text
    from crmstats.book.studies import source_label

    def text(value: str) -> str:
        return md_text(reader_text(value))

    chosen = [s for s in studies if s.slug in unavailable]
    sources = sorted({source_label(_source_of(s), root) for s in chosen})
    lines = ["# Not available for this source", "",
             f"The data of {text(', '.join(sources))} does not hold what these studies "
             "need, so they were not run. Each runs in the next build once its data is "
             "described in the source's `crmstats.yml`.", ""]
    tables: list[str] = []
    for study in chosen:
        needs = [needs_text(item) for item in unavailable[study.slug]]
        lines.append(f"- **{text(study.title)}** needs {', '.join(needs)}.")
        tables += [item[0].split(".")[0] for item in unavailable[study.slug]]
    example = "\n".join(_table_example(t) for t in dict.fromkeys(tables))
    lines += ["", "To add a table, export it from the CRM next to the others and map it under "
              "`tables:` in `crmstats.yml` (`crmstats source init <folder>` writes a first draft, "
              "`crmstats source check <folder>` shows which studies the source supports); on a "
              "database, name its table with `table:` instead of `file:`. For example:", "",
              "```yaml", "tables:", example, "```", ""]
    return "\n".join(lines)


@contextmanager
def _terminate_on_sigterm():
    """In the main thread, turn SIGTERM into an exception so cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise StudyError("build stopped by SIGTERM; the published book is unchanged")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def build_book(
    book_dir: str | Path = "book",
    *,
    params: dict[str, Any] | None = None,
    only: list[str] | None = None,
    jobs: int | None = None,
    keep_going: bool = False,
    strict: bool = True,
    on_done: Callable[[StudyResult], None] | None = None,
    keep_runs: int = 30,
    params_file: str | None = None,
) -> BuildResult:
    """Run every study of ``book_dir/studies.yml`` that its source can serve; publish the book.

    A study whose data source lacks what it ``requires`` (see
    :mod:`crmstats.book.studies`) is not run: it is listed on one page, "Not
    available for this source", with what it needs and how to add it — this is
    not a failure. A study that applies and fails is one.

    Parameters
    ----------
    book_dir : str or Path
        The book folder (holding ``_config.yml``, ``intro.md``, ``studies.yml``).
    params : dict, optional
        Run-wide parameters (``--params run.yml``) for the studies that declare them.
    only : list of str, optional
        Run only these study slugs; the others keep their last published pages
        (a study never published before is left out of this book).
    jobs : int, optional
        Studies executed in parallel; default the number of cores.
    keep_going : bool
        Run every study even after a failure and publish the book with the
        failed studies marked as failed. Without it, a failure publishes
        nothing.
    strict : bool
        Treat Sphinx warnings as errors.
    on_done : callable, optional
        Progress callback, given each :class:`StudyResult`.
    keep_runs : int
        Run archives kept in ``book/runs`` after this run (the newest ones, and
        always the latest published one); 0 keeps them all.
    params_file : str, optional
        The file ``params`` came from, named in errors about them.

    Returns
    -------
    BuildResult

    Raises
    ------
    StudyError
        When a study fails (without ``keep_going``) or the book build fails,
        naming each failed notebook and cell; the previously published HTML
        stays in place.
    """
    book_dir = Path(book_dir).resolve()
    studies = load_studies(book_dir / "studies.yml", overrides=params, params_file=params_file)
    check_key()  # a short key fails here once; a new key is announced here, not on a page
    chosen = {s.slug for s in studies}
    if only:  # the other studies keep their last published pages
        unknown = set(only) - chosen
        if unknown:
            raise StudyError(f"{book_dir / 'studies.yml'}: no study with slug(s) "
                             f"{sorted(unknown)}")
        chosen = set(only)
    html = book_dir / "_build" / "html"
    result = BuildResult(html=html)
    with _terminate_on_sigterm(), build_lock(book_dir):
        result.recovered = recover(book_dir)
        now = _dt.datetime.now(_dt.UTC)
        started = now.isoformat(timespec="seconds")
        runs_dir = book_dir / "runs"
        run_dir = runs_dir / now.strftime("%Y-%m-%d_%H%M%S")
        while run_dir.exists():  # two runs in one second: keep both
            run_dir = run_dir.with_name(run_dir.name + "x")
        result.run_dir = run_dir
        try:
            return _run_and_publish(book_dir, studies, result, run_dir, params, started,
                                    jobs=jobs, keep_going=keep_going, strict=strict,
                                    on_done=on_done, chosen=chosen)
        finally:
            shutil.rmtree(book_dir / "_build.staging", ignore_errors=True)
            prune_runs(runs_dir, keep_runs)


def _public_record(record: dict[str, Any], personal: tuple, paths: list[str]) -> dict[str, Any]:
    """Return the run record as the summary shows it: errors and parameters without values."""
    from crmstats.privacy import redact

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return redact(value, extra_values=personal, paths=paths)
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    def clean_parameters(params: dict) -> dict:
        # data_source stays as given: the summary compares runs by it and shows only the
        # source's name (kpis._parameter), never the value
        return {k: v if k == "data_source" else clean(v) for k, v in params.items()}

    public = json.loads(json.dumps(record, default=str))
    public["parameters"] = clean_parameters(public.get("parameters") or {})
    for study in public.get("studies", {}).values():
        study["parameters"] = clean_parameters(study.get("parameters") or {})
        if study.get("error"):
            study["error"] = public_error(study["error"], personal, paths)
    return public


def _run_and_publish(book_dir: Path, studies: list[Study], result: BuildResult, run_dir: Path,
                     params, started: str, *, jobs, keep_going, strict, on_done,
                     chosen: set[str]) -> BuildResult:
    """Run the studies, archive the run and (unless a study failed) publish the book."""
    from crmstats.privacy import machine_paths

    root, runs_dir = book_dir.parent, run_dir.parent
    crms = _load_sources(studies, root)
    unavailable = _unavailable(studies, crms)
    result.unavailable = {slug: [list(item) for item in unmet]
                          for slug, unmet in unavailable.items()}
    available = [s for s in studies if s.slug not in unavailable]
    kept = _kept_studies([s for s in available if s.slug not in chosen], runs_dir)
    # --only: a study not chosen keeps its published page, or is left out of this book
    studies = [s for s in studies if s.slug in chosen or s.slug in kept or s.slug in unavailable]
    to_run = [s for s in available if s.slug in chosen]
    result.studies = run_studies(to_run, book_dir / "studies", jobs=jobs, cwd=root,
                                 keep_going=keep_going, on_done=on_done)
    with _fs_step("archiving the run"):
        record = _archive(run_dir, studies, result.studies, params, started, kept,
                          unavailable)
    if not keep_going and (result.failures or len(result.studies) < len(to_run)):
        lines = [str(r.error) for r in result.failures]
        skipped = len(to_run) - len(result.studies)
        if skipped:
            lines.append(f"{skipped} study(ies) not run after the first failure "
                         "(use --keep-going to run them all)")
        raise StudyError("study failed; the book was not published:\n  "
                         + "\n  ".join(lines))
    staging = book_dir / "_build.staging"
    personal = _personal_values(studies, crms)
    paths = machine_paths([root, book_dir, staging])
    source = staging / "src"
    with _fs_step("assembling the book sources"):
        if staging.exists():
            shutil.rmtree(staging)
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
        by_slug = {r.slug: r for r in result.studies}
        for study in studies:
            res = by_slug.get(study.slug)
            published = source / "studies" / f"{study.slug}.ipynb"
            if study.slug in unavailable:
                continue  # listed on the one "not available" page
            name = source_label(_source_of(study), root)
            if study.slug in kept:
                folder, old = kept[study.slug]
                strip_kpi_records(_kept_notebook(kept, study.slug), published,
                                  title=study.title, source_name=name,
                                  banner=_kept_banner(old.get("from_run") or folder.name))
            elif res is not None and res.ok:
                strip_kpi_records(res.output, published, title=study.title, source_name=name)
            else:
                error = str(res.error) if res is not None else "not run"
                (source / "studies" / f"{study.slug}.md").write_text(
                    _failure_page(study, public_error(error, personal, paths), run_dir.name))
        earlier = [data for folder, data in _published(_runs(runs_dir))
                   if folder.name < run_dir.name]
        page = summary_page(_public_record(record, personal, paths), earlier, root=root)
        (source / "summary.md").write_text(page)
        (run_dir / "summary.md").write_text(page)
        # every other Markdown page of the book folder, the intro first
        pages = sorted(p.stem for p in source.glob("*.md") if p.stem != "summary")
        front = sorted(pages, key=lambda name: (name != "intro", name))
        extra = []
        if unavailable:
            (source / "studies" / f"{NOT_AVAILABLE_PAGE}.md").write_text(
                _not_available_page(studies, unavailable, root))
            extra.append(f"studies/{NOT_AVAILABLE_PAGE}")
        write_toc([s for s in studies if s.slug not in unavailable], source / "_toc.yml",
                  root="summary", front_pages=front, extra_pages=extra)
    _jupyter_book(source, staging / "out", strict)
    new_html = staging / "out" / "_build" / "html"
    _reached("built")
    with _fs_step("scanning the book"):
        findings = scan_book(new_html, personal=personal, paths=paths)
    if findings:
        raise StudyError(scan_refusal(new_html, findings, personal=personal, paths=paths))
    _reached("scanned")
    _publish(new_html, book_dir, run_dir.name)
    result.published = True
    return result
