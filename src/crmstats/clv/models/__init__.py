"""CLV models, one file each: BTYD transaction models, Gamma-Gamma spend, sBG retention.

Every model follows the scikit-learn pattern: hyperparameters in ``__init__``,
``fit(...)`` returns ``self``, fitted attributes end in ``_``
(``params_``, ``log_likelihood_``, ``summary_``, ``variance_matrix_``,
``n_obs_``: the contract of :mod:`crmstats.estimator`).
"""

from typing import TYPE_CHECKING

from crmstats._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy exports (crmstats._lazy reads this block)
    from crmstats.clv.models.base import BaseModel
    from crmstats.clv.models.beta_geo import BetaGeoModel, ModifiedBetaGeoModel
    from crmstats.clv.models.bg_bb import BetaGeoBetaBinomModel
    from crmstats.clv.models.gamma_gamma import GammaGammaModel
    from crmstats.clv.models.pareto_nbd import ParetoNBDModel
    from crmstats.clv.models.shifted_beta_geo import ShiftedBetaGeoModel, sbg_log_likelihood

__all__ = [
    "BaseModel",
    "BetaGeoBetaBinomModel",
    "BetaGeoModel",
    "GammaGammaModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "ShiftedBetaGeoModel",
    "sbg_log_likelihood",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
