import pytest

from crmstats.clv import calibration_holdout_split
from crmstats.datasets import load_cdnow


@pytest.fixture(scope="session")
def cdnow_calibration():
    """FHL (2005): the 2,357-customer sample, 39-week calibration, same-day purchases merged."""
    return calibration_holdout_split(load_cdnow("sample"), calibration_end="1997-09-30",
                                     observation_end="1998-06-30", period="D", time_unit="W")


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


def simulate_shop_without_dropout(n, seed, r=1.0, alpha=20.0, holdout=0.0):
    """A shop's per-customer summary (weeks; purchases merged per day) where nobody drops out.

    Poisson purchases at Gamma(r, alpha) rates per week over 20-52 weeks, Gamma-Gamma spend; an
    optional holdout period of the same customers. On such data BG/NBD's dropout parameter b
    often runs off to 1e6-1e10 (the no-dropout limit) — the shape of a real shop's log where
    the CLV page's holdout fit did not converge and 5 of 50 bootstrap refits did the same.
    """
    import numpy as np
    import pandas as pd

    from crmstats.clv import with_units

    rng = np.random.default_rng(seed)
    T = rng.uniform(20, 52, n).round()
    lam = rng.gamma(r, 1 / alpha, n)
    x = rng.poisson(lam * T)
    # the last of x uniform purchase days in (0, T]
    tx = np.where(x > 0, np.floor(T * 7 * rng.beta(np.maximum(x, 1), 1)) / 7, 0.0)
    spend = rng.gamma(6.0, 1 / rng.gamma(4.0, 1 / 15.0, n))
    k = np.maximum(x, 1)
    monetary = np.where(x > 0, rng.gamma(6.0 * k, 1 / (6.0 * k)) * spend, 0.0)
    frame = pd.DataFrame({"frequency": x.astype(float), "recency": tx, "T": T,
                          "monetary_value": monetary},
                         index=pd.Index([f"C{i:05d}" for i in range(n)], name="customer_id"))
    if holdout:
        frame["frequency_holdout"] = rng.poisson(lam * holdout).astype(float)
        frame["duration_holdout"] = float(holdout)
    return with_units(frame, period="D", time_unit="W")
