"""Publishing the built book crash-safely: the build lock, the atomic switch, :func:`recover`.

The published book ``book/_build/html`` is a symbolic link to
``book/_build/releases/<run>``; :func:`_publish` moves a new book into
``releases/`` and replaces the link by renaming a temporary one (one atomic
step). :func:`recover` repairs what a killed build may have left. Every
filesystem error is a one-line :class:`~crmstats.StudyError` naming the step
(:data:`PUBLISH_STEPS`, :func:`_fs_step`); tests stop a build at a step through
:data:`_step_hook`.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import re
import shutil
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from crmstats.exceptions import StudyError


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
        _HELD.add(fd)
        yield
    finally:
        _HELD.discard(fd)
        os.close(fd)


#: Descriptors of the build locks this process holds: a kernel server forked from the build
#: closes them (:mod:`crmstats.book.warm`), so only the build holds its lock.
_HELD: set[int] = set()


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
