"""Who the customer is shifts how it buys: the simulator's covariate truth for repeat buying.

The simulated customers' repeat buying (:func:`crmstats.datasets.simulate_crm`,
step 3) follows BG/NBD [1]_ and their spend Gamma-Gamma [2]_, with
time-invariant covariates in the manner of Fader & Hardie [3]_: the customer's
**acquisition channel** and **segment** (key account or retail) multiply the
scale parameters by ``exp(γ'x)``, where ``x`` holds the indicators of the
customer's channel (reference: the first channel, ``paid_search``) and of
``segment == "key_account"`` (reference: retail):

* purchase rate: ``λ ~ Gamma(r, α_i)``, ``α_i = α exp(-γ_purchase'x)`` — so
  ``exp(γ_purchase)`` multiplies the mean purchase rate ``r / α_i``;
* dropout: after each repeat purchase the customer leaves with probability
  ``p ~ Beta(a, b_i)``, ``b_i = b exp(-γ_dropout'x)`` — so ``exp(γ_dropout)``
  divides the expected number of purchases before dropping out,
  ``b_i / (a - 1)``, and a positive coefficient means earlier dropout (the
  parametrisation of :mod:`crmstats.clv.models.covariates`);
* spend: each order ``~ Gamma(p, ν)``, ``ν ~ Gamma(q, v_i)``,
  ``v_i = v exp(γ_spend'x)`` — so ``exp(γ_spend)`` multiplies the mean spend
  per order ``p v_i / (q - 1)``.

The true values are in ``truth["clv_coefficients"]`` (one row per covariate,
one column per process: ``purchase``, ``dropout``, ``spend``) and
``truth["clv_baseline"]`` (the reference customer's ``r``, ``alpha``, ``a``,
``b``, ``p``, ``q``, ``v``), so a covariate model's recovery can be measured.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting your
   customers" the easy way: An alternative to the Pareto/NBD model.
   Marketing Science 24(2), 275-284.
.. [2] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). RFM and CLV: Using
   iso-value curves for customer base analysis. Journal of Marketing Research
   42(4), 415-430.
.. [3] Fader, P. S. and Hardie, B. G. S. (2007). Incorporating time-invariant
   covariates into the Pareto/NBD and BG/NBD models.
   http://brucehardie.com/notes/019/
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["BASELINE", "COEFFICIENTS", "channel_parameters", "customer_parameters", "draw_segment",
           "true_coefficients"]

#: The reference customer (acquired through paid search, retail segment): BG/NBD's
#: ``r``, ``alpha`` (weeks), ``a``, ``b`` and Gamma-Gamma's ``p``, ``q``, ``v``.
BASELINE = {"r": 0.45, "alpha": 9.0, "a": 0.75, "b": 2.8, "p": 6.0, "q": 4.0, "v": 22.0}

#: True coefficients by covariate (rows) and process (columns). Channels shift the mean
#: purchase rate from 0.45x (display) to 1.6x (email) of paid search's, dropout (through
#: b: from 0.5x to 1.8x) and spend per order (0.64x to 1.36x); key accounts buy 1.5x as
#: often, drop out less and spend 1.65x as much per order.
COEFFICIENTS = pd.DataFrame(
    [
        # purchase, dropout, spend
        [-0.15, 0.20, -0.20],   # organic_search
        [-0.50, 0.40, -0.40],   # social
        [0.45, -0.35, -0.10],   # email
        [-0.80, 0.60, -0.45],   # display
        [0.20, -0.50, 0.15],    # referral
        [0.30, -0.70, 0.30],    # events
        [-0.75, 0.50, -0.30],   # affiliate
        [0.10, -0.20, 0.10],    # webinar
        [0.25, -0.40, 0.25],    # partner
        [0.40, -0.30, 0.50],    # segment: key account
    ],
    index=["acquisition_channel[organic_search]", "acquisition_channel[social]",
           "acquisition_channel[email]", "acquisition_channel[display]",
           "acquisition_channel[referral]", "acquisition_channel[events]",
           "acquisition_channel[affiliate]", "acquisition_channel[webinar]",
           "acquisition_channel[partner]", "segment[key_account]"],
    columns=["purchase", "dropout", "spend"],
)

#: The reference levels of the covariates.
REFERENCE = {"acquisition_channel": "paid_search", "segment": "retail"}


def _column(covariate: str, level: str) -> str:
    return f"{covariate}[{level}]"


def true_coefficients(channels) -> pd.DataFrame:
    """Return the true coefficients for a simulation with these channels.

    Rows: the indicator of each channel but the first (the reference level),
    then ``segment[key_account]``; columns ``purchase``, ``dropout``, ``spend``.
    """
    rows = [_column("acquisition_channel", c) for c in list(channels)[1:]]
    rows.append(_column("segment", "key_account"))
    return COEFFICIENTS.loc[rows].copy()


def draw_segment(rng: np.random.Generator, company_size: np.ndarray,
                 key_account_share: float) -> np.ndarray:
    """Draw each customer's segment: key accounts are 3x likelier among large companies.

    ``P(key account) = 3 s`` for companies of 201 or more people, ``s / 2``
    otherwise (``s = key_account_share``), capped at 1.
    """
    big = np.isin(np.asarray(company_size), ["201-1000", "1000+"])
    p_key = np.where(big, key_account_share * 3.0, key_account_share * 0.5).clip(0, 1)
    return np.where(rng.random(len(big)) < p_key, "key_account", "retail")


def customer_parameters(channel: np.ndarray, segment: np.ndarray, channels) -> dict:
    """Return each customer's BG/NBD and Gamma-Gamma parameters from its covariates.

    Parameters
    ----------
    channel : array of str
        Acquisition channel per customer (one of ``channels``).
    segment : array of str
        ``"key_account"`` or ``"retail"`` per customer.
    channels : sequence of str
        The simulation's channels; the first is the reference level.

    Returns
    -------
    dict
        Arrays ``r``, ``alpha``, ``a``, ``b``, ``p``, ``q``, ``v`` (one value
        per customer) and ``design``, the customers' covariate indicators (a
        DataFrame with the rows of :func:`true_coefficients` as columns).
    """
    coef = true_coefficients(channels)
    channel = np.asarray(channel).astype(str)
    design = pd.DataFrame(
        {col: (channel == col.split("[", 1)[1][:-1]).astype(float)
         for col in coef.index if col.startswith("acquisition_channel[")})
    design["segment[key_account]"] = (np.asarray(segment) == "key_account").astype(float)
    x = design[list(coef.index)].to_numpy()
    eta = {proc: x @ coef[proc].to_numpy() for proc in coef.columns}
    n = len(channel)
    base = BASELINE
    return {
        "r": np.full(n, base["r"]),
        "alpha": base["alpha"] * np.exp(-eta["purchase"]),
        "a": np.full(n, base["a"]),
        "b": base["b"] * np.exp(-eta["dropout"]),
        "p": np.full(n, base["p"]),
        "q": np.full(n, base["q"]),
        "v": base["v"] * np.exp(eta["spend"]),
        "design": design,
    }


def channel_parameters(channels) -> pd.DataFrame:
    """Return the retail customer's BG/NBD and Gamma-Gamma parameters per channel."""
    params = customer_parameters(np.asarray(channels), np.full(len(channels), "retail"),
                                 channels)
    return pd.DataFrame({k: params[k] for k in ("r", "alpha", "a", "b", "p", "q", "v")},
                        index=pd.Index(list(channels), name="channel"))
