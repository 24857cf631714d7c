"""A build asked to stop (SIGTERM): the request, and the checks that honour it.

``crmstats book build`` turns SIGTERM into :class:`Terminated`, an exception
no error handler takes (like Ctrl-C's ``KeyboardInterrupt``), and records the
request in :data:`STOP`. The exception does not always reach the top: a
DuckDB query it interrupts raises DuckDB's own error instead, and the places
that tolerate a failing data source (a source the kernel server cannot make
is left to its studies) would take that for a source's error. So the request
stays recorded, those places check it (:func:`raise_if_stopped`), and the
build turns whatever ends it after a request into the one-line "build stopped
by SIGTERM" error (:func:`crmstats.book.build.build_book`).
"""

from __future__ import annotations

import threading

__all__ = ["STOP", "Terminated", "raise_if_stopped"]

#: Set when the build was asked to stop (cleared when the build has ended).
STOP = threading.Event()


class Terminated(BaseException):
    """The build was asked to stop (SIGTERM); caught by no error handler, like Ctrl-C."""


def raise_if_stopped() -> None:
    """Raise :class:`Terminated` when the build was asked to stop.

    Called where errors are tolerated and at the steps of a build, so a stop
    request whose exception was swallowed or replaced on the way is still
    honoured at the next step.
    """
    if STOP.is_set():
        raise Terminated
