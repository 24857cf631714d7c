"""CLV models: BTYD transaction models, Gamma-Gamma spend, sBG contractual retention.

Every model follows the scikit-learn pattern: hyperparameters in ``__init__``,
``fit(...)`` returns ``self``, fitted attributes end in ``_``
(``params_``, ``log_likelihood_``, ``summary_``, ``variance_matrix_``).
"""

from typing import TYPE_CHECKING

from crmstats._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy exports (crmstats._lazy reads this block)
    from crmstats.clv.models.base import BaseModel, NotFittedError
    from crmstats.clv.models.beta_geo import BetaGeoModel, ModifiedBetaGeoModel
    from crmstats.clv.models.pareto_nbd import ParetoNBDModel
    from crmstats.clv.models.spend_retention import (
        BetaGeoBetaBinomModel,
        GammaGammaModel,
        ShiftedBetaGeoModel,
    )

__all__ = [
    "BaseModel",
    "BetaGeoBetaBinomModel",
    "BetaGeoModel",
    "GammaGammaModel",
    "ModifiedBetaGeoModel",
    "NotFittedError",
    "ParetoNBDModel",
    "ShiftedBetaGeoModel",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
