"""Example exports in the shapes real CRMs give, made by the project (no third-party data).

Two shapes that carry only part of a CRM, each written with the ``crmstats.yml``
that describes it:

* :func:`write_invoice_log` — a shop's **invoice log** and nothing else, one row
  per invoice line (``InvoiceNo, StockCode, Description, Quantity, InvoiceDate,
  UnitPrice, CustomerID, Country``): invoice numbers as ids, day-first dates,
  cancellations as invoices ``C…`` with negative quantities, invoices without a
  customer id (guest sales). The log starts mid-stream — most customers bought
  before its first day — and its last month is partial.
* :func:`write_deals_export` — a **deals export** (Salesforce opportunities,
  HubSpot deals, Pipedrive), one row per opportunity with its *current* stage:
  ``opportunity_id, sales_agent, product, account, deal_stage, engage_date,
  close_date, close_value``. Prospecting deals have no dates, Engaging deals no
  close date, Lost deals a close value of 0.

Both are simulated from a seed, so ``data/giftshop`` and ``data/deals`` are
rewritten byte for byte by::

    python -c "from crmstats.datasets.exports import write_examples; write_examples('data')"

and a test checks the committed files equal this output.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["DEAL_STAGES", "write_deals_export", "write_examples", "write_invoice_log"]

#: The catalogue of the invoice log: stock code, description, unit price.
_CATALOGUE = [
    ("10002", "PAPER LANTERN STAR WHITE", 0.85), ("10125", "CERAMIC BIRD TEA LIGHT", 1.25),
    ("20615", "BLUE POLKADOT PLATE", 1.65), ("20616", "RED POLKADOT PLATE", 1.65),
    ("21034", "ENAMEL WATERING CAN", 4.95), ("21108", "HERB MARKER SET OF 6", 2.10),
    ("21212", "PACK OF 60 CAKE CASES", 0.55), ("21340", "WOODEN HEART GARLAND", 3.75),
    ("21479", "FLORAL TEA TOWEL", 2.95), ("21733", "HANGING GLASS HEART", 2.55),
    ("21754", "HOME SWEET HOME SIGN", 5.95), ("21931", "JUMBO SHOPPER SPOTTY", 2.08),
    ("22086", "PAPER CHAIN KIT CHRISTMAS", 2.95), ("22112", "HOT WATER BOTTLE KNITTED", 4.25),
    ("22197", "POPCORN HOLDER STRIPES", 0.85), ("22383", "LUNCH BAG VINTAGE MAP", 1.65),
    ("22423", "CAKESTAND THREE TIER", 12.75), ("22457", "SLATE HEART TO HANG", 0.29),
    ("22633", "HAND WARMER OWL", 2.10), ("22720", "BAKING SET 9 PIECE", 4.95),
    ("22727", "ALARM CLOCK ROUND GREEN", 3.75), ("22960", "JAM JAR SET OF 4", 4.25),
    ("23084", "RABBIT NIGHT LIGHT", 2.08), ("23203", "JUMBO BAG ALPHABET", 2.08),
    ("23298", "BUNTING SPOTTY COTTON", 4.95), ("47566", "PARTY BUNTING", 4.65),
    ("48138", "DOORMAT WELCOME", 7.95), ("71053", "METAL LANTERN WHITE", 3.39),
    ("79321", "CHILLI STRING LIGHTS", 4.95), ("82484", "PICTURE FRAME WOOD", 6.45),
    ("84029G", "KNITTED FLAG HOT WATER BOTTLE", 3.39), ("84879", "ASSORTED BIRD ORNAMENT", 1.69),
    ("85099B", "JUMBO BAG RED", 2.08), ("85123A", "HEART T-LIGHT HOLDER WHITE", 2.95),
    ("POST", "POSTAGE", 18.00),
]

#: Countries of the shop's customers and their shares.
_COUNTRIES = (["United Kingdom", "Germany", "France", "EIRE", "Netherlands", "Spain",
               "Belgium", "Norway"], [0.82, 0.05, 0.04, 0.03, 0.025, 0.015, 0.01, 0.01])

#: The deals export's stages in funnel order (its own names).
DEAL_STAGES = ("Prospecting", "Engaging", "Won", "Lost")

_AGENTS = ["Ava Brennan", "Tomas Ruiz", "Mira Holt", "Jonas Weber", "Priya Nair",
           "Lena Fischer", "Omar Haddad", "Chloe Martin"]
_PRODUCTS = {"Starter": 550, "Team": 1_100, "Business": 3_400, "Enterprise": 9_800,
             "Analytics Add-on": 1_900}
_ACCOUNT_WORDS = (["Northwind", "Bluebird", "Granite", "Harbor", "Juniper", "Kestrel",
                   "Lumen", "Maple", "Orchid", "Pioneer", "Quartz", "Riverton", "Summit",
                   "Tidewater", "Vertex", "Willow"],
                  ["Labs", "Foods", "Logistics", "Health", "Systems", "Retail", "Media",
                   "Energy"])


def _write(frame: pd.DataFrame, path: Path) -> None:
    # "\n" line ends on every platform: the committed files are compared byte for byte
    frame.to_csv(path, index=False, lineterminator="\n")


def write_invoice_log(folder: str | os.PathLike, *, seed: int = 7,
                      n_customers: int = 600) -> Path:
    """Write a shop's invoice log (transactions only) and its ``crmstats.yml``.

    Customers buy by a BG/NBD-like process (Poisson purchases while alive, a
    dropout chance after each purchase) from a start spread over the two years
    *before* the log begins, so the log (1 December 2023 – 9 December 2024)
    starts mid-stream and its last month holds nine days. About 8 % of the
    invoices have no customer id (guest sales), about 2 % are cancelled by a
    later ``C`` invoice with the negative quantity of one line.

    Parameters
    ----------
    folder : path
        Where ``invoices.csv`` and ``crmstats.yml`` go (created).
    seed : int
        Seed of the simulation.
    n_customers : int
        Customers ever born (those who left before the log do not appear).

    Returns
    -------
    pathlib.Path
        The source file written.
    """
    rng = np.random.default_rng(seed)
    start, end = pd.Timestamp("2023-12-01"), pd.Timestamp("2024-12-10")  # end exclusive
    days = (end - start).days
    born = rng.uniform(-730, days, n_customers)  # days relative to the log's start
    rate = rng.gamma(1.2, 1 / 40, n_customers)  # purchases per day while alive
    drop = rng.beta(1.0, 6.0, n_customers)  # dropout chance after each purchase
    ids = 12_346 + rng.permutation(np.arange(n_customers) * 7 + rng.integers(0, 7, n_customers))
    country = rng.choice(_COUNTRIES[0], n_customers, p=_COUNTRIES[1])
    rows = []  # (day, customer index or -1)
    for i in range(n_customers):
        t = born[i]
        while t < days:
            if t >= 0:
                rows.append((t, i))
            if rng.random() < drop[i]:
                break
            t += rng.exponential(1 / rate[i])
    guests = int(len(rows) * 0.08)
    rows += [(d, -1) for d in rng.uniform(0, days, guests)]
    rows.sort()
    day = np.array([r[0] for r in rows])
    who = np.array([r[1] for r in rows])
    # shop hours 8:00-19:59, whole minutes
    stamp = start + pd.to_timedelta(np.floor(day), unit="D") + pd.to_timedelta(
        rng.integers(8 * 60, 20 * 60, len(day)), unit="min")
    order = np.argsort(stamp.to_numpy(), kind="stable")  # invoice numbers follow time
    stamp, who = stamp[order], who[order]
    invoice_no = 536_365 + np.arange(len(day)) * 3 + rng.integers(0, 3, len(day))
    lines = []
    prices = np.array([p for _, _, p in _CATALOGUE])
    for k in range(len(day)):
        n_lines = int(rng.integers(1, 7))
        items = rng.choice(len(_CATALOGUE) - 1, n_lines, replace=False)
        qty = rng.choice([1, 2, 3, 4, 6, 12, 24], n_lines, p=[.2, .15, .1, .1, .2, .2, .05])
        customer = "" if who[k] < 0 else str(ids[who[k]])
        land = "United Kingdom" if who[k] < 0 else country[who[k]]
        if land != "United Kingdom":
            items, qty = np.append(items, len(_CATALOGUE) - 1), np.append(qty, 1)
        for item, q in zip(items, qty, strict=True):
            code, text, _ = _CATALOGUE[item]
            lines.append((str(invoice_no[k]), code, text, int(q), stamp[k], prices[item],
                          customer, land))
        if customer and rng.random() < 0.02:  # cancelled later: one line comes back
            code, text, _ = _CATALOGUE[items[0]]
            back = min(stamp[k] + pd.Timedelta(days=float(rng.uniform(0.1, 20))),
                       end - pd.Timedelta(minutes=1)).floor("min")
            lines.append((f"C{invoice_no[k] + 1}", code, text, -int(qty[0]), back,
                          prices[items[0]], customer, land))
    log = pd.DataFrame(lines, columns=["InvoiceNo", "StockCode", "Description", "Quantity",
                                       "InvoiceDate", "UnitPrice", "CustomerID", "Country"])
    log = log.sort_values("InvoiceDate", kind="stable").reset_index(drop=True)
    log["InvoiceDate"] = log["InvoiceDate"].dt.strftime("%d/%m/%Y %H:%M")
    log["UnitPrice"] = log["UnitPrice"].map(lambda v: f"{v:.2f}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    _write(log, out / "invoices.csv")
    path = out / "crmstats.yml"
    path.write_text(
        "# Gift shop invoice log: transactions only, one row per invoice line, written by\n"
        "#   crmstats.datasets.exports.write_invoice_log (see data/README.md).\n"
        "# The line's value is Quantity x UnitPrice (a cancellation 'C...' has a negative\n"
        "# quantity: a refund); invoices without CustomerID are guest sales and are dropped.\n"
        "name: Gift shop invoices\n"
        "currency: GBP\n"
        "location: .\n"
        "tables:\n"
        "  transactions:\n"
        "    file: invoices.csv\n"
        "    columns:\n"
        "      customer_id: CustomerID\n"
        "      timestamp: InvoiceDate\n"
        "      unit_price: UnitPrice\n"
        "      quantity: Quantity\n"
        "      order_id: InvoiceNo\n"
        "      product_category: StockCode\n"
        "    dayfirst: true\n"
        "    drop_blank_ids: true\n")
    return path


def write_deals_export(folder: str | os.PathLike, *, seed: int = 3,
                       n_deals: int = 1_500) -> Path:
    """Write a deals export (one row per opportunity) and its ``crmstats.yml``.

    Deals are engaged uniformly over 2024; each closes after a gamma-distributed
    cycle (mean about 48 days) and is won with a chance that depends on the
    agent and product; a deal whose close would fall after the export date
    (31 December 2024) is still Engaging. About 7 % are Prospecting: no date,
    no value yet. Won deals carry their value, Lost deals 0, Engaging deals
    mostly the value expected (some none).

    Parameters
    ----------
    folder : path
        Where ``deals.csv`` and ``crmstats.yml`` go (created).
    seed : int
        Seed of the simulation.
    n_deals : int
        Opportunities in the export.

    Returns
    -------
    pathlib.Path
        The source file written.
    """
    rng = np.random.default_rng(seed)
    asof = pd.Timestamp("2024-12-31")
    first, second = _ACCOUNT_WORDS
    accounts = [f"{a} {b}" for a in first for b in second]
    accounts = list(rng.choice(accounts, 60, replace=False))
    agent = rng.integers(0, len(_AGENTS), n_deals)
    skill = rng.normal(0, 0.35, len(_AGENTS))
    product = rng.choice(list(_PRODUCTS), n_deals, p=[.3, .28, .2, .07, .15])
    price = np.array([_PRODUCTS[p] for p in product], dtype=float)
    account = rng.choice(accounts, n_deals)
    engage = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 366, n_deals),
                                                          unit="D")
    cycle = np.ceil(rng.gamma(2.0, 24.0, n_deals)).astype(int)
    close = engage + pd.to_timedelta(cycle, unit="D")
    logit = 0.5 + skill[agent] - 0.35 * np.log(price / 1_000)
    won = rng.random(n_deals) < 1 / (1 + np.exp(-logit))
    closed = close <= asof
    prospect = rng.random(n_deals) < 0.07
    stage = np.where(prospect, "Prospecting", np.where(~closed, "Engaging",
                                                       np.where(won, "Won", "Lost")))
    value = np.round(price * rng.uniform(0.85, 1.1, n_deals))
    fmt = "%Y-%m-%d"
    deals = pd.DataFrame({
        "opportunity_id": [
            "".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), 8))
            for _ in range(n_deals)],
        "sales_agent": np.asarray(_AGENTS, dtype=object)[agent],
        "product": product, "account": account, "deal_stage": stage,
        "engage_date": np.where(prospect, "", engage.strftime(fmt)),
        "close_date": np.where(np.isin(stage, ["Won", "Lost"]), close.strftime(fmt), ""),
        "close_value": np.where(stage == "Won", value.astype(int).astype(str),
                                np.where(stage == "Lost", "0", "")),
    })
    engaging = (stage == "Engaging") & (rng.random(n_deals) < 0.75)
    deals.loc[engaging, "close_value"] = value[engaging].astype(int).astype(str)
    # the CRM lists deals by account
    deals = deals.sort_values(["account", "opportunity_id"]).reset_index(drop=True)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    _write(deals, out / "deals.csv")
    path = out / "crmstats.yml"
    path.write_text(
        "# B2B deals export: one row per opportunity with its current stage, written by\n"
        "#   crmstats.datasets.exports.write_deals_export (see data/README.md).\n"
        "# Prospecting deals have no dates yet and Engaging deals no close date: both are\n"
        "# open deals at their stage. Lost deals are exported with a close value of 0.\n"
        "name: B2B deals export\n"
        "currency: USD\n"
        "location: .\n"
        "tables:\n"
        "  deals:\n"
        "    file: deals.csv\n"
        "    columns:\n"
        "      deal_id: opportunity_id\n"
        "      stage: deal_stage\n"
        "      created_at: engage_date\n"
        "      closed_at: close_date\n"
        "      amount: close_value\n"
        "      owner: sales_agent\n"
        "      account: account\n"
        "      product: product\n"
        "    values:  # won and lost close a deal; open stages are listed in funnel order\n"
        "      stage: {Prospecting: Prospecting, Engaging: Engaging, Won: won, Lost: lost}\n")
    return path


def write_examples(folder: str | os.PathLike = "data") -> list[Path]:
    """Write both examples to ``folder/giftshop`` and ``folder/deals``; return the source files."""
    base = Path(folder)
    return [write_invoice_log(base / "giftshop"), write_deals_export(base / "deals")]
