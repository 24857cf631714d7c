"""crmstats: CRM analytics published as a Jupyter Book of KPI studies.

Customer lifetime value, cohort churn, channel attribution and the funnel and
account KPIs around them.

The public API is flat: canonical data handling lives here, and each domain
subpackage (``crmstats.overview``, and later ``clv``, ``churn``, ``attribution``,
``funnel``) has the same shape: computations, then ``plotting``.
"""

from crmstats.backend import backend, execute
from crmstats.crmdata import CRMData
from crmstats.exceptions import (
    ConvergenceError,
    ConvergenceWarning,
    CRMStatsError,
    DataError,
    DataWarning,
    NotFittedError,
    StudyError,
)
from crmstats.quality import data_quality, source_mapping
from crmstats.schema import TABLES
from crmstats.sources import export_crm, load_crm, source_label
from crmstats.validation import as_table, validate

__version__ = "0.1.0"


def __getattr__(name: str):
    # the customer 360 pulls in every domain subpackage: imported on first use only
    if name == "customer_360":
        from crmstats.scores import customer_360

        return customer_360
    raise AttributeError(f"module 'crmstats' has no attribute {name!r}")


__all__ = [
    "TABLES",
    "CRMData",
    "CRMStatsError",
    "ConvergenceError",
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "NotFittedError",
    "StudyError",
    "__version__",
    "as_table",
    "data_quality",
    "backend",
    "customer_360",
    "execute",
    "export_crm",
    "load_crm",
    "source_label",
    "source_mapping",
    "validate",
]
