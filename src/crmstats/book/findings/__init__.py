"""Key findings of each study, written from its own results.

One function per study template. Each takes the results the study computed
and returns 3-5 plain sentences for :meth:`crmstats.book.report.StudyPage.finish`,
which shows them at the top of the study's page. Every number in a sentence
comes from the arguments (formatted with :mod:`crmstats.book.report`); nothing
is typed in, so the findings change with the data.
"""

from __future__ import annotations

from crmstats.book.findings.customers import (
    clv,
    clv_kpis,
    customer_effects,
    data_overview,
    data_overview_kpis,
    data_quality,
    value_migration,
    value_migration_kpis,
)
from crmstats.book.findings.leads import (
    funnel,
    funnel_kpis,
    lead_scoring,
    lead_scoring_kpis,
    lifecycle,
    lifecycle_kpis,
)
from crmstats.book.findings.marketing import (
    attribution,
    incrementality,
    incrementality_kpis,
    next_euro,
    next_euro_kpis,
)
from crmstats.book.findings.new_customers import new_customer_value
from crmstats.book.findings.retention import (
    churn,
    churn_kpis,
    key_accounts,
    key_accounts_kpis,
)

__all__ = [
    "attribution",
    "churn",
    "churn_kpis",
    "clv",
    "clv_kpis",
    "customer_effects",
    "data_overview",
    "data_overview_kpis",
    "data_quality",
    "funnel",
    "funnel_kpis",
    "incrementality",
    "incrementality_kpis",
    "key_accounts",
    "key_accounts_kpis",
    "lead_scoring",
    "lead_scoring_kpis",
    "lifecycle",
    "lifecycle_kpis",
    "new_customer_value",
    "next_euro",
    "next_euro_kpis",
    "value_migration",
    "value_migration_kpis",
]
