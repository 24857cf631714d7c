"""``crmstats source init``: guess a starting ``crmstats.yml`` for a folder of exports.

Guessing, apart from reading (:mod:`crmstats.sources`): each file is matched to
a canonical table by its name or columns (:func:`_guess_table`), its columns to
canonical columns by name (:func:`_guess_columns`, :data:`_SYNONYMS`), stage
names to canonical stages; dates and numbers get ``dayfirst``/``decimal``
guesses. :func:`init_source_file` is re-exported by :mod:`crmstats.sources`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from crmstats.backend import backend, execute, read_table
from crmstats.crmdata import CRMData
from crmstats.exceptions import DataError
from crmstats.schema import (
    CLOSED_STAGE_NAMES,
    SALES_STAGES,
    TABLES,
    stage_key,
    usual_stage_order,
)
from crmstats.source_folders import _check_folder
from crmstats.validation import dmy_counts

__all__ = ["init_source_file"]

#: Normalised export column names that usually mean a canonical column.
_SYNONYMS = {
    "customer_id": ["customer", "customerid", "customerno", "client", "clientid", "buyer",
                    "cust", "custid", "account", "accountid"],
    "timestamp": ["orderdate", "date", "time", "datetime", "purchasedat", "ordertime",
                  "createdat", "touchedat", "convertedat", "occurredat", "invoicedate"],
    "amount": ["revenue", "total", "price", "sales", "ordervalue", "amounteur", "amountusd",
               "linetotal", "closevalue", "dealvalue", "dealamount", "value"],
    "order_id": ["order", "orderno", "ordernumber", "invoice", "invoiceno", "invoicenumber"],
    "product_category": ["category", "productcategory", "product", "productline", "stockcode",
                         "sku", "productcode", "itemcode"],
    "unit_price": ["unitprice", "priceeach", "priceperunit", "itemprice"],
    "quantity": ["qty", "units", "quantity"],
    "acquired_at": ["acquired", "firstorder", "since", "customersince", "signupdate"],
    "acquisition_channel": ["channel", "source", "acquisitionchannel", "leadsource"],
    "journey_id": ["journey", "journeyid", "visitor", "visitorid", "customer", "contact"],
    "channel": ["channel", "source", "leadsource", "medium", "utmsource"],
    "cost": ["cost", "spend", "amount", "budget"],
    "value": ["value", "revenue", "amount", "conversionvalue"],
    "lead_id": ["lead", "leadid", "contact", "contactid", "prospect"],
    "stage": ["stage", "status", "pipelinestage", "lifecyclestage", "dealstage", "stagename"],
    "entered_at": ["entered", "enteredat", "date", "changedat", "stagedate", "timestamp"],
    "owner": ["owner", "rep", "salesrep", "accountmanager", "salesagent", "agent", "dealowner",
              "opportunityowner", "ownername"],
    "deal_id": ["deal", "dealid", "opportunity", "opportunityid", "oppid", "recordid", "id"],
    "closed_at": ["closedate", "closed", "closedat", "closeddate", "dateclosed"],
    "account": ["account", "accountname", "company", "companyname", "client"],
    "product": ["product", "productname", "item"],
    "date": ["date", "day", "month", "week"],
    "account_id": ["account", "accountid", "customer", "customerid", "client"],
    "month": ["month", "period", "billingmonth"],
    "mrr": ["mrr", "monthlyrevenue", "recurringrevenue", "revenue"],
    "ticket_id": ["ticket", "ticketid", "case", "caseid", "ticketno"],
    "opened_at": ["opened", "openedat", "created", "createdat"],
    "resolved_at": ["resolved", "resolvedat", "closed", "closedat"],
    "category": ["category", "type", "topic"],
    "contact_id": ["contact", "contactid", "id", "person", "lead", "leadid"],
    "created_at": ["created", "createdat", "signup", "signupdate", "date", "createddate",
                   "createdate", "engagedate", "engaged", "opendate"],
    "name": ["name", "fullname", "contactname"],
    "email": ["email", "emailaddress", "mail"],
    "referred_by": ["referredby", "referrer", "referral"],
    "segment": ["segment", "tier"],
}

#: File-name words that point to a canonical table.
_FILE_HINTS = {
    "transactions": ["order", "transaction", "sale", "purchase", "invoice"],
    "customers": ["customer", "client", "account"],
    "touchpoints": ["touch", "session", "visit", "click", "impression"],
    "conversions": ["conversion"],
    "stage_events": ["pipeline", "stage", "funnel", "deal", "lifecycle", "history"],
    "deals": ["deal", "opportunit", "opps", "pipeline"],
    "spend": ["spend", "budget", "cost", "marketing"],
    "subscriptions": ["mrr", "subscription", "contract", "recurring"],
    "tickets": ["ticket", "case", "support", "service"],
    "contacts": ["contact", "lead", "people", "person"],
}

#: Usual export names of the canonical stages (normalised).
_STAGE_GUESSES = {"subscriber": "subscriber", "newsletter": "subscriber", "lead": "lead",
                  "mql": "lead", "marketingqualifiedlead": "lead", "sql": "qualified",
                  "qualified": "qualified", "salesqualifiedlead": "qualified",
                  "disqualified": "unqualified", "unqualified": "unqualified",
                  "opportunity": "opportunity", "deal": "opportunity", "proposal":
                  "opportunity", "closedwon": "won", "won": "won", "customer": "won",
                  "closedlost": "lost", "lost": "lost"}


#: Normalised names (lower case, letters and digits) for matching columns and stages.
_norm = stage_key


def _guess_columns(table: str, columns: list[str]) -> dict[str, str]:
    """Map canonical columns of ``table`` to the export's columns by name."""
    found: dict[str, str] = {}
    used: set[str] = set()
    for c in TABLES[table].columns:
        options = [_norm(c.name), *_SYNONYMS.get(c.name, [])]
        for option in options:
            match = next((col for col in columns if _norm(col) == option and col not in used),
                         None)
            if match is not None:
                found[c.name] = match
                used.add(match)
                break
    return found


def _fit(table: str, columns: list[str]) -> tuple[int, int]:
    """How well the columns fit a table: (every required column found, columns found)."""
    found = _guess_columns(table, columns)
    spec = TABLES[table]
    complete = all(c in found or (c in spec.derived and all(f in found for f in spec.derived[c]))
                   for c in spec.required)
    return int(complete), len(found)


def _guess_table(filename: str, columns: list[str], taken: set[str]) -> str | None:
    """Return the canonical table a file holds: by its name, else by its columns.

    A name may point to several tables (``deals.csv``: a deals export or a stage
    history); the columns decide between them — a file whose columns hold every
    required column of one table and more of its columns wins.
    """
    stem = _norm(Path(filename).stem)
    free = [t for t in CRMData.table_names() if t not in taken]
    named = [t for t in free if any(w in stem for w in _FILE_HINTS.get(t, ()))]
    if named:
        return max(named, key=lambda t: _fit(t, columns))  # max keeps the first on a tie
    fits = {t: _fit(t, columns) for t in free}
    complete = [t for t in free if fits[t][0]]
    return max(complete, key=lambda t: fits[t][1]) if complete else None


def _deal_stage_values(names: list[str]) -> tuple[dict[str, str], str]:
    """``values: stage:`` for a deals export: closed names onto won/lost, open ones in order.

    The open stages are listed (mapped onto themselves) in their usual funnel
    order, because that listing is the funnel order crmstats uses.
    """
    closed = {n: c for n in names for c, spellings in CLOSED_STAGE_NAMES.items()
              if _norm(n) in spellings}
    opened = usual_stage_order(n for n in names if n not in closed)
    values = {**{n: n for n in opened}, **closed}
    missing = [c for c in ("won", "lost") if c not in closed.values()]
    note = (f"open stages listed in funnel order ({', '.join(opened) or 'none'}): check the "
            "order, it is the funnel's")
    if missing:
        note += f"; no stage name recognised as {' or '.join(missing)}: map it"
    return values, note


def _blank_ids(t, table: str, columns: dict[str, str]) -> int:
    """Rows whose required id column is empty (blank or missing) in the exported table."""
    ids = [columns[c.name] for c in TABLES[table].columns
           if c.kind == "id" and c.required and c.name in columns]
    if not ids:
        return 0
    schema = t.schema()
    blank = [t[c].isnull() | ((t[c].strip() == "") if schema[c].is_string() else False)
             for c in ids]
    cond = blank[0]
    for b in blank[1:]:
        cond = cond | b
    return int(execute(t.count(where=cond)))


def init_source_file(folder: str | os.PathLike, *, name: str | None = None) -> str:
    """Return a starting ``crmstats.yml`` for the CSV/Parquet files of ``folder``.

    Each file is matched to a canonical table (by its name, else by its
    columns), its columns to canonical columns by name, and its stage and
    channel names to canonical ones where the name says so; dates written
    like 02/03/2024 and numbers like 1.234,50 get ``dayfirst``/``decimal``
    guesses. Everything guessed is marked for review in comments; the
    distinct stage and channel names are listed so each can be mapped.
    """
    import yaml

    base = Path(folder)
    if not base.is_dir():
        raise DataError(f"source init: {str(base)!r} is not a folder")
    _check_folder(base.resolve(), "source init", str(base))
    files = sorted(p for p in base.iterdir() if p.is_file() and p.name.lower().endswith(
        (".csv", ".csv.gz", ".tsv", ".txt", ".parquet", ".pq")))
    # a link out of the folder is never opened (its first line could be /etc/shadow's)
    outside = [p for p in files if not p.resolve().is_relative_to(base.resolve())]
    files = [p for p in files if p not in outside]
    if not files:
        raise DataError(f"source init: {str(base)!r} holds no .csv or .parquet file"
                        + (" (links to files outside it are not read)" if outside else ""))
    tables: dict[str, dict] = {}
    notes: list[str] = [f"{p.name}: a link to a file outside the folder, not read"
                        for p in outside]
    taken: set[str] = set()
    unclear: list[tuple[dict, str]] = []
    for path in files:
        if path.name.lower().endswith(".parquet") or path.name.lower().endswith(".pq"):
            t = read_table(str(path), table=path.name)
        else:  # as text: dates and numbers are judged by how they are written
            t = backend().read_csv(str(path), all_varchar=True)
        table = _guess_table(path.name, list(t.columns), taken)
        if table is None:
            notes.append(f"{path.name}: no canonical table recognised (columns: "
                         f"{', '.join(t.columns)})")
            continue
        taken.add(table)
        columns = _guess_columns(table, list(t.columns))
        entry: dict[str, Any] = {"file": path.name, "columns": columns}
        spec = TABLES[table]
        missing = [c for c in spec.required if c not in columns and not (
            c in spec.derived and all(f in columns for f in spec.derived[c]))]
        derived = [c for c in spec.derived if c not in columns and c not in missing]
        for c in derived:
            notes.append(f"{table}.{c} ({path.name}): no column; computed as "
                         f"{' x '.join(columns[f] for f in spec.derived[c])}: check it")
        if missing:
            notes.append(f"{table} ({path.name}): map {', '.join(missing)} by hand "
                         f"(columns: {', '.join(t.columns)})")
        schema = t.schema()
        for canonical, col in columns.items():
            kind = TABLES[table].column(canonical).kind
            if kind == "timestamp" and schema[col].is_string():
                sample = execute(t.select(v=t[col]).filter(t[col].notnull()).limit(2000))["v"]
                counts = dmy_counts(sample)
                if counts["n"]:
                    first, second = counts["first"] > 0, counts["second"] > 0
                    if first != second:
                        entry["dayfirst"] = first
                    else:
                        unclear.append((entry, f"{table}.{canonical} ({col})"))
            if kind in ("money", "float") and schema[col].is_string():
                sample = execute(t.select(v=t[col]).filter(t[col].notnull()).limit(2000))["v"]
                if sample.astype(str).str.match(r"^\s*-?[\d.]*\d,\d+\s*$").any():
                    entry["decimal"], entry["thousands"] = ",", "."
        blank = _blank_ids(t, table, columns)
        if blank:
            entry["drop_blank_ids"] = True
            ids = [c.name for c in spec.columns if c.kind == "id" and c.required]
            notes.append(f"{table} ({path.name}): {blank:,} row(s) have no {'/'.join(ids)} "
                         "and are dropped (drop_blank_ids): check it")
        values = {}
        for canonical in ("stage", "channel", "acquisition_channel"):
            col = columns.get(canonical)
            if col is None:
                continue
            names = execute(t.select(v=t[col].cast("string")).distinct().limit(200))["v"]
            names = sorted(str(v) for v in names.dropna())
            if canonical == "stage" and table == "deals":
                guessed, note = _deal_stage_values(names)
                notes.append(f"deals.stage ({path.name}): {note}")
                unmapped = []
            elif canonical == "stage":
                guessed = {n: _STAGE_GUESSES[_norm(n)] for n in names if _norm(n) in
                           _STAGE_GUESSES and n != _STAGE_GUESSES[_norm(n)]}
                unmapped = [n for n in names if _norm(n) not in _STAGE_GUESSES]
            else:
                guessed = {n: n.strip().lower().replace(" ", "_") for n in names
                           if n != n.strip().lower().replace(" ", "_")}
                unmapped = []
            if guessed:
                values[canonical] = guessed
            if unmapped:
                notes.append(f"{table}.{canonical}: map {', '.join(map(repr, unmapped))} to "
                             f"one of {', '.join(SALES_STAGES)}")
        if values:
            entry["values"] = values
        personal = [col for col in t.columns if _norm(col) in
                    ("name", "fullname", "firstname", "lastname", "email", "emailaddress",
                     "phone", "phonenumber", "mobile", "address", "street")]
        if personal:
            entry["personal"] = personal
        tables[table] = entry
    orders = {e["dayfirst"] for e in tables.values() if "dayfirst" in e}
    for entry, where in unclear:
        if len(orders) == 1 and "dayfirst" not in entry:
            entry["dayfirst"] = orders.pop()
            orders.add(entry["dayfirst"])
            notes.append(f"{where}: every day and month is at most 12; dayfirst set like the "
                         "other files: check it")
        elif "dayfirst" not in entry:
            notes.append(f"{where}: day/month order not clear from the data: set dayfirst "
                         "or timestamp_format")
    if not tables:
        raise DataError("source init: no file matched a canonical table; "
                        + "; ".join(notes))
    spec = {"name": name or base.resolve().name, "location": ".", "tables": tables}
    header = ["# crmstats source file written by `crmstats source init`: review every guess,",
              "# then run `crmstats source check` on this file. Keys: see README 'Source files'."]
    header += [f"# TODO {n}" for n in notes]
    return "\n".join(header) + "\n" + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
