"""Plot helpers shared by the domain subpackages' ``plotting`` modules."""

from __future__ import annotations

import matplotlib.pyplot as plt

from crmstats.formatting import fmt_money, get_currency
from crmstats.page_tables import require_columns  # noqa: F401 re-exported for plot functions

__all__ = ["get_ax", "legend_with_twin", "log_axis", "money_axis", "percent_axis",
           "require_columns"]


def get_ax(ax: plt.Axes | None = None, figsize=(8, 4)) -> plt.Axes:
    """Return ``ax`` or the axes of a new figure of ``figsize``."""
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def legend_with_twin(ax: plt.Axes, twin: plt.Axes, **kwargs) -> None:
    """One legend on ``ax`` for the artists of ``ax`` and of its twin axes."""
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    kwargs.setdefault("fontsize", 8)
    ax.legend(handles, [h.get_label() for h in handles], **kwargs)


def percent_axis(ax: plt.Axes, which: str = "y") -> None:
    """Format an axis' ticks as whole percentages."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    axis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))


def log_axis(ax: plt.Axes, which: str = "x", suffix: str = "") -> None:
    """Put an axis on a log scale with plain tick labels (``0.5``, ``2``, ``10x``).

    Matplotlib's own log labels are math text (``10^{-2}``), which the book's
    figures do not render (names from data are drawn as typed). Ticks at 1, 2
    and 5 times a power of ten are labelled.
    """
    import matplotlib.ticker as mticker

    axis = ax.yaxis if which == "y" else ax.xaxis
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}{suffix}"))
    axis.set_minor_formatter(mticker.FuncFormatter(
        lambda v, _: f"{v:g}{suffix}" if f"{v:g}"[0] in "25" else ""))


def money_axis(ax: plt.Axes, which: str = "y", label: str | None = None) -> None:
    """Format an axis' ticks as money in the study's currency and name the currency.

    The currency is the one a study set (:func:`crmstats.formatting.set_currency`);
    without one the ticks get thousands separators only. ``label`` becomes
    ``"label ($)"``.
    """
    axis = ax.yaxis if which == "y" else ax.xaxis
    currency = get_currency()

    def tick(value, _):
        whole = abs(value) >= 10 or value == round(value)
        return fmt_money(value, currency, decimals=0 if whole else 2)

    axis.set_major_formatter(plt.FuncFormatter(tick))
    if label is not None:
        axis.set_label_text(f"{label} ({currency})" if currency else label)
