import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def demo_paths(small_crm):
    from crmstats.attribution import build_paths

    return build_paths(small_crm.touchpoints, small_crm.conversions, half_life=7.0)


@pytest.fixture
def random_paths():
    """A few hundred distinct random paths over 4 channels, with repeats and cycles."""
    rng = np.random.default_rng(13)
    chans = ["a", "b", "c", "d"]
    rows = {}
    for _ in range(400):
        n = int(rng.integers(1, 6))
        path = tuple(rng.choice(chans, n, p=[0.4, 0.3, 0.2, 0.1]))
        conv = int(rng.poisson(3.0 * (1 + ("d" in path))))
        nulls = int(rng.poisson(6.0))
        c0, v0, n0 = rows.get(path, (0, 0.0, 0))
        rows[path] = (c0 + conv, v0 + conv * float(rng.gamma(5.0, 4.0)), n0 + nulls)
    frame = pd.DataFrame([(p, c, v, n) for p, (c, v, n) in rows.items()],
                         columns=["path", "conversions", "value", "nulls"])
    return frame[(frame.conversions + frame.nulls) > 0].reset_index(drop=True)
