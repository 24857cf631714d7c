"""A messy company export of a data source, with the source file that maps it back.

:func:`write_messy_export` writes what a real CRM export looks like — its own
column names, day-first dates, comma decimals, its own stage and channel names
(with case and space variants), a few exactly repeated rows, rows with a blank
id — together with the ``crmstats.yml`` that maps every table back onto the
canonical one. Read through the source file, the export gives exactly the KPIs
of the source it was made from; it is how ``data/acme/`` is built
(``crmstats data messy demo:seed=5,n_contacts=2500,holdout_share=0.1 data/acme``) and what the
data-layer tests use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from crmstats.sources import load_crm

__all__ = ["CHANNEL_NAMES", "STAGE_NAMES", "write_messy_export"]

#: The export's names of the canonical stages.
STAGE_NAMES = {"subscriber": "Subscriber", "lead": "MQL", "qualified": "SQL",
               "unqualified": "Disqualified", "opportunity": "Opportunity",
               "lost": "Closed Lost", "won": "Closed Won"}

#: The export's names of the canonical channels: the first is the usual one, the
#: others are variants some rows carry (another tool's name, other case, spaces).
CHANNEL_NAMES = {
    "paid_search": ["Paid Search", "Google Ads", "paid search "],
    "organic_search": ["Organic Search", "SEO"],
    "email": ["Email", "E-mail", "EMAIL "],
    "social": ["Social", "Facebook"],
    "display": ["Display", "Banner"],
    "affiliate": ["Affiliate", "Partners"],
    "referral": ["Referral", "Word of mouth"],
    "events": ["Events", "Trade show"],
}

_DATE = "%d/%m/%Y %H:%M:%S"


def _channels(values: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Export names of canonical channels: mostly the usual name, 15 % a variant."""
    out = values.astype(object).copy()
    for canonical, names in CHANNEL_NAMES.items():
        hit = (values == canonical).to_numpy()
        n = int(hit.sum())
        if not n:
            continue
        pick = np.where(rng.random(n) < 0.85, 0, rng.integers(1, len(names), n))
        out[hit] = np.asarray(names, dtype=object)[pick]
    return out


def _channel_values() -> dict[str, str]:
    mapping = {}
    for canonical, names in CHANNEL_NAMES.items():
        for name in names:
            mapping[name.strip()] = canonical
    return mapping


def _dates(values: pd.Series, fmt: str = _DATE) -> pd.Series:
    return pd.to_datetime(values).dt.strftime(fmt).astype(object).where(values.notna(), "")


def _money(values: pd.Series) -> pd.Series:
    """European numbers: '1.234,5' (dot thousands, comma decimals), every digit kept."""
    def fmt(v: float) -> str:
        whole, _, frac = np.format_float_positional(abs(float(v)), trim="-").partition(".")
        whole = f"{int(whole):,}".replace(",", ".")
        return ("-" if v < 0 else "") + whole + ("," + frac if frac else "")
    return values.map(fmt)


def _spaces(values: pd.Series, rng: np.random.Generator, share: float = 0.05) -> pd.Series:
    """Append a trailing space to some ids (an export with padded fields)."""
    out = values.astype(object).copy()
    hit = rng.random(len(out)) < share
    out[hit] = out[hit].map(lambda v: f"{v} ")
    return out


def write_messy_export(folder: str | os.PathLike,
                       source: Any = "demo:seed=5,n_contacts=2500,holdout_share=0.1",
                       *, name: str = "ACME CRM export", seed: int = 11) -> Path:
    """Write a messy export of ``source`` to ``folder`` with its ``crmstats.yml``.

    Parameters
    ----------
    folder : path
        Where the export goes (created).
    source : data source
        What to export (anything :func:`crmstats.load_crm` accepts with every
        table as a DataFrame, e.g. the demo).
    name : str
        The source file's ``name``.
    seed : int
        Seed of the messiness (which rows get variants, spaces, duplicates).

    Returns
    -------
    pathlib.Path
        The source file written.
    """
    crm = load_crm(source)
    rng = np.random.default_rng(seed)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tables: dict[str, dict] = {}
    csv = {"sep": ";", "index": False}

    tx = crm.transactions
    orders = pd.DataFrame({
        "Customer ID": _spaces(tx["customer_id"], rng),
        "Order Date": _dates(tx["timestamp"]),
        "Revenue": _money(tx["amount"]),
        "Order No": tx["order_id"], "Category": tx["product_category"],
        "Qty": tx["quantity"],
    })
    blank = orders.sample(3, random_state=seed).assign(**{"Customer ID": "",
                                                          "Order No": ["X1", "X2", "X3"]})
    orders = pd.concat([orders, orders.sample(6, random_state=seed + 1), blank],
                       ignore_index=True)  # a double export of six rows, three without buyer
    orders.to_csv(out / "orders.csv", **csv)
    tables["transactions"] = {
        "file": "orders.csv",
        "columns": {"customer_id": "Customer ID", "timestamp": "Order Date",
                    "amount": "Revenue", "order_id": "Order No",
                    "product_category": "Category", "quantity": "Qty"},
        "dayfirst": True, "decimal": ",", "thousands": ".",
        "drop_duplicates": True, "drop_blank_ids": True}

    cu = crm.customers
    customers = cu.rename(columns={"customer_id": "Customer", "acquired_at": "Acquired",
                                   "acquisition_channel": "Channel", "segment": "Segment"})
    customers["Acquired"] = _dates(cu["acquired_at"])
    customers["Channel"] = _channels(cu["acquisition_channel"], rng)
    customers.to_csv(out / "customers.csv", **csv)
    tables["customers"] = {
        "file": "customers.csv",
        "columns": {"customer_id": "Customer", "acquired_at": "Acquired",
                    "acquisition_channel": "Channel", "segment": "Segment"},
        "dayfirst": True, "values": {"acquisition_channel": _channel_values()}}

    tp = crm.touchpoints
    pd.DataFrame({"Journey": tp["journey_id"], "Touched At": _dates(tp["timestamp"]),
                  "Channel": _channels(tp["channel"], rng), "Cost": _money(tp["cost"])}
                 ).to_csv(out / "touchpoints.csv", **csv)
    tables["touchpoints"] = {
        "file": "touchpoints.csv",
        "columns": {"journey_id": "Journey", "timestamp": "Touched At", "channel": "Channel",
                    "cost": "Cost"},
        "dayfirst": True, "decimal": ",", "thousands": ".",
        "values": {"channel": _channel_values()}}

    cv = crm.conversions
    pd.DataFrame({"Journey": cv["journey_id"], "Converted At": _dates(cv["timestamp"]),
                  "Value": _money(cv["value"])}).to_csv(out / "conversions.csv", **csv)
    tables["conversions"] = {
        "file": "conversions.csv",
        "columns": {"journey_id": "Journey", "timestamp": "Converted At", "value": "Value"},
        "dayfirst": True, "decimal": ",", "thousands": "."}

    se = crm.stage_events
    pd.DataFrame({"Lead": se["lead_id"], "Stage": se["stage"].map(STAGE_NAMES),
                  "Entered": _dates(se["entered_at"]),
                  "Source": _channels(se["channel"], rng), "Owner": se["owner"]}
                 ).to_csv(out / "pipeline.csv", **csv)
    tables["stage_events"] = {
        "file": "pipeline.csv",
        "columns": {"lead_id": "Lead", "stage": "Stage", "entered_at": "Entered",
                    "channel": "Source", "owner": "Owner"},
        "dayfirst": True,
        "values": {"stage": {v: k for k, v in STAGE_NAMES.items()},
                   "channel": _channel_values()}}

    sp = crm.spend
    pd.DataFrame({"Day": _dates(sp["date"], "%d/%m/%Y"), "Source": _channels(sp["channel"], rng),
                  "Cost": _money(sp["cost"])}).to_csv(out / "marketing_spend.csv", **csv)
    tables["spend"] = {
        "file": "marketing_spend.csv",
        "columns": {"date": "Day", "channel": "Source", "cost": "Cost"},
        "dayfirst": True, "decimal": ",", "thousands": ".",
        "values": {"channel": _channel_values()}}

    su = crm.subscriptions
    su.rename(columns={"account_id": "Account", "month": "Month", "mrr": "MRR",
                       "product_category": "Product"}).to_parquet(out / "mrr.parquet",
                                                                  index=False)
    tables["subscriptions"] = {
        "file": "mrr.parquet",
        "columns": {"account_id": "Account", "month": "Month", "mrr": "MRR",
                    "product_category": "Product"}}

    tk = crm.tickets
    pd.DataFrame({"Ticket": tk["ticket_id"], "Customer": tk["customer_id"],
                  "Opened": _dates(tk["opened_at"]), "Resolved": _dates(tk["resolved_at"]),
                  "Category": tk["category"]}).to_csv(out / "tickets.csv", **csv)
    tables["tickets"] = {
        "file": "tickets.csv",
        "columns": {"ticket_id": "Ticket", "customer_id": "Customer", "opened_at": "Opened",
                    "resolved_at": "Resolved", "category": "Category"},
        "dayfirst": True}

    co = crm.contacts
    contacts = co.rename(columns={"contact_id": "Contact", "created_at": "Created",
                                  "name": "Full Name", "email": "Email", "phone": "Phone",
                                  "referred_by": "Referred By"})
    contacts["Created"] = _dates(co["created_at"])
    contacts.to_csv(out / "contacts.csv", **csv)
    tables["contacts"] = {
        "file": "contacts.csv",
        "columns": {"contact_id": "Contact", "created_at": "Created", "name": "Full Name",
                    "email": "Email", "referred_by": "Referred By", "phone": "Phone"},
        "dayfirst": True, "personal": ["Full Name", "Email", "Phone"]}

    if crm.experiments is not None:
        ex = crm.experiments
        groups = {"treatment": "Test", "holdout": "Control"}
        frame = pd.DataFrame({"Journey": ex["journey_id"], "Channel": _channels(ex["channel"], rng),
                              "Group": ex["group"].map(groups)})
        if "started_at" in ex.columns:
            frame["Started"] = _dates(ex["started_at"])
        frame.to_csv(out / "holdout_tests.csv", **csv)
        tables["experiments"] = {
            "file": "holdout_tests.csv",
            "columns": {"journey_id": "Journey", "channel": "Channel", "group": "Group",
                        **({"started_at": "Started"} if "started_at" in ex.columns else {})},
            "dayfirst": True,
            "values": {"channel": _channel_values(),
                       "group": {v: k for k, v in groups.items()}}}

    spec = {"name": name, "location": ".", "tables": tables}
    header = (f"# {name}: a messy export of {crm.name} ({crm.source}), written by\n"
              f"#   crmstats data messy {crm.source} FOLDER\n"
              "# Every table maps back onto the canonical one: the KPIs equal the source's.\n")
    path = out / "crmstats.yml"
    path.write_text(header + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    return path
