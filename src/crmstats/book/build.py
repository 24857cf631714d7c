"""Build the Jupyter Book aside, then swap it into place.

``build_book`` runs every study (papermill is the only executor; Jupyter Book
runs with execution off), assembles the book's sources and the executed
notebooks in a staging folder with a table of contents generated from
``studies.yml``, builds the HTML there, and only when everything succeeded
swaps it into ``book/_build/html``: the old HTML is renamed aside, the new one
renamed into place, then the old one deleted. A failing study or build leaves
the previously published HTML untouched. A lock file keeps two builds of the
same book from running at once.

Every run is archived under ``book/runs/<stamp>/`` (the newest 30 are kept, and
always the latest published one; see ``keep_runs``): the executed notebooks and
``kpis.json``, the KPI records each study made with
:func:`crmstats.book.record_kpis`, with the run's parameters and each study's
status. The book opens with a summary page written from those records,
showing the change against the previous published run.

With ``keep_going``, a failed study does not stop the others, and the book is
published with the failed study marked as failed (a page naming notebook, cell
and error, and a warning on the summary); :attr:`BuildResult.failures` lists
them, and the command line exits non-zero.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
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

from crmstats.book.kpis import read_kpis, strip_kpi_records, summary_page
from crmstats.book.runner import StudyResult, run_studies
from crmstats.book.studies import Study, load_studies
from crmstats.exceptions import StudyError

__all__ = ["BuildResult", "build_book", "build_lock", "prune_runs", "write_toc"]

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
    """

    html: Path
    studies: list[StudyResult] = field(default_factory=list)
    published: bool = False
    run_dir: Path | None = None

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
            entry = (data.get("studies") or {}).get(study.slug)
            if (entry and entry.get("status") in ("ok", "kept")
                    and entry.get("parameters") == study.parameters
                    and (folder / "notebooks" / f"{study.slug}.ipynb").exists()):
                kept[study.slug] = (folder, entry)
                break
    return kept


def _run_date(stamp: str) -> str:
    """``2026-12-01_061500`` as ``2026-12-01 06:15 UTC``."""
    day, _, time = stamp.partition("_")
    return f"{day} {time[:2]}:{time[2:4]} UTC" if len(time) >= 4 else stamp


def _kept_banner(stamp: str) -> str:
    return (f"**Not rerun in this build:** these are the results of run **{stamp}** "
            f"({_run_date(stamp)}), the last published run of this study.")


def _archive(run_dir: Path, studies: list[Study], results: list[StudyResult],
             params: dict[str, Any] | None, started: str,
             kept: dict[str, tuple[Path, dict]] | None = None) -> dict[str, Any]:
    """Copy the executed notebooks into ``run_dir`` and write its ``kpis.json``."""
    kept = kept or {}
    (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    by_slug = {r.slug: r for r in results}
    record: dict[str, Any] = {"run": run_dir.name, "started": started,
                              "parameters": dict(params or {}), "published": False,
                              "studies": {}}
    for study in studies:
        res = by_slug.get(study.slug)
        entry: dict[str, Any] = {"title": study.title, "parameters": study.parameters,
                                 "template": study.template.name, "kpis": {}}
        if study.slug in kept:
            folder, old = kept[study.slug]
            entry.update(status="kept", error=None, kpis=old.get("kpis") or {},
                         from_run=old.get("from_run") or folder.name)
            shutil.copy2(folder / "notebooks" / f"{study.slug}.ipynb",
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
    return (f"# {study.title}\n\n:::{{error}}\nThis study **failed** in run {run}; its "
            f"previous results are not shown because they would not match this run's data.\n\n"
            f"```text\n{error}\n```\n:::\n")


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
    keep_runs: int = 30,
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
    studies = load_studies(book_dir / "studies.yml", overrides=params)
    if only:
        # checks the slugs; the other studies keep their last published pages
        chosen = {s.slug for s in load_studies(book_dir / "studies.yml", overrides=params,
                                               only=only, check_parameters=False)}
    else:
        chosen = {s.slug for s in studies}
    html = book_dir / "_build" / "html"
    result = BuildResult(html=html)
    with build_lock(book_dir):
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
            prune_runs(runs_dir, keep_runs)


def _run_and_publish(book_dir: Path, studies: list[Study], result: BuildResult, run_dir: Path,
                     params, started: str, *, jobs, keep_going, strict, on_done,
                     chosen: set[str]) -> BuildResult:
    """Run the studies, archive the run and (unless a study failed) publish the book."""
    root, html, runs_dir = book_dir.parent, result.html, run_dir.parent
    kept = _kept_studies([s for s in studies if s.slug not in chosen], runs_dir)
    # a study outside --only with no published page to keep is run too
    to_run = [s for s in studies if s.slug not in kept]
    result.studies = run_studies(to_run, book_dir / "studies", jobs=jobs, cwd=root,
                                 keep_going=keep_going, on_done=on_done)
    record = _archive(run_dir, studies, result.studies, params, started, kept)
    if not keep_going and (result.failures or len(result.studies) < len(to_run)):
        lines = [str(r.error) for r in result.failures]
        skipped = len(to_run) - len(result.studies)
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
    by_slug = {r.slug: r for r in result.studies}
    for study in studies:
        res = by_slug.get(study.slug)
        if study.slug in kept:
            folder, _ = kept[study.slug]
            strip_kpi_records(folder / "notebooks" / f"{study.slug}.ipynb",
                              source / "studies" / f"{study.slug}.ipynb", title=study.title,
                              banner=_kept_banner(kept[study.slug][1].get("from_run")
                                                  or folder.name))
        elif res is not None and res.ok:
            strip_kpi_records(res.output, source / "studies" / res.output.name,
                              title=study.title)
        else:
            error = str(res.error) if res is not None else "not run"
            (source / "studies" / f"{study.slug}.md").write_text(
                _failure_page(study, error, run_dir.name))
    earlier = [data for folder, data in _published(_runs(runs_dir)) if folder.name < run_dir.name]
    page = summary_page(record, earlier)
    (source / "summary.md").write_text(page)
    (run_dir / "summary.md").write_text(page)
    # every other Markdown page of the book folder, the intro first
    pages = sorted(p.stem for p in source.glob("*.md") if p.stem != "summary")
    front = sorted(pages, key=lambda name: (name != "intro", name))
    write_toc(studies, source / "_toc.yml", root="summary", front_pages=front)
    _jupyter_book(source, staging / "out", strict)
    _swap(staging / "out" / "_build" / "html", html)
    shutil.rmtree(staging, ignore_errors=True)
    record["published"] = True
    (run_dir / "kpis.json").write_text(json.dumps(record, indent=2, default=str))
    result.published = True
    return result
