"""crmstats: CRM analytics published as a Jupyter Book of KPI studies.

Customer lifetime value, cohort churn, channel attribution and the funnel and
account KPIs around them.

The public API is flat: canonical data handling lives here, and each domain
subpackage (``crmstats.overview``, ``clv``, ``churn``, ``attribution``,
``funnel``) has the same shape: computations, then ``plotting``.

Names are imported on first use (see :mod:`crmstats._lazy`): ``import
crmstats`` loads pandas but not Ibis, SciPy, statsmodels or matplotlib.
"""

from typing import TYPE_CHECKING

from crmstats._lazy import lazy_exports
from crmstats.exceptions import (
    ConvergenceError,
    ConvergenceWarning,
    CRMStatsError,
    DataError,
    DataWarning,
    NotFittedError,
    StudyError,
)

if TYPE_CHECKING:  # the lazy exports (crmstats._lazy reads this block)
    from crmstats.backend import backend, execute
    from crmstats.crmdata import CRMData
    from crmstats.quality import (
        data_quality,
        quality_contents_table,
        quality_rows_table,
        source_mapping,
    )
    from crmstats.schema import TABLES
    from crmstats.scores import customer_360  # pulls in every domain subpackage
    from crmstats.sources import export_crm, load_crm, source_label
    from crmstats.validation import as_table, validate

from crmstats._version import __version__

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
    "quality_contents_table",
    "quality_rows_table",
    "source_mapping",
    "validate",
]

__getattr__, __dir__ = lazy_exports(
    __name__, __file__,
    submodules=("attribution", "backend", "book", "churn", "clv", "crmdata", "datasets",
                "formatting", "funnel", "overview", "plotting", "privacy", "quality",
                "schema", "scores", "sources", "validation"),
)
