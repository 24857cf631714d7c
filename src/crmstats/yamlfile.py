"""The one reader of crmstats' YAML files: bounded, plain data, no aliases.

Every YAML file crmstats reads — a source file (``crmstats.yml``), the book's
``studies.yml`` and a run's parameters file (``run.yml``) — goes through
:func:`read_yaml`. These files come from users and from whoever can write to a
shared folder, so they are untrusted text. The reader refuses, at once and with
one line naming the file (and the line where it can):

* a file larger than :data:`MAX_BYTES` (1 MB: a large source file is a few
  kilobytes; a mapping of ten thousand stage or channel names fits easily);
* anything that is not a regular file (a folder, a FIFO, a device);
* a document that expands to more than :data:`MAX_VALUES` values (250,000),
  YAML aliases (``*name``) counted as the whole value they repeat: an alias lets
  a few lines expand into billions of values (the "billion laughs" bomb), while
  an alias or two (as ``yaml.safe_dump`` writes for a repeated mapping) stay
  welcome; an alias inside its own anchor (a value containing itself) is refused;
* nesting deeper than :data:`MAX_DEPTH` levels, aliases expanded;
* tags outside plain YAML (``!!python/object`` ...): safe loading builds
  nothing but strings, numbers, booleans, nulls, lists and mappings;
* text that is not UTF-8.

The checks run on the parser's event stream before any Python object is built,
so a hostile file costs no more than reading 1 MB.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from crmstats.exceptions import CRMStatsError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_VALUES", "read_yaml", "yaml_problem"]

#: Largest YAML file crmstats reads (bytes).
MAX_BYTES = 1_000_000
#: Deepest nesting of lists and mappings in a YAML file (aliases expanded).
MAX_DEPTH = 32
#: Most values (scalars, lists and mappings) a YAML file may expand to, aliases expanded.
MAX_VALUES = 250_000

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 50x faster


def yaml_problem(exc: Exception) -> str:
    """Describe a YAML error in one line (a tag safe loading refuses, a syntax error)."""
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}" if mark is not None else str(problem)


def _read_bounded(path: Path, what: str, error: type[CRMStatsError], max_bytes: int) -> str:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{what} {path}: no such file") from None
    except OSError as exc:
        raise error(f"{what} {path}: cannot read it ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{what} {path}: a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{what} {path}: not a regular file")
    if info.st_size > max_bytes:
        raise error(f"{what} {path}: {info.st_size:,} bytes, more than the {max_bytes:,} a "
                    "crmstats YAML file may have")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(max_bytes + 1)  # the file may have grown since stat
    except OSError as exc:
        raise error(f"{what} {path}: cannot read it ({exc.strerror})") from None
    if len(raw) > max_bytes:
        raise error(f"{what} {path}: more than the {max_bytes:,} bytes a crmstats YAML "
                    "file may have")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path}: not UTF-8 text (byte {exc.start})") from None


def _check_events(text: str, path: Path, what: str, error: type[CRMStatsError]) -> None:
    """Bound what the document expands to, from the event stream, before anything is built.

    Each open list or mapping counts the values it holds, an alias counting as
    the whole value it repeats; the count and the depth (aliases expanded) are
    checked as they grow, so a bomb is refused at the alias that crosses a limit.
    """
    stack: list[list] = []  # per open collection: [values, height, anchor]
    done: dict[str, tuple[int, int]] = {}  # anchor -> (values, height) of a finished node

    def line(event) -> str:
        return str(event.start_mark.line + 1) if event.start_mark is not None else "?"

    def add(values: int, height: int, event) -> None:
        if not stack:
            return
        top = stack[-1]
        top[0] += values
        top[1] = max(top[1], height + 1)
        if top[0] > MAX_VALUES:
            raise error(f"{what} {path}: expands to more than {MAX_VALUES:,} values (line "
                        f"{line(event)}{', through YAML aliases' if done else ''}); a crmstats "
                        "file is far smaller")
        if len(stack) + height > MAX_DEPTH:
            raise error(f"{what} {path}: nested more than {MAX_DEPTH} levels deep "
                        f"(line {line(event)})")

    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append([1, 0, event.anchor])
            if len(stack) > MAX_DEPTH:
                raise error(f"{what} {path}: nested more than {MAX_DEPTH} levels deep "
                            f"(line {line(event)})")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            values, height, anchor = stack.pop()
            if anchor is not None:
                done[anchor] = (values, height)
            add(values, height, event)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                done[event.anchor] = (1, 0)
            add(1, 0, event)
        elif isinstance(event, yaml.AliasEvent):
            if any(entry[2] == event.anchor for entry in stack):
                raise error(f"{what} {path}: the YAML alias *{_short(event.anchor)} (line "
                            f"{line(event)}) repeats a value inside itself")
            if event.anchor in done:  # an unknown alias is the loader's error
                add(*done[event.anchor], event)


def _short(text: Any) -> str:
    text = str(text)
    return text if len(text) <= 30 else text[:30] + "…"


def read_yaml(path: str | os.PathLike, *, what: str = "YAML file",
              error: type[CRMStatsError] = CRMStatsError,
              max_bytes: int = MAX_BYTES) -> Any:
    """Read a crmstats YAML file as plain data, within the limits of this module.

    Parameters
    ----------
    path : str or path-like
        The file.
    what : str
        What the file is, for messages (``"source file"``, ``"parameters file"``).
    error : type
        The :class:`~crmstats.CRMStatsError` subclass to raise.
    max_bytes : int
        Size limit (default :data:`MAX_BYTES`).

    Returns
    -------
    Any
        The document: ``None`` for an empty file, else plain data (str, int,
        float, bool, None, date, lists and dicts of them).

    Raises
    ------
    CRMStatsError
        Of type ``error``, one line naming the file: missing, unreadable, too
        large, not UTF-8, not valid YAML, expanding too far, too deep, a tag.
    """
    path = Path(path)
    text = _read_bounded(path, what, error, max_bytes)
    try:
        _check_events(text, path, what, error)
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise error(f"{what} {path}: not valid YAML ({yaml_problem(exc)})") from None
    except RecursionError:
        raise error(f"{what} {path}: nested too deeply") from None
