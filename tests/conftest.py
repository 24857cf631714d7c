import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

#: A small simulated CRM: the data source the end-to-end tests run studies on.
SMALL_DEMO = "demo:seed=3,n_contacts=2000"


@pytest.fixture(scope="session")
def cdnow():
    from crmstats.datasets import load_cdnow

    return load_cdnow("master")


@pytest.fixture(scope="session")
def small_crm():
    import crmstats

    return crmstats.load_crm(SMALL_DEMO)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
