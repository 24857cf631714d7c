"""Real data sets shipped by the ``lifetimes`` package, read without importing it.

``lifetimes.datasets`` resolves its files with ``pkg_resources``, which current
setuptools no longer provides, so the files are located here with
:mod:`importlib.resources` and parsed directly.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_cdnow", "load_donations"]

_CDNOW_FILES = {"master": "CDNOW_master.txt", "sample": "CDNOW_sample.txt"}


def _lifetimes_file(name: str):
    try:
        root = resources.files("lifetimes") / "datasets"
    except ModuleNotFoundError as exc:  # pragma: no cover - lifetimes is a dependency
        raise ImportError("the lifetimes package (which ships the CDNOW files) is missing") from exc
    return root / name


def load_cdnow(kind: str = "master") -> pd.DataFrame:
    """Load the CDNOW purchase log as a canonical transactions table.

    CDNOW is the purchase history of the cohort of customers who made their
    first purchase at the online CD retailer CDNOW in the first quarter of 1997,
    followed until the end of June 1998; it is the data set of the BG/NBD and
    Gamma-Gamma papers [1]_ [2]_.

    Parameters
    ----------
    kind : {"master", "sample"}
        ``"master"``: the full cohort, 69,659 purchase records of 23,570
        customers. ``"sample"``: the 1/10th systematic sample, 6,919 records of
        2,357 customers, used in the papers' worked examples.

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id`` (str, the original five-digit id),
        ``timestamp`` (datetime64, purchase day), ``quantity`` (int, CDs
        bought) and ``amount`` (float, dollars). Several purchases on one day
        are separate rows; rows are in file order.

    References
    ----------
    .. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting your
       customers" the easy way: An alternative to the Pareto/NBD model.
       Marketing Science 24(2), 275-284.
    .. [2] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). RFM and CLV:
       Using iso-value curves for customer base analysis. Journal of Marketing
       Research 42(4), 415-430.
    """
    if kind not in _CDNOW_FILES:
        raise ValueError(f"kind must be one of {sorted(_CDNOW_FILES)}, got {kind!r}")
    path = _lifetimes_file(_CDNOW_FILES[kind])
    if kind == "master":
        names = ["customer_id", "date", "quantity", "amount"]
        skip = 1  # header line
    else:
        names = ["customer_id", "sample_index", "date", "quantity", "amount"]
        skip = 0
    with path.open("r") as fh:
        raw = pd.read_csv(
            fh,
            sep=r"\s+",
            header=None,
            names=names,
            skiprows=skip,
            dtype={"customer_id": str, "date": str, "quantity": "int64", "amount": "float64"},
        )
    return pd.DataFrame(
        {
            "customer_id": raw["customer_id"].astype(str),
            "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "quantity": raw["quantity"].astype("int64"),
            "amount": raw["amount"].astype("float64"),
        }
    )


def load_donations() -> pd.DataFrame:
    """Load the donations data set for the discrete-time BG/BB model.

    Annual donation records of the 1995 cohort of first-time supporters of a
    non-profit organisation (11,104 people), for the six years 1996-2001, in
    the sufficient-statistic form of Fader, Hardie and Shang (2010) [1]_.

    Returns
    -------
    pandas.DataFrame
        22 rows with columns ``frequency`` (repeat transactions), ``recency``
        (period of the last one), ``periods`` (opportunities, 6) and
        ``weights`` (number of donors with that pattern; they sum to 11,104).

    References
    ----------
    .. [1] Fader, P. S., Hardie, B. G. S. and Shang, J. (2010). Customer-base
       analysis in a discrete-time noncontractual setting. Marketing Science
       29(6), 1086-1108.
    """
    with _lifetimes_file("donations.csv").open("r") as fh:
        out = pd.read_csv(fh)
    return out.astype("int64")
