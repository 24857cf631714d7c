"""Untrusted text made safe for the book: a value shown as plain text in Markdown or HTML.

:func:`md_text`, :func:`md_code` and :func:`html_text` turn a value from the
data or a configuration (a channel, a stage, a source's name) into Markdown or
HTML that shows it as plain text, so a name such as ``<script>alert(1)</script>``
is shown, never run. Re-exported by :mod:`crmstats.book.report`.
"""

from __future__ import annotations

import html
import re
from typing import Any

#: Characters that open Markdown/MyST syntax anywhere in a line: escapes, code and
#: roles (`` ` ``, ``{role}``), emphasis, links and images, raw HTML and autolinks,
#: entities, dollar math, table cells, strike-through and a heading's closing ``#``s.
_MD_INLINE = re.compile(r"([\\`*_\[\]{}<>&$|~#])")
#: What makes a block of a line's start: headings, quotes, lists, rules, fences,
#: targets ``(x)=``, comments ``%``, field lists ``:x:`` and definitions ``: x``.
_MD_LEADING = re.compile(r"^([#>+\-=:%.!\"'(^/@;,?)])")
#: What the linkify extension would turn into a link: ``www.x.com``, ``x.io``, ``a@b.com``,
#: ``http://`` (an escaped dot, at sign or colon breaks the match; the text reads the same).
_MD_LINKIFY = re.compile(r"(?<=\w)([.@])(?=[A-Za-z])|(?<=\w)(:)(?=//)")
_MD_ORDERED = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")
_SPACES = re.compile(r"[\s\x00-\x1f\x7f\u2028\u2029]+")


def _one_line(value: Any) -> str:
    return _SPACES.sub(" ", "" if value is None else str(value)).strip()


def md_text(value: Any) -> str:
    r"""Return Markdown (MyST) that shows ``value`` as literal text on one line.

    Every name that comes from the data or a configuration is written into a
    page through this function (or :func:`html_text`): raw HTML (``<script>``,
    ``<img onerror=...>``), links (``[x](javascript:...)``), images, MyST roles
    and substitutions (``{raw}`...```, ``{{x}}``), ``$math$``, emphasis and
    table bars are backslash-escaped, and so are the dots, at signs and colons
    of what would be made a link (``www.x.com``, ``a@b.com``), so they read as
    the characters typed; line
    breaks and control characters become spaces, so a value cannot start a new
    block (a fence, a directive, a heading); a leading character that would
    open a block where the value starts a line (``#``, ``-``, ``1.``, ``:::``,
    ``%``) is escaped too.

    Examples
    --------
    >>> print(md_text("<script>alert(1)</script>"))
    \<script\>alert(1)\</script\>
    >>> print(md_text("# Paid_search [x](javascript:y)"))
    \# Paid\_search \[x\](javascript:y)
    """
    text = _MD_INLINE.sub(r"\\\1", _one_line(value))
    text = _MD_LINKIFY.sub(lambda m: "\\" + (m.group(1) or m.group(2)), text)
    text = _MD_ORDERED.sub(r"\1\\\2", text)
    return _MD_LEADING.sub(r"\\\1", text)


def md_code(value: Any) -> str:
    """Return a Markdown code span showing ``value`` literally (on one line).

    The span's fence is longer than any run of backticks in the value, so the
    value cannot close it; table bars are escaped (GitHub-style tables split
    cells at ``|`` even inside code).
    """
    text = _one_line(value).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def html_text(value: Any) -> str:
    """Return HTML that shows ``value`` as text (``&``, ``<``, ``>`` and quotes escaped)."""
    return html.escape("" if value is None else str(value), quote=True)
