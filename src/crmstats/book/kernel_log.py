"""What a study kernel writes to the build's console: not the interrupt of its normal shutdown.

Jupyter ends a kernel by first interrupting it (``SIGINT``; a warm kernel's
launcher forwards it, :mod:`crmstats.book._warm_launch`) and then asking it to
shut down. An interrupt that arrives while the kernel handles a message between
cells makes ipykernel log ``[IPKernelApp] ERROR | KeyboardInterrupt caught in
kernel.`` to the build's console: on a loaded machine the forwarded signal comes
late, and half the builds printed it one to three times (load 4-7), an ERROR for
nothing having gone wrong. An interrupt during a cell is still the cell's error in
the notebook (and the study's failure); only this log line is left out.
"""

from __future__ import annotations

import logging

__all__ = ["SHUTDOWN_INTERRUPT", "quiet_shutdown_interrupt"]

#: What ipykernel logs when an interrupt arrives between cells (``kernelbase``).
SHUTDOWN_INTERRUPT = "KeyboardInterrupt caught in kernel"


class _NotTheShutdownInterrupt(logging.Filter):
    """Drop ipykernel's record of an interrupt caught between cells."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(SHUTDOWN_INTERRUPT)


def quiet_shutdown_interrupt(logger: str = "IPKernelApp") -> None:
    """Leave ipykernel's "KeyboardInterrupt caught in kernel" out of the kernel's log.

    Call in the kernel's process before the kernel application starts (its
    logger is ``IPKernelApp``; the filter stays when the application sets up
    its logging).
    """
    target = logging.getLogger(logger)
    if not any(isinstance(f, _NotTheShutdownInterrupt) for f in target.filters):
        target.addFilter(_NotTheShutdownInterrupt())
