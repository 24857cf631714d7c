"""The canonical tables: one documented definition of every column crmstats reads.

Every public function reads its inputs through these specifications, so a column
name, its type and the table's key are defined once, here.  Callers whose data
use other names pass ``*_col`` arguments (or a ``columns`` mapping) that map
their names onto the canonical ones.

Conventions
-----------
* **Ids** are strings (or integers, kept as given); they are never null.  One
  id space is shared across tables: a contact keeps its id from subscriber to
  lead to customer, so ``lead_id``, ``customer_id``, ``account_id`` and
  ``journey_id`` of the same person are equal where they exist.
* **Timestamps** are parsed to ``datetime64``.  Timezone-aware values are
  converted to UTC and stored naive; a column that mixes naive and aware values
  is rejected, because its naive values have no defined instant.
* **Money** (``amount``, ``value``, ``cost``, ``mrr``) must be finite.
* **Line value**: an export with a unit price and a quantity per line but no
  line total (an invoice log) maps ``unit_price`` and ``quantity``;
  ``amount`` is then ``quantity × unit_price`` (a returned line has a negative
  quantity, so a negative amount: a refund).
* **Refund policy**: a negative transaction ``amount`` is a refund.  Refunds are
  kept in revenue KPIs (they reduce revenue), but they are never counted as a
  purchase occasion: summaries such as ``rfm_summary`` count and average only
  rows with ``amount >= 0`` (a zero-value row, e.g. a free item, is a
  purchase).  Negative ``cost``, ``mrr`` or conversion ``value`` are errors.
* **Deals** (one row per opportunity, its *current* stage): the stages
  ``won`` and ``lost`` close a deal, every other stage name is an open stage.
  Map an export's names onto ``won``/``lost`` with ``values:`` in
  ``crmstats.yml`` (Salesforce ``Closed Won: won``, HubSpot ``closedwon: won``);
  other stage names are kept as the export writes them (mapped or not). A deal
  without dates is valid: it is open at its stage, with unknown age.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crmstats.exceptions import DataError

__all__ = ["CLOSED_STAGES", "CLOSED_STAGE_NAMES", "OPEN_STAGE_ORDER", "PII_COLUMNS",
           "SALES_STAGES", "TABLES", "ColumnSpec", "TableSpec", "stage_key", "table_spec",
           "usual_stage_order"]


@dataclass(frozen=True)
class ColumnSpec:
    """One canonical column.

    Parameters
    ----------
    name : str
        Canonical name.
    kind : {"id", "timestamp", "money", "count", "category", "float"}
        Logical type; validation and coercion follow it.
    required : bool
        Whether the column must be present.
    description : str
        What the column holds.
    nonnegative : bool
        For numeric kinds, whether negative values are rejected.
    values : tuple of str
        For categories, the only values allowed (empty: any value).
    nullable : bool
        For numeric kinds, whether a missing value (unknown, e.g. the amount of
        an early deal) is allowed; present values must still be finite.
    """

    name: str
    kind: str
    required: bool = True
    description: str = ""
    nonnegative: bool = False
    values: tuple[str, ...] = ()
    nullable: bool = False


@dataclass(frozen=True)
class TableSpec:
    """One canonical table: its columns and its key."""

    name: str
    description: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...] = field(default_factory=tuple)
    #: Pairs (earlier, later) of timestamp columns: later may not precede earlier.
    order: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    #: Required columns that may be computed when absent: name -> (factor, factor),
    #: the product of two other columns (``amount = quantity * unit_price``).
    derived: dict = field(default_factory=dict, hash=False)  # a dict: left out of the hash

    @property
    def required(self) -> list[str]:
        """Names of the required columns."""
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> ColumnSpec | None:
        """Return the spec of column ``name`` or None."""
        for c in self.columns:
            if c.name == name:
                return c
        return None


def _c(name, kind, required=True, description="", nonnegative=False, values=(), nullable=False):
    return ColumnSpec(name, kind, required, description, nonnegative, values, nullable)


TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in [
        TableSpec(
            "transactions",
            "One row per order line or order: who bought, when, for how much.",
            (
                _c("customer_id", "id", description="Buyer; equals the contact id."),
                _c("timestamp", "timestamp", description="Order time."),
                _c("amount", "money", description="Order value; negative = refund. When the "
                   "export has none: quantity × unit_price."),
                _c("order_id", "id", False, "Order key; unique per product category when present."),
                _c("product_category", "category", False, "Product category of the line."),
                _c("quantity", "count", False, "Units; negative on a returned line."),
                _c("unit_price", "money", False, "Price per unit (for amount when the export "
                   "has no line total).", nonnegative=True),
            ),
            key=("order_id", "product_category"),
            derived={"amount": ("quantity", "unit_price")},
        ),
        TableSpec(
            "customers",
            "One row per customer: acquisition date and channel, plus attributes.",
            (
                _c("customer_id", "id"),
                _c("acquired_at", "timestamp", description="First purchase / contract start."),
                _c("acquisition_channel", "category", description="Channel credited by the CRM."),
                _c("segment", "category", False, "Business segment, e.g. key_account."),
            ),
            key=("customer_id",),
        ),
        TableSpec(
            "touchpoints",
            "One row per marketing touch on a journey.",
            (
                _c("journey_id", "id", description="Journey (or customer) the touch belongs to."),
                _c("timestamp", "timestamp"),
                _c("channel", "category"),
                _c("cost", "money", False, "Cost of the touch.", nonnegative=True),
            ),
        ),
        TableSpec(
            "conversions",
            "One row per converting journey: when and for how much.",
            (
                _c("journey_id", "id"),
                _c("timestamp", "timestamp"),
                _c("value", "money", description="Conversion value.", nonnegative=True),
            ),
            key=("journey_id",),
        ),
        TableSpec(
            "stage_events",
            "One row each time a lead enters a sales-cycle stage.",
            (
                _c("lead_id", "id"),
                _c("stage", "category", description="subscriber, lead, qualified, ..."),
                _c("entered_at", "timestamp"),
                _c("channel", "category", False, "Acquisition channel of the lead."),
                _c("owner", "category", False, "Sales owner."),
            ),
            key=("lead_id", "stage", "entered_at"),
        ),
        TableSpec(
            "deals",
            "One row per deal (opportunity) with its current stage: a CRM's deals export.",
            (
                _c("deal_id", "id", description="Deal (opportunity) key."),
                _c("stage", "category",
                   description="Current stage: won and lost close the deal, any other "
                               "name is an open stage (map names with values:)."),
                _c("created_at", "timestamp", False,
                   "When the deal was created or engaged; empty for early deals."),
                _c("closed_at", "timestamp", False, "When it was won or lost; empty while open."),
                _c("amount", "money", False, "Deal value (expected while open); empty if unknown.",
                   nonnegative=True, nullable=True),
                _c("owner", "category", False, "Sales owner (agent)."),
                _c("account", "category", False, "Account (company) of the deal."),
                _c("product", "category", False, "Product sold."),
                _c("channel", "category", False, "Channel the deal came from."),
            ),
            key=("deal_id",),
            order=(("created_at", "closed_at"),),
        ),
        TableSpec(
            "spend",
            "Marketing spend per channel and date (day or month).",
            (
                _c("date", "timestamp"),
                _c("channel", "category"),
                _c("cost", "money", nonnegative=True),
            ),
            key=("date", "channel"),
        ),
        TableSpec(
            "subscriptions",
            "Monthly recurring revenue per key account, month and product.",
            (
                _c("account_id", "id"),
                _c("month", "timestamp", description="First day of the month."),
                _c("mrr", "money", nonnegative=True),
                _c("product_category", "category", False),
            ),
            key=("account_id", "month", "product_category"),
        ),
        TableSpec(
            "tickets",
            "Service tickets: every service step recorded.",
            (
                _c("ticket_id", "id"),
                _c("customer_id", "id"),
                _c("opened_at", "timestamp"),
                _c("resolved_at", "timestamp", False, "Empty while open."),
                _c("category", "category", False),
            ),
            key=("ticket_id",),
            order=(("opened_at", "resolved_at"),),
        ),
        TableSpec(
            "contacts",
            "Every CRM contact with personal data and lead features (never shown in the book).",
            (
                _c("contact_id", "id"),
                _c("created_at", "timestamp"),
                _c("name", "category", False, "Personal data: never published."),
                _c("email", "category", False, "Personal data: never published."),
                _c("referred_by", "category", False,
                   "The customer who referred the contact, if recorded."),
            ),
            key=("contact_id",),
        ),
        TableSpec(
            "experiments",
            "Holdout experiments: which journeys were withheld from a channel at random.",
            (
                _c("journey_id", "id", description="Journey (contact) randomised."),
                _c("channel", "category", description="Channel under test."),
                _c("group", "category",
                   description="treatment (may be reached by the channel) or holdout "
                               "(withheld from it).",
                   values=("treatment", "holdout")),
                _c("started_at", "timestamp", False, "When the unit entered the experiment."),
            ),
            key=("journey_id", "channel"),
        ),
    ]
}

#: Columns holding personal data; studies must never publish them.
PII_COLUMNS: tuple[str, ...] = ("name", "email", "phone", "first_name", "last_name", "address")


def table_spec(table: str) -> TableSpec:
    """Return the spec of canonical table ``table``.

    Raises
    ------
    DataError
        If ``table`` is not a canonical table name (a ``ValueError``).
    """
    try:
        return TABLES[table]
    except KeyError:
        raise DataError(
            f"unknown table {table!r}; canonical tables are: {', '.join(TABLES)}"
        ) from None

#: The sales-cycle stages of ``stage_events`` in funnel order; ``unqualified``
#: and ``lost`` are exits (a lead that fails qualification / a lost opportunity).
SALES_STAGES: tuple[str, ...] = (
    "subscriber",
    "lead",
    "unqualified",
    "qualified",
    "opportunity",
    "lost",
    "won",
)

#: The stages that close a deal (``deals.stage``): won, then lost. Every other stage
#: name of the deals table is an open stage.
CLOSED_STAGES: tuple[str, ...] = ("won", "lost")

#: Export names of the closing stages (lower case, letters and digits only), e.g.
#: Salesforce's "Closed Won", HubSpot's "closedwon".
CLOSED_STAGE_NAMES: dict[str, tuple[str, ...]] = {
    "won": ("won", "closedwon", "dealwon", "win"),
    "lost": ("lost", "closedlost", "deallost", "loss"),
}

#: Usual names of open deal stages in funnel order (lower case, letters and digits
#: only): the default pipelines of Salesforce, HubSpot and Pipedrive and common words.
OPEN_STAGE_ORDER: tuple[str, ...] = (
    "new", "prospecting", "prospect", "lead", "appointmentscheduled", "qualification",
    "qualified", "qualifiedtobuy", "contactmade", "engaging", "discovery", "needsanalysis",
    "demoscheduled", "presentationscheduled", "valueproposition", "iddecisionmakers",
    "decisionmakerboughtin", "perceptionanalysis", "proposal", "proposalmade",
    "proposalpricequote", "quote", "contractsent", "negotiation", "negotiationreview",
    "negotiationsstarted", "commit")


def stage_key(name: str) -> str:
    """Return a stage name as compared with the lists above: lower case, letters and digits."""
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def usual_stage_order(names) -> list[str]:
    """Return open deal stage names sorted by :data:`OPEN_STAGE_ORDER`, unknown ones last."""
    rank = {s: i for i, s in enumerate(OPEN_STAGE_ORDER)}
    return sorted(names, key=lambda n: (rank.get(stage_key(n), len(rank)), str(n)))
