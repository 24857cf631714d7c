import pytest

from crmstats.clv import calibration_holdout_split
from crmstats.datasets import load_cdnow


@pytest.fixture(scope="session")
def cdnow_calibration():
    """FHL (2005): the 2,357-customer sample, 39-week calibration, same-day purchases merged."""
    return calibration_holdout_split(load_cdnow("sample"), calibration_end="1997-09-30",
                                     observation_end="1998-06-30", freq="D", time_unit="W")


@pytest.fixture(scope="session")
def fitted(cdnow_calibration):
    from crmstats.clv import BetaGeoModel, GammaGammaModel, ModifiedBetaGeoModel, ParetoNBDModel

    s = cdnow_calibration
    return {
        "bgnbd": BetaGeoModel().fit(s),
        "pnbd": ParetoNBDModel().fit(s),
        "mbgnbd": ModifiedBetaGeoModel().fit(s),
        "gg": GammaGammaModel().fit(s),
    }
