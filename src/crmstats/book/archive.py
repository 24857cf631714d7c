"""The archive of runs, ``book/runs/<stamp>/``: executed notebooks, ``kpis.json``, pruning."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from crmstats.book.kpis import (
    NOT_AVAILABLE,
    read_kpis,
)
from crmstats.book.runner import StudyResult
from crmstats.book.studies import Study


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


def last_seconds(runs_dir: Path, limit: int = 5) -> dict[str, float]:
    """Each study's wall seconds in the newest of the last ``limit`` runs that ran it to the end.

    The runner starts the longest studies first (:func:`crmstats.book.runner.run_studies`).
    """
    seconds: dict[str, float] = {}
    for folder in _runs(runs_dir)[:limit]:
        try:
            data = json.loads((folder / "kpis.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        for slug, entry in (data.get("studies") or {}).items():
            if slug in seconds or not isinstance(entry, dict) or entry.get("status") != "ok":
                continue
            value = entry.get("seconds")
            if isinstance(value, int | float) and value >= 0:
                seconds[slug] = float(value)
    return seconds


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
