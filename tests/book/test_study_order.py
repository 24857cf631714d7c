"""The order studies start in: the longest first (the last run's times), unknown ones before."""

from __future__ import annotations

import json
from pathlib import Path

from crmstats.book.archive import last_seconds
from crmstats.book.runner import longest_first
from crmstats.book.studies import Study


def _studies(*slugs: str) -> list[Study]:
    return [Study(slug, slug, Path("t.ipynb"), {}) for slug in slugs]


def test_longest_first_with_unknown_times_first_in_their_order():
    studies = _studies("a", "b", "c", "d", "e")
    order = longest_first(studies, {"a": 2.0, "b": 9.5, "d": 2.0})
    assert [s.slug for s in order] == ["c", "e", "b", "a", "d"]
    assert [s.slug for s in longest_first(studies, None)] == ["a", "b", "c", "d", "e"]
    assert [s.slug for s in studies] == ["a", "b", "c", "d", "e"]  # the caller's list as it was


def _run(runs: Path, stamp: str, studies: dict) -> None:
    (runs / stamp).mkdir(parents=True)
    (runs / stamp / "kpis.json").write_text(json.dumps({"run": stamp, "studies": studies}))


def test_last_seconds_takes_each_study_from_its_newest_finished_run(tmp_path):
    runs = tmp_path / "runs"
    _run(runs, "2026-12-01_100000", {"a": {"status": "ok", "seconds": 3.0},
                                     "b": {"status": "ok", "seconds": 7.5}})
    _run(runs, "2026-12-02_100000", {"a": {"status": "ok", "seconds": 4.0},
                                     "b": {"status": "failed", "seconds": 0.4},
                                     "c": {"status": "kept"}, "d": "garbage"})
    (runs / "2026-12-03_100000").mkdir()  # a run that died before its record
    assert last_seconds(runs) == {"a": 4.0, "b": 7.5}
    assert last_seconds(tmp_path / "none") == {}
