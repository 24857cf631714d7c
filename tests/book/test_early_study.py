"""A study on a lean kernel starts while the build still makes its sources (crmstats.book.early)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from crmstats.book.early import early_candidate
from crmstats.book.studies import Study
from crmstats.book.warm import OFF_ENV
from tests.conftest import ROOT, SMALL_DEMO, make_study_template

LEAN = (("experiments",),)


def _study(slug, requires=(), source="demo"):
    return Study(slug, slug, None, {"data_source": source}, requires=requires)


def test_the_early_study_is_the_longest_lean_one():
    plain, a, b = _study("plain"), _study("a", LEAN), _study("b", (("spend@weekly",),))
    assert early_candidate([plain, a, b]).slug == "a"  # no times: the first lean one
    assert early_candidate([plain, a, b], {"plain": 50, "a": 2, "b": 9}).slug == "b"
    assert early_candidate([plain, a, b], {"b": 9}).slug == "a"  # not every time known
    assert early_candidate([plain]) is None
    # a study that makes its own data only on a demo source is lean
    assert early_candidate([_study("c", LEAN, source="data/crm")]) is None


#: Script lines: the build's sources take as long as the early study needs to start (it
#: writes ``marker``); ``seen["started_before_sources"]`` says whether it did.
SLOW_PRELOAD = """
preload, seen = crmstats.sources.preload_sources, {}

def slow_preload(sources):
    end = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < end:
        time.sleep(0.05)
    seen["started_before_sources"] = marker.exists()
    return preload(sources)

crmstats.sources.preload_sources = slow_preload
"""


BUILD = """
import json, os, sys, time
from pathlib import Path
import crmstats.sources
from crmstats.book.early import EarlyStudy
from crmstats.book.publish import build_lock
from crmstats.book.runner import run_studies
from crmstats.book.studies import Study
from crmstats.book.warm import warm_kernels

tmp, template, source = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
marker = tmp / "early-started"
""" + SLOW_PRELOAD + """
lean = Study("lean", "lean", template, {"data_source": source, "marker": str(marker)},
             requires=(("experiments",),))
plain = Study("plain", "plain", template, {"data_source": source, "marker": ""})
early = []
with build_lock(tmp / "book"), warm_kernels(tmp, [source], fork=True,
                                            on_lean=lambda: early.append(
                                                EarlyStudy(lean, tmp / "out", tmp))) as kernel:
    results = run_studies([lean, plain], tmp / "out", jobs=1, cwd=tmp, kernel_name=kernel,
                          early=early[0])
print(json.dumps({"ok": [r.ok for r in results], "slugs": [r.slug for r in results],
                  "errors": [str(r.error) for r in results], "me": os.getpid(), **seen}))
"""

CELLS = (
    "import os, time\n"
    "from pathlib import Path\n"
    "start = time.time()\n"
    "if marker:\n"
    "    Path(marker).write_text('x')\n"
    "from crmstats.sources import _PRELOADED\n"
    "server = os.getppid()\n"
    "print('grandparent', open(f'/proc/{server}/stat').read().rsplit(')', 1)[1].split()[1])\n"
    "print('preloaded', len(_PRELOADED))\n"
    "time.sleep(1)\n"
    "print('start', start)\n"
    "print('end', time.time())",
)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_lean_study_runs_while_the_sources_are_made(tmp_path, monkeypatch):
    monkeypatch.delenv(OFF_ENV, raising=False)
    template = make_study_template(tmp_path / "t.ipynb", *CELLS,
                                   parameters="marker: str = ''  # a file to write at start")
    proc = subprocess.run([sys.executable, "-c", BUILD, str(tmp_path), str(template),
                           SMALL_DEMO], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    done = json.loads(proc.stdout.strip().splitlines()[-1])
    assert done["ok"] == [True, True], done["errors"]
    assert done["slugs"] == ["lean", "plain"]
    assert done["started_before_sources"]  # the early study ran before the sources were made

    def lines(slug):
        nb = json.loads((tmp_path / "out" / f"{slug}.ipynb").read_text())
        text = "".join("".join(o.get("text", "")) for c in nb["cells"]
                       if c["cell_type"] == "code" for o in c.get("outputs", []))
        return dict(line.split(" ", 1) for line in text.splitlines())

    lean, plain = lines("lean"), lines("plain")
    assert lean["preloaded"] == "0" and plain["preloaded"] == "1"  # lean kernel vs server's
    assert lean["grandparent"] == plain["grandparent"] == str(done["me"])
    assert float(plain["start"]) >= float(lean["end"])  # jobs=1: the early study held the slot


class _Early:
    """Stands in for an EarlyStudy: records how run_studies treats it."""

    def __init__(self, slug, result=None):
        self.slug, self._result, self.calls = slug, result, []

    def result(self):
        self.calls.append("result")
        return self._result

    def cancel(self):
        self.calls.append("cancel")


def test_run_studies_collects_the_early_study(tmp_path):
    from crmstats.book.runner import StudyResult, run_studies

    done = StudyResult("lean", tmp_path / "lean.ipynb", 1.5)
    early, seen = _Early("lean", done), []
    results = run_studies([_study("lean", LEAN)], tmp_path, jobs=1, kernel_name="python3",
                          early=early, on_done=seen.append)
    assert results == [done] and seen == [done] and early.calls == ["result"]


def test_run_studies_cancels_an_early_study_it_does_not_run(tmp_path):
    """The source turned out not to serve it: its process is ended, its result not used."""
    from crmstats.book.runner import run_studies

    early = _Early("lean")
    assert run_studies([], tmp_path, jobs=2, kernel_name="python3", early=early) == []
    assert early.calls == ["cancel"]


CANCEL = """
import json, sys, time
from pathlib import Path
from crmstats.book.early import EarlyStudy
from crmstats.book.studies import Study
from crmstats.book.warm import warm_kernels

tmp, template, source = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
marker = tmp / "early-started"
lean = Study("lean", "lean", template, {"data_source": source, "marker": str(marker)},
             requires=(("experiments",),))
early = []
with warm_kernels(tmp, [source], fork=True,
                  on_lean=lambda: early.append(EarlyStudy(lean, tmp / "out", tmp))):
    end = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < end:
        time.sleep(0.05)
    start = time.monotonic()
    early[0].cancel()
    took = time.monotonic() - start
    result = early[0].result()
print(json.dumps({"took": took, "error": str(result.error), "started": marker.exists()}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks")
def test_an_early_study_can_be_cancelled(tmp_path, monkeypatch):
    monkeypatch.delenv(OFF_ENV, raising=False)
    template = make_study_template(tmp_path / "t.ipynb", CELLS[0].replace("time.sleep(1)",
                                                                         "time.sleep(300)"),
                                   parameters="marker: str = ''  # a file to write at start")
    proc = subprocess.run([sys.executable, "-c", CANCEL, str(tmp_path), str(template),
                           SMALL_DEMO], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    done = json.loads(proc.stdout.strip().splitlines()[-1])
    assert done["started"] and done["took"] < 30  # not the study's 300 s
    assert "without a result" in done["error"]


BOOK = """
import json, sys, time
from pathlib import Path
import yaml
import crmstats.sources
from crmstats.book import build
from tests.book.fakebook import make_repo, JB_SCRIPT

tmp, source = Path(sys.argv[1]), sys.argv[2]
book = make_repo(tmp / "repo")
marker = book.parent / "early-started"  # the kernels run in the repository
nb = book.parent / "notebooks" / "t.ipynb"
touch = "__import__('pathlib').Path(note).write_text('x') if note else None\\\\n"
nb.write_text(nb.read_text().replace("print(note or", touch + "print(note or"))
spec = {"studies": [
    {"slug": "plain", "title": "Plain", "template": "notebooks/t.ipynb",
     "parameters": {"data_source": source}},
    {"slug": "lean", "title": "Lean", "template": "notebooks/t.ipynb",
     "parameters": {"data_source": source, "note": marker.name}, "requires": ["experiments"]}]}
(book / "studies.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
(tmp / "jb.py").write_text(JB_SCRIPT)
build._jupyter_book_command = lambda s, o, strict: [sys.executable, str(tmp / "jb.py"),
                                                   str(s), str(o)]
""" + SLOW_PRELOAD + """
result = build.build_book(book, jobs=1, fork_server=True)
print(json.dumps({"published": result.published, "ok": {r.slug: r.ok for r in result.studies},
                  **seen}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks")
def test_the_command_line_build_starts_its_lean_study_early(tmp_path, monkeypatch):
    monkeypatch.delenv(OFF_ENV, raising=False)
    proc = subprocess.run([sys.executable, "-c", BOOK, str(tmp_path), SMALL_DEMO],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = json.loads(proc.stdout.strip().splitlines()[-1])
    assert done["published"] and done["ok"] == {"plain": True, "lean": True}
    assert done["started_before_sources"]


def test_studies_start_in_order_and_the_early_study_holds_a_kernel(tmp_path, monkeypatch):
    """Studies start in the longest-first order as kernels free up; while the early study
    runs, one kernel fewer is free (no study waits behind a later one)."""
    import threading
    import time

    from crmstats.book import runner
    from crmstats.book.runner import StudyResult, run_studies

    lock, started, now, most = threading.Lock(), [], [0], [0]

    def fake_run(template, output, parameters=None, **kwargs):
        with lock:
            started.append(output.stem)
            now[0] += 1
            most[0] = max(most[0], now[0])
        time.sleep(0.05)
        with lock:
            now[0] -= 1
        return output

    class Slow(_Early):
        def result(self):
            time.sleep(0.6)
            return StudyResult("lean", tmp_path / "lean.ipynb", 0.6)

    monkeypatch.setattr(runner, "run_study", fake_run)
    studies = [_study(f"s{i}") for i in range(8)] + [_study("lean", LEAN)]
    expected = {f"s{i}": 10 - i for i in range(8)} | {"lean": 20}
    results = run_studies(studies, tmp_path, jobs=2, kernel_name="python3", early=Slow("lean"),
                          expected=expected)
    assert started == [f"s{i}" for i in range(8)]  # longest first, none overtaken
    assert most[0] == 1  # the early study held the other kernel throughout
    assert [r.slug for r in results] == [s.slug for s in studies]


STOPPED = """
import sys, time
from pathlib import Path
import crmstats.sources
from crmstats.book import build
from tests.book.fakebook import make_repo, JB_SCRIPT

tmp, source, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
book = make_repo(tmp / "repo")
(tmp / "jb.py").write_text(JB_SCRIPT)
build._jupyter_book_command = lambda s, o, strict: [sys.executable, str(tmp / "jb.py"),
                                                   str(s), str(o)]
preload = crmstats.sources.preload_sources

def slow_preload(sources):  # the test sends SIGTERM while the sources are made
    (tmp / "making-sources").write_text("x")
    if mode == "duckdb":  # a long query: DuckDB reports the interruption as its own error
        import duckdb
        duckdb.connect().sql("select count(*) from range(100000000000) t, range(10) u").fetchall()
    try:
        end = time.monotonic() + 90
        while time.monotonic() < end:
            time.sleep(0.05)
    except BaseException:
        if mode == "swallowed":  # a converter makes it a source's error (tolerated)
            from crmstats.exceptions import DataError
            raise DataError("could not make the source") from None
        raise
    return preload(sources)

crmstats.sources.preload_sources = slow_preload
(book / "studies.yml").write_text("studies:\\n- {slug: s1, title: S1, template: "
                                  "notebooks/t.ipynb, parameters: {data_source: '%s'}}\\n" % source)
try:  # as the command line does: a crmstats error is one line, anything else a traceback
    build.build_book(book, jobs=1, fork_server=True)
except crmstats.CRMStatsError as exc:
    sys.exit(f"crmstats: error: {exc}")
print("built")
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks")
@pytest.mark.parametrize("mode", ["python", "duckdb", "swallowed"])
def test_sigterm_while_the_sources_are_made_stops_the_build(tmp_path, monkeypatch, mode):
    """The server's preparation leaves a source that fails to its studies (it catches
    crmstats errors); the SIGTERM the build turned into one was caught there too, and the
    build ran on to publish. In a DuckDB query it became DuckDB's error and a traceback."""
    import os
    import signal
    import time

    monkeypatch.delenv(OFF_ENV, raising=False)
    proc = subprocess.Popen([sys.executable, "-c", STOPPED, str(tmp_path), SMALL_DEMO, mode],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "making-sources").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "making-sources").exists(), proc.communicate()[1][-2000:]
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=80)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert b"build stopped by SIGTERM" in err, err.decode()[-2000:]
    assert b"Traceback" not in err, err.decode()[-2000:]
    assert proc.returncode != 0 and b"built" not in out
    assert took < 60  # not after the slowed sources (90 s) and a whole build
    time.sleep(1)
    group = subprocess.run(["ps", "-o", "stat=,cmd=", "-g", str(proc.pid)],
                           capture_output=True, text=True).stdout.splitlines()
    left = [line for line in group if not line.lstrip().startswith("Z")]  # exited, not reaped
    assert not left, left  # the servers it forked are gone too


def test_an_interrupted_run_drops_only_what_its_abandoned_threads_log(caplog):
    """After an interrupted run's one-line error, papermill's clients in the threads left
    running logged 'Kernel died while waiting for execute reply.' on the console."""
    import logging
    import threading

    from crmstats.book.runner import _quiet_abandoned

    log = logging.getLogger("papermill")
    before = list(log.filters)
    go, done = threading.Event(), threading.Event()

    def study():
        go.wait(10)
        log.error("from the abandoned study")
        done.set()

    worker = threading.Thread(target=study)
    worker.start()
    try:
        with caplog.at_level(logging.ERROR, logger="papermill"):
            _quiet_abandoned({worker})
            go.set()
            done.wait(10)
            worker.join(10)
            log.error("from the build")
            later = threading.Thread(target=lambda: log.error("from a later run"))
            later.start()
            later.join(10)
        messages = [r.getMessage() for r in caplog.records]
        assert messages == ["from the build", "from a later run"]
    finally:
        log.filters[:] = before
