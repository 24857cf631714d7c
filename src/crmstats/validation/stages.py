"""Checks of names and stages: spelling variants, funnel stage order, closed deals."""

from __future__ import annotations

import warnings

import ibis
import ibis.expr.types as ir
import pandas as pd

from crmstats.backend import execute
from crmstats.exceptions import DataWarning
from crmstats.schema import (
    CLOSED_STAGE_NAMES,
    SALES_STAGES,
    TableSpec,
    stage_key,
)
from crmstats.validation.messages import _caller, _count, _user_level

#: Funnel paths whose stages must be entered in this order (first entries).
_STAGE_ORDER = (("subscriber", "lead"), ("lead", "qualified"), ("lead", "unqualified"),
                ("qualified", "opportunity"), ("opportunity", "won"), ("opportunity", "lost"),
                ("lead", "won"))


#: Name columns checked on every call for values differing only in case or spaces (they
#: have few distinct values, so the check is one small GROUP BY each).
_NAME_COLUMNS = ("stage", "channel", "acquisition_channel")


def _check_name_variants(t: ir.Table, spec: TableSpec, mapping,
                         known: dict | None = None) -> dict[str, list]:
    """Warn when names (channels, stages) differ only in case or surrounding spaces.

    ``known`` gives a column's distinct names when a check already fetched
    them; returns the distinct names of every name column looked at.
    """
    schema = t.schema()
    out: dict[str, list] = {}
    for name in _NAME_COLUMNS:
        if name not in schema or not schema[name].is_string():
            continue
        if known is not None and name in known:
            names = pd.Series(known[name], dtype=object).dropna()
        else:
            names = execute(t.select(v=t[name]).distinct().limit(100_000))["v"].dropna()
        out[name] = list(names)
        merged = len(names) - names.astype(str).str.strip().str.lower().nunique()
        if merged:
            warnings.warn(
                f"{spec.name} table, column {_caller(name, mapping)!r}: {merged:,} name(s) "
                "differ from another only in upper/lower case or surrounding spaces and "
                "count separately; map them with values: (and trim: true) in crmstats.yml",
                DataWarning, stacklevel=_user_level())
    return out


def stage_problems(t: ir.Table) -> dict:
    """Count stage names outside the funnel and leads whose stages run backwards.

    Returns
    -------
    dict
        ``unknown`` (the stage names outside :data:`crmstats.schema.SALES_STAGES`,
        most frequent first), ``unknown_counts`` (their rows), ``unknown_rows``
        (total), ``pairs`` (the funnel orders checked) and ``out_of_order``
        (leads whose first entry of a later stage precedes an earlier stage's),
        ``names`` (every stage name present).
    """
    counts = execute(t.group_by(stage=t.stage.cast("string")).aggregate(n=t.count()))
    unknown = counts[~counts["stage"].isin(SALES_STAGES)].sort_values("n", ascending=False)
    out = {"unknown": list(unknown["stage"]), "unknown_counts": list(unknown["n"]),
           "unknown_rows": int(unknown["n"].sum()), "out_of_order": 0, "pairs": [],
           "names": list(counts["stage"].dropna())}
    present = set(counts["stage"])
    pairs = [(a, b) for a, b in _STAGE_ORDER if a in present and b in present]
    if pairs:
        firsts = t.group_by("lead_id").aggregate(**{
            f"t_{s}": t.entered_at.min(where=t.stage == s)
            for s in sorted({x for p in pairs for x in p})})
        bad = ibis.or_(*[firsts[f"t_{b}"] < firsts[f"t_{a}"] for a, b in pairs])
        out["out_of_order"] = _count(execute(firsts.filter(bad).count()))
        out["pairs"] = pairs
    return out


def _check_stages(t: ir.Table, mapping) -> dict:
    """Stage names outside the funnel and leads whose stages run backwards: DataWarnings.

    Names only stage names and counts (no ids or other values), so the text
    may reach a published page. Returns :func:`stage_problems`' counts.
    """
    found = stage_problems(t)
    if found["unknown_rows"]:
        listed = ", ".join(f"{s!r} ({n:,} rows)"
                           for s, n in zip(found["unknown"], found["unknown_counts"], strict=True))
        example = ", ".join(f"{s}: <one of {'/'.join(SALES_STAGES)}>"
                            for s in found["unknown"][:3])
        warnings.warn(
            f"stage_events table, column {_caller('stage', mapping)!r}: "
            f"{found['unknown_rows']:,} row(s) have stage names outside the funnel "
            f"({', '.join(SALES_STAGES)}) and are left out of funnel KPIs: {listed}; map them "
            f"in crmstats.yml, e.g. values: stage: {{{example}}}",
            DataWarning, stacklevel=_user_level())
    if found["out_of_order"]:
        named = ", ".join(f"{b} before {a}" for a, b in found["pairs"])
        warnings.warn(
            f"stage_events table, column {_caller('entered_at', mapping)!r}: "
            f"{found['out_of_order']:,} lead(s) entered a stage before an earlier funnel stage "
            f"({named} checked); their days in stage are unreliable: fix the stage times in "
            "the source", DataWarning, stacklevel=_user_level())
    return found


def _check_deal_stages(t: ir.Table, mapping, names=None) -> None:
    """Warn when a deals export names its won/lost stages otherwise than ``won``/``lost``.

    Without the canonical names no deal counts as closed: every deal would be open.
    ``names``: the distinct stage names, when already fetched.
    """
    if names is None:
        names = execute(t.select(v=t.stage.cast("string")).distinct().limit(10_000))["v"]
    names = [str(n) for n in names if n is not None and not pd.isna(n)]
    present = set(names)
    norm = {n: stage_key(n) for n in names}
    for canonical, spellings in CLOSED_STAGE_NAMES.items():
        if canonical in present:
            continue
        like = sorted(n for n, k in norm.items() if k in spellings)
        if like:
            shown = ", ".join(f"{n}: {canonical}" for n in like[:3])
            warnings.warn(
                f"deals table, column {_caller('stage', mapping)!r}: no deal is at stage "
                f"{canonical!r}, so none counts as {canonical}; map the export's name in "
                f"crmstats.yml, e.g. values: stage: {{{shown}}}", DataWarning,
                stacklevel=_user_level())
