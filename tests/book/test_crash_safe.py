"""Publishing survives a kill at every step, a full disk and a concurrent build.

Builds here use the fake papermill and jupyter-book of :mod:`tests.book.fakebook`
(a real child process renders the pages), so each takes well under a second
in process. Kills are real SIGKILLs: of a forked build at each publishing step,
and of a separate ``python`` build process (twice at a step, once while its
jupyter-book child runs).
"""

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crmstats import StudyError
from crmstats.book import build, build_book, publish
from crmstats.book.build import PUBLISH_STEPS, build_lock, recover
from tests.book.fakebook import install, make_repo, published_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def book(tmp_path, monkeypatch):
    """A fake book, published once (its pages say 'first build')."""
    book = make_repo(tmp_path / "repo")
    install(monkeypatch.setattr, tmp_path / "fake_jb.py")
    monkeypatch.setattr(publish, "_step_hook", None)
    result = build_book(book, params={"note": "first build"}, jobs=1)
    assert result.published and "first build" in published_text(book)
    return book


def assert_consistent(book: Path, live: str) -> None:
    """One complete book is published (the one saying ``live``), nothing half-done left."""
    html = book / "_build" / "html"
    assert html.is_symlink() and (html / "index.html").exists()
    text = published_text(book)
    assert live in text
    assert {"first build", "second build", "third build"} - {live} & set(
        re.findall(r"(?:first|second|third) build", text)) == set()
    assert (html / "summary.html").exists() and (html / "studies" / "s1.html").exists()


def assert_clean(book: Path) -> None:
    build_dir = book / "_build"
    assert not (book / "_build.staging").exists()
    assert not list(build_dir.glob(".html.next")) and not list(build_dir.glob(".trash-*"))
    releases = [p.name for p in (build_dir / "releases").iterdir() if p.is_dir()]
    assert releases == [os.readlink(build_dir / "html").split("/")[-1]]
    assert (build_dir / "releases" / ".published").read_text() == releases[0]


def build_killed_at(book: Path, step: str) -> int:
    """Fork; the child builds and SIGKILLs itself at ``step``; return its exit signal."""
    pid = os.fork()
    if pid == 0:  # child: no pytest cleanup, no finally blocks after the kill
        try:
            publish._step_hook = (lambda s: os.kill(os.getpid(), signal.SIGKILL)
                                if s == step else None)
            build_book(book, params={"note": "second build"}, jobs=1)
        finally:
            os._exit(3)  # reached only if the kill did not happen
    deadline = time.time() + 120
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked build did not reach {step}")


@pytest.mark.parametrize("step", PUBLISH_STEPS)
def test_a_build_killed_at_any_publishing_step_leaves_one_good_book(book, step):
    assert build_killed_at(book, step) == signal.SIGKILL
    switched = PUBLISH_STEPS.index(step) >= PUBLISH_STEPS.index("switched")
    # right after the kill: the old book, or (once the link was flipped) the new one
    assert_consistent(book, "second build" if switched else "first build")
    # the next build repairs what was left, then publishes normally
    result = build_book(book, params={"note": "third build"}, jobs=1)
    assert result.published
    assert result.recovered, "the staging folder of the killed build at least"
    assert_consistent(book, "third build")
    assert_clean(book)
    records = [json.loads(p.read_text()) for p in sorted((book / "runs").glob("*/kpis.json"))]
    assert [r["published"] for r in records] == [True, switched, True]


def test_recover_alone_restores_after_a_kill_before_the_switch(book):
    assert build_killed_at(book, "linked") == signal.SIGKILL
    assert (book / "_build.staging").exists()  # SIGKILL: no cleanup ran
    done = recover(book)
    assert any("staging" in d for d in done) and any("never published" in d for d in done)
    assert_consistent(book, "first build")
    assert_clean(book)


def test_a_missing_or_dangling_link_is_restored_before_a_failing_build(book):
    html = book / "_build" / "html"
    html.unlink()  # e.g. a kill in a tool that replaced the link non-atomically
    with pytest.raises(StudyError, match="study failed"):
        build_book(book, params={"note": "FAIL"}, jobs=1)
    assert_consistent(book, "first build")
    os.replace(book / "_build" / "html", book / "_build" / "gone")
    os.symlink("releases/nowhere", html)  # dangling
    recover(book)
    assert_consistent(book, "first build")


def test_the_older_two_rename_swap_killed_halfway_is_restored(tmp_path, monkeypatch):
    """The issue's case: html renamed to html.old, killed before the new one moved in."""
    book = make_repo(tmp_path / "repo")
    install(monkeypatch.setattr, tmp_path / "fake_jb.py")
    old = book / "_build" / "html.old"
    old.mkdir(parents=True)
    (old / "index.html").write_text("<p>old good book</p>")
    (book / "_build.staging" / "out").mkdir(parents=True)
    with pytest.raises(StudyError, match="study failed"):  # a later *failing* build
        build_book(book, params={"note": "FAIL"}, jobs=1)
    html = book / "_build" / "html"
    assert (html / "index.html").read_text() == "<p>old good book</p>"
    assert not old.exists() and not (book / "_build.staging").exists()


def test_a_published_folder_of_an_older_crmstats_becomes_a_release(tmp_path, monkeypatch):
    book = make_repo(tmp_path / "repo")
    install(monkeypatch.setattr, tmp_path / "fake_jb.py")
    legacy = book / "_build" / "html"
    legacy.mkdir(parents=True)
    (legacy / "index.html").write_text("<p>legacy</p>")
    with pytest.raises(StudyError):
        build_book(book, params={"note": "FAIL"}, jobs=1)
    assert legacy.is_symlink() and (legacy / "index.html").read_text() == "<p>legacy</p>"
    build_book(book, params={"note": "first build"}, jobs=1)
    assert_consistent(book, "first build")
    assert_clean(book)


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "book/x")


FS_FAULTS = [
    ("lock", "os", "open", "taking the build lock"),
    ("archive", "shutil", "copy2", "archiving the run"),
    ("sources", "build", "strip_kpi_records", "assembling the book sources"),
    ("summary", "build", "summary_page", "assembling the book sources"),
    ("scan", "build", "scan_book", "scanning the book"),
    ("move", "os", "rename", "publishing (moving the new book into place)"),
    ("link", "os", "symlink", "publishing (switching the link)"),
    ("record", "build", "_write_atomic", "publishing (recording the run)"),
]


@pytest.mark.parametrize(("case", "module", "name", "step"), FS_FAULTS,
                         ids=[f[0] for f in FS_FAULTS])
def test_a_full_disk_at_each_step_is_one_line_naming_step_and_cause(book, monkeypatch,
                                                                     case, module, name, step):
    before = published_text(book)
    target = {"os": os, "shutil": shutil, "build": build}[module]
    if case == "lock":
        real_open = os.open
        monkeypatch.setattr(os, "open", lambda p, *a, **k: _enospc()
                            if str(p).endswith(".build.lock") else real_open(p, *a, **k))
    elif case == "record":  # the switch is done; recording fails afterwards
        monkeypatch.setattr(build, "_publish", _publish_failing_after_switch)
    else:
        monkeypatch.setattr(target, name, _enospc)
    with pytest.raises(StudyError) as err:
        build_book(book, params={"note": "second build"}, jobs=1)
    message = str(err.value)
    assert message == f"{step} failed: No space left on device (ENOSPC) on book/x", message
    monkeypatch.undo()
    install(monkeypatch.setattr, book.parent.parent / "fake_jb.py")
    assert not (book / "_build.staging").exists()
    if case != "record":
        assert published_text(book) == before  # the last good book stays
    result = build_book(book, params={"note": "third build"}, jobs=1)
    assert result.published
    assert_consistent(book, "third build")
    assert_clean(book)


def _publish_failing_after_switch(new_html, book_dir, name):
    real = publish._write_atomic  # _publish (crmstats.book.publish) looks it up there

    def failing(path, text):
        if path.name == ".published":
            _enospc()
        real(path, text)

    publish._write_atomic = failing
    try:
        build.__dict__["_publish_real"](new_html, book_dir, name)
    finally:
        publish._write_atomic = real


build.__dict__.setdefault("_publish_real", build._publish)


@pytest.mark.parametrize(("code", "name"), [(errno.EACCES, "Permission denied (EACCES)"),
                                             (errno.EROFS, "Read-only file system (EROFS)"),
                                             (errno.EDQUOT, "Disk quota exceeded (EDQUOT)")])
def test_permission_and_quota_errors_are_one_line_too(book, monkeypatch, code, name):
    before = published_text(book)

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code), "book/_build/.html.next")

    monkeypatch.setattr(os, "symlink", refuse)
    with pytest.raises(StudyError) as err:
        build_book(book, params={"note": "second build"}, jobs=1)
    assert str(err.value) == (f"publishing (switching the link) failed: {name} "
                              "on book/_build/.html.next")
    assert published_text(book) == before and not (book / "_build.staging").exists()


def test_jupyter_book_failing_on_a_full_disk_names_the_cause(book, monkeypatch):
    before = published_text(book)
    monkeypatch.setenv("FAKE_JB_FAIL", "1")
    with pytest.raises(StudyError) as err:
        build_book(book, params={"note": "second build"}, jobs=1)
    assert str(err.value) == ("building the HTML failed: No space left on device "
                              "(jupyter-book exit 2)")
    assert published_text(book) == before and not (book / "_build.staging").exists()


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True)
    if not shutil.which("mount") or os.geteuid() != 0:
        return False
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)
    return proc.returncode == 0


@pytest.mark.parametrize("free_kb", [0, 12, 40])
def test_a_really_full_disk_gives_a_one_line_error_and_keeps_the_book(tmp_path, monkeypatch,
                                                                      free_kb):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "2m"):
        pytest.skip("cannot mount a small tmpfs here (needs root and mount)")
    try:
        book = make_repo(disk / "repo")
        install(monkeypatch.setattr, tmp_path / "fake_jb.py")
        build_book(book, params={"note": "first build"}, jobs=1)
        before = published_text(book)
        fill = disk / "fill"
        fd = os.open(fill, os.O_WRONLY | os.O_CREAT)  # fill the disk, then free ``free_kb``
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        os.truncate(fill, max(0, fill.stat().st_size - free_kb * 1024))
        with pytest.raises(StudyError) as err:
            build_book(book, params={"note": "second build"}, jobs=1)
        message = str(err.value)
        print(f"free {free_kb} KB: {message}")
        assert len(message.splitlines()) == 1, message
        assert re.fullmatch(r"[a-z][A-Za-z ()]+ failed: No space left on device( \(ENOSPC\).*|"
                            r" \(jupyter-book exit \d+\))", message), message
        assert published_text(book) == before
        assert not (book / "_build.staging").exists()
        fill.unlink()
        assert build_book(book, params={"note": "third build"}, jobs=1).published
        assert_consistent(book, "third build")
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_refused_build_keeps_the_holders_pid(tmp_path):
    with build_lock(tmp_path):
        lock = tmp_path / ".build.lock"
        assert lock.read_text().strip() == str(os.getpid())
        for _ in range(2):
            with pytest.raises(StudyError, match=rf"another build .* \(pid {os.getpid()}\)"):
                with build_lock(tmp_path):
                    pass
        assert lock.read_text().strip() == str(os.getpid())


def _spawn_build(book: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.Popen([sys.executable, "-m", "tests.book.fakebook", str(book), *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def test_concurrent_build_and_real_sigkill_take_jupyter_book_down_too(book, tmp_path):
    pidfile = tmp_path / "jb.pid"
    proc = _spawn_build(book, "--jb-sleep", "120", "--jb-pidfile", str(pidfile), "--note",
                        "second build")
    try:
        deadline = time.time() + 120
        while not pidfile.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert pidfile.exists(), proc.communicate()[1][-2000:]
        jb_pid = int(pidfile.read_text())
        # a second, concurrent build is refused, and the holder's pid stays in the lock
        with pytest.raises(StudyError, match=rf"another build .*\(pid {proc.pid}\)"):
            build_book(book, params={"note": "third build"}, jobs=1)
        assert (book / ".build.lock").read_text().strip() == str(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        deadline = time.time() + 30
        while _alive(jb_pid) and time.time() < deadline:
            time.sleep(0.1)
        assert not _alive(jb_pid), "jupyter-book outlived the killed build"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_consistent(book, "first build")
    assert (book / "_build.staging").exists()  # SIGKILL: nothing cleaned up ...
    result = build_book(book, params={"note": "third build"}, jobs=1)  # ... until the next build
    assert result.published and any("staging" in d for d in result.recovered)
    assert_consistent(book, "third build")
    assert_clean(book)


@pytest.mark.parametrize("step", ["moved", "switched"])
def test_real_sigkill_of_a_build_process_mid_switch(book, step):
    proc = _spawn_build(book, "--kill-at", step, "--note", "second build")
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert_consistent(book, "second build" if step == "switched" else "first build")
    assert build_book(book, params={"note": "third build"}, jobs=1).published
    assert_consistent(book, "third build")
    assert_clean(book)


def test_sigterm_cleans_up_and_kills_jupyter_book(book, tmp_path):
    pidfile = tmp_path / "jb.pid"
    proc = _spawn_build(book, "--jb-sleep", "120", "--jb-pidfile", str(pidfile))
    try:
        deadline = time.time() + 120
        while not pidfile.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert pidfile.exists(), proc.communicate()[1][-2000:]
        jb_pid = int(pidfile.read_text())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "build stopped by SIGTERM" in err.decode()
    assert not _alive(jb_pid)
    assert not (book / "_build.staging").exists()
    assert_consistent(book, "first build")
