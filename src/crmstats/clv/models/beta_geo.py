"""BG/NBD and MBG/NBD: repeat buying with dropout after purchases.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting your
   customers" the easy way: An alternative to the Pareto/NBD model.
   Marketing Science 24(2), 275-284.
.. [2] Batislam, E. P., Denizel, M. and Filiztekin, A. (2007). Empirical
   validation and comparison of models for customer base analysis.
   International Journal of Research in Marketing 24(3), 201-209.

About 500 lines: BG/NBD's likelihood, its analytic Hessian and the series
for extreme parameters (where the closed form cancels) belong together; MBG/NBD
is a short subclass.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import betaln, expit, gammaln, hyp2f1, polygamma, psi

from crmstats.clv.models.base import BaseModel, vdot

__all__ = ["BetaGeoModel", "ModifiedBetaGeoModel", "alive_purchases"]


class BetaGeoModel(BaseModel):
    """BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005) [1]_.

    While active, a customer buys at Poisson rate ``lambda``, heterogeneous
    across customers as ``Gamma(r, alpha)``; after each repeat purchase the
    customer drops out with probability ``p``, heterogeneous as ``Beta(a, b)``.

    The log-likelihood, its gradient and its Hessian are written out
    analytically and vectorised over the compressed summary (identical rows
    weighted; terms in x, T or t_x alone evaluated once per distinct value);
    the fit takes Newton steps, started on large data from the estimate on a
    subsample of rows, which is what makes fitting a million customers take a
    fraction of a second. Standard errors come from the exact Hessian.

    Parameters
    ----------
    penalty, maxiter, tol
        See :class:`~crmstats.clv.models.base.BaseModel`.

    Attributes
    ----------
    params_ : pandas.Series
        ``r``, ``alpha``, ``a``, ``b``.
    log_likelihood_ : float
        Total log-likelihood at the estimate.
    summary_ : pandas.DataFrame
        Estimate, standard error and 95 % interval per parameter.
    variance_matrix_ : pandas.DataFrame
        Inverse observed information.

    Examples
    --------
    >>> from crmstats.clv import BetaGeoModel, rfm_summary  # doctest: +SKIP
    >>> model = BetaGeoModel().fit(rfm_summary(tx, time_unit="W"))  # doctest: +SKIP
    """

    _param_names = ("r", "alpha", "a", "b")
    _covariate_scales = {"purchase": "alpha", "dropout": "b"}
    _has_gradient = True
    _has_hessian = True
    _first_success_suffices = True
    #: 0: dropout possible after repeat purchases only (BG/NBD); 1: also right after
    #: the first purchase (MBG/NBD), which shifts x by one in the beta terms.
    _shift = 0

    def _initial(self, data):
        return np.log(np.array([0.5, max(np.average(data["T"], weights=data["weights"]) / 4, 1.0),
                                1.0, 2.0]))

    _shape_params = ("r", "a", "b")

    def _at_boundary(self):
        """No dropout (b → ∞ or a → 0), or the same dropout for everyone (a, b → ∞)."""
        a, b = float(self.params_["a"]), float(self.params_["b"])
        p = _dropout_words(a / (a + b))
        if min(a, b) > 1e4:  # a model in its own right, in plain words (see .limits)
            from crmstats.clv.models.limits import one_dropout_clause

            return one_dropout_clause(f"the same dropout probability for every customer: {p} "
                                      "after each purchase")
        if b > self._edge[1] or a < self._edge[0]:
            name, value = ("b", b) if b > self._edge[1] else ("a", a)
            return (f"found no measurable dropout: {name} ran off to {value:.3g}, so every "
                    "customer counts as active for ever (limiting dropout probability "
                    f"a / (a + b) after each purchase: {p})")
        return super()._at_boundary()

    def _starts(self, data):
        base = self._initial(data)
        return [base, base + np.log([1.0, 0.25, 0.5, 1.5])]

    def _terms(self, r, alpha, a, b, x, tx, T):
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + T)
        repeat = x > 0
        a4 = np.where(
            repeat,
            np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + tx),
            -np.inf,
        )
        return a1, a2, a3, a4, repeat

    def _log_likelihood_rows(self, params, data):
        r, alpha, a, b = params
        x, tx, T = data["frequency"], data["recency"], data["T"]
        a1, a2, a3, a4, _ = self._terms(r, alpha, a, b, x, tx, T)
        return a1 + a2 + np.logaddexp(a3, a4)

    def _lookups(self, data):
        """Index the compressed rows by their distinct x, T and t_x (cached in ``data``).

        The transcendental parts of the likelihood depend on one of x, T or
        t_x alone, and each takes far fewer distinct values than there are
        rows; they are evaluated once per distinct value and gathered. The
        distinct values come from the compression (``data["_codes"]``) when
        it provides them.
        """
        cached = data.get("_bgnbd")
        if cached is not None:
            return cached
        x, w = data["frequency"], data["weights"]
        xu, xi = BaseModel._distinct(data, "frequency")
        Tu, Ti = BaseModel._distinct(data, "T")
        tu, ti = BaseModel._distinct(data, "recency")
        # rows with the dropout term: repeat buyers (BG/NBD), everyone (MBG/NBD)
        rep = np.ones(len(x), dtype=bool) if self._shift else x > 0
        cached = {
            "xu": xu, "Wx": np.bincount(xi, weights=w, minlength=len(xu)),
            "Tu": Tu, "WT": np.bincount(Ti, weights=w, minlength=len(Tu)),
            "XWT": np.bincount(Ti, weights=w * x, minlength=len(Tu)),
            "tu": tu, "ti": ti[rep], "Ti_rep": Ti[rep], "xi_rep": xi[rep],
            "x_rep": x[rep], "w_rep": w[rep], "n": float(w.sum()),
        }
        data["_bgnbd"] = cached
        return cached

    def _nll(self, log_params, data, hessian=False):
        """Negative log-likelihood, its gradient and (optionally) Hessian in log-parameters.

        Per customer, ``LL = l(x) + r log α - (r + x) log(α + T) + [x > 0] softplus(d)``
        with ``d = log a - log(b + x - 1) + (r + x) (log(α + T) - log(α + t_x))``
        (FHL 2005, eq. 6, written on the log scale). ``l(x)`` and the
        ``log(α + T)`` term are summed over distinct x and T; only the
        softplus term visits every (compressed) repeat-buyer row, in blocks
        (:func:`_repeat_sums`). MBG/NBD (``_shift = 1``) has the softplus
        term on every row, with ``b + x`` for ``b + x - 1`` and ``x + 1`` for
        ``x`` in the beta-function terms.
        """
        return self._memoized(data, log_params, hessian,
                              lambda: self._nll_eval(log_params, data, hessian))

    def _nll_eval(self, log_params, data, hessian):
        theta = np.exp(log_params)
        r, alpha, a, b = theta
        c = self._lookups(data)
        xu, Wx, Tu, WT, XWT, n = c["xu"], c["Wx"], c["Tu"], c["WT"], c["XWT"], c["n"]
        RT = r * WT + XWT  # weight of log(alpha + T): sum of (r + x) over customers with T
        k = xu + self._shift  # x in BG/NBD's beta terms, x + 1 in MBG/NBD's
        # terms in x alone (summed with the weight of each distinct x)
        lx = (gammaln(r + xu) - gammaln(r) + gammaln(a + b) + gammaln(b + k) - gammaln(b)
              - gammaln(a + b + k))
        log_aT = np.log(alpha + Tu)
        inv_aT = 1.0 / (alpha + Tu)
        ll = vdot(Wx, lx) + r * np.log(alpha) * n - vdot(RT, log_aT)
        dropout = k > 0  # rows whose likelihood has the dropout term
        inv_bx = np.where(dropout, 1.0 / np.where(dropout, b + k - 1, 1.0), 0.0)
        log_c = np.log(a) + np.log(np.where(dropout, inv_bx, 1.0))
        sums = _repeat_sums(c, r, log_c, inv_bx, log_aT, inv_aT, np.log(alpha + c["tu"]),
                            1.0 / (alpha + c["tu"]), hessian)
        ll += sums[0]
        s_D, s_E, s_sig, s_sigb = sums[1:5]
        psi_rx, psi_ab, psi_abx, psi_bx = psi(r + xu), psi(a + b), psi(a + b + k), psi(b + k)
        grad = np.array([
            vdot(Wx, psi_rx) - n * (psi(r) - np.log(alpha)) - vdot(WT, log_aT) + s_D,
            n * r / alpha - vdot(RT, inv_aT) + s_E,
            vdot(Wx, psi_ab - psi_abx) + s_sig / a,
            vdot(Wx, psi_ab + psi_bx - psi(b) - psi_abx) - s_sigb,
        ])
        if not hessian:
            return -ll, self._to_log_scale(theta, grad)
        (h_DD, h_D, h_Db, h_DE, h_EE, h_E, h_Eb, h_q, h_qb, h_bb) = sums[5:]
        t_ab, t_abx = polygamma(1, a + b), polygamma(1, a + b + k)
        h_ab_x = vdot(Wx, t_ab - t_abx)
        hess = np.empty((4, 4))
        hess[0, 0] = vdot(Wx, polygamma(1, r + xu)) - n * polygamma(1, r) + h_DD
        hess[0, 1] = n / alpha - vdot(WT, inv_aT) + h_DE
        hess[0, 2] = h_D / a
        hess[0, 3] = -h_Db
        hess[1, 1] = -n * r / alpha**2 + vdot(RT, inv_aT**2) + h_EE
        hess[1, 2] = h_E / a
        hess[1, 3] = -h_Eb
        hess[2, 2] = h_ab_x + (h_q - s_sig) / a**2
        hess[2, 3] = h_ab_x - h_qb / a
        hess[3, 3] = h_ab_x + vdot(Wx, polygamma(1, b + k)) - n * polygamma(1, b) + h_bb
        hess = np.triu(hess) + np.triu(hess, 1).T
        return -ll, *self._to_log_scale(theta, grad, hess)

    # ------------------------------------------------------------------ predictions

    def expected_purchases(self, t, covariates: pd.DataFrame | None = None
                           ) -> np.ndarray | pd.Series:
        """Return the expected repeat purchases of a new customer in ``(0, t]``: E[X(t)].

        Parameters
        ----------
        t : float or array-like
            Time since the first purchase, in the model's unit.
        covariates : pandas.DataFrame, optional
            A model with covariates: new customers' covariates, one row each
            (then ``t`` is one number). Without: the average over the
            covariate patterns of the customers fitted.

        Returns
        -------
        numpy.ndarray or pandas.Series
            A Series indexed like ``covariates`` when they are given.
        """
        return self._new_customers(t, covariates)

    def _new_customer(self, params, t):
        r, alpha, a, b = params
        return alive_purchases(r, alpha, a, b, t)

    def _log_alive_odds(self, r, alpha, a, b, x, tx, T):
        """Log-odds against being alive: log(δ(x>0) · a/(b+x-1) · ((α+T)/(α+tx))^(r+x)).

        Kept on the log scale: for a customer with a thousand repeat purchases
        and a long silence the odds themselves overflow a float.
        """
        repeat = x > 0
        log_odds = (np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0))
                    + (r + x) * (np.log(alpha + T) - np.log(alpha + tx)))
        return np.where(repeat, log_odds, -np.inf)

    def probability_alive(self, summary: pd.DataFrame,
                          covariates: pd.DataFrame | None = None) -> pd.Series:
        """Probability that each customer is still active at the end of observation.

        Parameters
        ----------
        summary : pandas.DataFrame
            ``frequency``, ``recency``, ``T`` per customer.
        covariates : pandas.DataFrame, optional
            A model with covariates: rows for customers not among those it was
            fitted on (the others' rows are kept from the fit).

        Returns
        -------
        pandas.Series
            Indexed like ``summary``.
        """
        index, d = self._as_arrays(summary)
        out = np.empty(len(index))
        for rows, (r, alpha, a, b) in self._groups(index, covariates):
            out[rows] = expit(-self._log_alive_odds(r, alpha, a, b, d["frequency"][rows],
                                                    d["recency"][rows], d["T"][rows]))
        return pd.Series(out, index=index, name="p_alive")

    def predict_purchases(self, summary: pd.DataFrame, t,
                          covariates: pd.DataFrame | None = None) -> pd.Series:
        """Return each customer's expected purchases in the next ``t`` units, given its history.

        Parameters
        ----------
        summary : pandas.DataFrame
            ``frequency``, ``recency``, ``T`` per customer.
        t : float
            Horizon, in the model's unit.
        covariates : pandas.DataFrame, optional
            As for :meth:`probability_alive`.

        Returns
        -------
        pandas.Series
            Indexed like ``summary``.
        """
        index, d = self._as_arrays(summary)
        out = np.empty(len(index))
        for rows, (r, alpha, a, b) in self._groups(index, covariates):
            x, tx, T = d["frequency"][rows], d["recency"][rows], d["T"][rows]
            # FHL 2005 eq. 10: the posterior of an active customer is Gamma(r + x, α + T) for
            # the rate and Beta(a, b + x) for the dropout probability
            body = alive_purchases(r + x, alpha + T, a, b + x + self._shift, float(t))
            out[rows] = body * expit(-self._log_alive_odds(r, alpha, a, b, x, tx, T))
        return pd.Series(out, index=index, name="expected_purchases")


class ModifiedBetaGeoModel(BetaGeoModel):
    """MBG/NBD (Batislam, Denizel & Filiztekin 2007) [2]_.

    Like BG/NBD, but a customer may also drop out right after the first
    purchase, so one-time buyers can be inactive. Parameters ``r``, ``alpha``,
    ``a``, ``b``; same attributes and methods as :class:`BetaGeoModel`.
    """

    _shift = 1

    def _log_likelihood_rows(self, params, data):
        r, alpha, a, b = params
        x, tx, T = data["frequency"], data["recency"], data["T"]
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, b + x + 1) - betaln(a, b)
        a3 = -(r + x) * np.log(alpha + T)
        a4 = np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + tx)
        return a1 + a2 + np.logaddexp(a3, a4)

    def _new_customer(self, params, t):
        r, alpha, a, b = params
        # a new customer drops out after the first purchase with probability a / (a + b);
        # one who stays has Beta(a, b + 1) as dropout probability
        return b / (a + b) * alive_purchases(r, alpha, a, b + 1, t)

    def _log_alive_odds(self, r, alpha, a, b, x, tx, T):
        return np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))


def _dropout_words(p: float) -> str:
    """Format a dropout probability for a sentence: ``"1.3 %"``, ``"below 0.01 %"``."""
    return "below 0.01 %" if p < 1e-4 else f"{100 * p:.2g} %"


#: Rows per block in :func:`_repeat_sums` (temporaries stay in cache).
_BLOCK = 1 << 16


def _repeat_sums(c, r, log_c, inv_bx, log_aT, inv_aT, log_atx, inv_atx, hessian):
    """Sum the softplus term and its derivatives over the repeat-buyer rows.

    With ``D = log(α+T) - log(α+t_x)``, ``E = 1/(α+T) - 1/(α+t_x)``,
    ``d = log c_x + (r+x) D``, ``σ = logistic(d)`` and ``q = σ(1-σ)``, returns
    (weighted by ``w``): ``Σ softplus(d)``, ``Σ σD``, ``Σ σ(r+x)E``, ``Σ σ``,
    ``Σ σ/(b+x-1)`` and, when ``hessian``, the ten second-order sums used by
    :meth:`BetaGeoModel._nll`.
    """
    Ti, ti, xi, xr, wr = c["Ti_rep"], c["ti"], c["xi_rep"], c["x_rep"], c["w_rep"]
    out = np.zeros(15 if hessian else 5)
    for lo in range(0, len(wr), _BLOCK):
        sl = slice(lo, lo + _BLOCK)
        T_i, t_i, x_i, w = Ti[sl], ti[sl], xi[sl], wr[sl]
        rx = r + xr[sl]
        D = log_aT.take(T_i)
        D -= log_atx.take(t_i)
        d = rx * D
        d += log_c.take(x_i)
        e = np.exp(-np.abs(d))
        soft = np.log1p(e)
        soft += np.maximum(d, 0.0)
        sig = 1.0 / (1.0 + e)
        np.multiply(sig, e, out=sig, where=d < 0)  # logistic(d) for either sign of d
        ws = w * sig
        E = inv_aT.take(T_i)
        E -= inv_atx.take(t_i)
        rxE = rx * E
        ib = inv_bx.take(x_i)
        part = [vdot(w, soft), vdot(ws, D), vdot(ws, rxE), ws.sum(), vdot(ws, ib)]
        if hessian:
            wq = ws * (1.0 - sig)
            qD, qE = wq * D, wq * rxE
            F = inv_atx.take(t_i) ** 2 - inv_aT.take(T_i) ** 2
            part += [
                vdot(qD, D), qD.sum(), vdot(qD, ib), vdot(qD, rxE) + vdot(ws, E),
                vdot(qE, rxE) + vdot(ws * rx, F), qE.sum(), vdot(qE, ib), wq.sum(),
                vdot(wq, ib), vdot(wq + ws, ib * ib),
            ]
        out += part
    return out


#: Terms of the series in :func:`alive_purchases`.
_SERIES_TERMS = 40
#: The closed form is replaced by the series where its factor (a + b - 1) / (a - 1) exceeds this.
_LARGE_FACTOR = 1e3
#: Within this distance of a = 1 the closed form divides by ~0; it is interpolated across.
_NEAR_ONE = 1e-5


def alive_purchases(r, alpha, a, b, t) -> np.ndarray:
    """Return the expected purchases in the next ``t`` of a customer active now (BG/NBD), ≥ 0.

    With the purchase rate ``λ ~ Gamma(r, α)`` and the dropout probability
    ``p ~ Beta(a, b)`` (a customer's posterior: ``r + x``, ``α + T``,
    ``b + x``), the expectation ``E[(1 - (α / (α + p t))^r) / p]`` is (FHL
    2005, eq. 10 without P(alive)) [1]_

    ``(a + b - 1) / (a - 1) · [1 - (α / (α + t))^r · 2F1(r, b; a + b - 1; t / (α + t))]``.

    That closed form subtracts two nearly equal numbers and multiplies the
    difference by ``(a + b - 1) / (a - 1)``: when ``b`` is large (a fit at the
    no-dropout boundary, ``b`` of 1e8-1e10) or ``a`` is near 1, rounding
    and the hypergeometric function's own error are multiplied by up to
    1e10 and the result can be negative (-5,047 purchases at ``b = 1e10``,
    ``a = 0.02``, where the answer is 0.27). Three safeguards, each used only
    where the closed form is unreliable, so that elsewhere predictions equal
    lifetimes':

    * the series (Pfaff's transformation of the 2F1 [2]_, the factor
      ``a - 1`` cancelled)
      ``Σ_{k≥1} (-1)^(k+1) (r)_k (a)_(k-1) / ((a + b)_(k-1) k!) · (t / α)^k``,
      wherever the factor ``(a + b - 1) / (a - 1)`` exceeds 1,000, the
      series' terms decrease from the first and the 40th is below 1e-16 of
      the sum: an alternating series of decreasing terms is accurate to
      rounding and positive. Its terms shrink by about ``r t / (α (a + b))``,
      so it covers every large ``b``; as ``b → ∞`` it tends to ``r t / α``,
      the no-dropout (NBD) expectation;
    * within 1e-5 of ``a = 1``, linear interpolation between the closed form
      at ``a = 1 ± 1e-5`` (relative error below 1e-6);
    * where the closed form still overflows or is not positive, the
      expectation itself, integrated numerically over the dropout probability
      on the logit scale.

    Parameters
    ----------
    r, alpha : array-like
        Shape and rate of the Gamma purchase rate.
    a, b : float or array-like
        The Beta distribution of the dropout probability.
    t : float or array-like
        Horizon, in the model's unit.

    Returns
    -------
    numpy.ndarray
        Broadcast over the arguments.

    References
    ----------
    .. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting your
       customers" the easy way. Marketing Science 24(2), 275-284, eq. 10.
    .. [2] Abramowitz, M. and Stegun, I. A. (1964). Handbook of Mathematical
       Functions, 15.3.4.
    """
    r, alpha, a, b, t = np.broadcast_arrays(*(np.asarray(v, dtype=float)
                                              for v in (r, alpha, a, b, t)))
    shape = r.shape
    r, alpha, a, b, t = (v.ravel() for v in (r, alpha, a, b, t))
    u = t / alpha
    out = np.full(r.shape, np.nan)
    with np.errstate(all="ignore"):
        # the series where the closed form's factor (a + b - 1) / (a - 1) is large and the
        # series' first and last ratios of terms are small (cheap to test)
        last = _SERIES_TERMS - 1
        cand = np.flatnonzero((np.abs(a + b - 1) > _LARGE_FACTOR * np.abs(a - 1))
                              & (u * (r + 1) * a / (2 * (a + b)) < 0.5)
                              & (u * (r + last) * (a + last - 1) / ((a + b + last - 1) * (last + 1))
                                 < 1))
        rc, ac, bc, uc = r[cand], a[cand], b[cand], u[cand]
        term = rc * uc
        total = term.copy()
        ratio_max = np.zeros_like(total)
        for k in range(1, _SERIES_TERMS):
            ratio = (rc + k) * (ac + k - 1) / ((ac + bc + k - 1) * (k + 1)) * uc
            ratio_max = np.maximum(ratio_max, ratio)
            term = -term * ratio
            total += term
        ok = (ratio_max < 1) & (np.abs(term) <= 1e-16 * np.abs(total)) & np.isfinite(total)
        out[cand[ok]] = total[ok]
    need = np.isnan(out)
    far = need & (np.abs(a - 1) >= _NEAR_ONE)
    out[far] = _closed_form(r[far], alpha[far], a[far], b[far], t[far])
    near = need & ~far
    if near.any():
        args = r[near], alpha[near], b[near], t[near]
        below = _closed_form(args[0], args[1], 1 - _NEAR_ONE, *args[2:])
        above = _closed_form(args[0], args[1], 1 + _NEAR_ONE, *args[2:])
        w = (a[near] - 1 + _NEAR_ONE) / (2 * _NEAR_ONE)
        out[near] = (1 - w) * below + w * above
    valid = (np.isfinite(r + alpha + a + b + t) & (r > 0) & (alpha > 0) & (a > 0) & (b > 0)
             & (t >= 0))  # NaN parameters give NaN, which the value functions refuse
    bad = valid & (~np.isfinite(out) | (out < 0) | ((out == 0) & (t > 0)))
    for i in np.flatnonzero(bad):
        out[i] = _integrated(r[i], alpha[i], a[i], b[i], t[i])
    out = out.reshape(shape)
    return out if out.ndim else out[()]


def _closed_form(r, alpha, a, b, t):
    """FHL (2005) eq. 10's closed form (see :func:`alive_purchases`)."""
    with np.errstate(all="ignore"):  # (…)^r of many purchases rounds to 0: exact
        z = t / (alpha + t)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r
                                        * hyp2f1(r, b, a + b - 1, z))


def _integrated(r, alpha, a, b, t) -> float:
    """``E[(1 - (1 + p t / α)^-r) / p]`` over ``p ~ Beta(a, b)``, by quadrature in logit(p)."""
    from scipy import integrate

    u, log_norm = t / alpha, betaln(a, b)

    def integrand(y):
        log_p, log_q = -np.logaddexp(0.0, -y), -np.logaddexp(0.0, y)
        p = np.exp(log_p)
        g = -np.expm1(-r * np.log1p(p * u)) / p if p > 0 else r * u
        return g * np.exp(a * log_p + b * log_q - log_norm)

    mode = np.log(a / b)
    return float(sum(integrate.quad(integrand, lo, hi, epsabs=0.0, epsrel=1e-11, limit=500)[0]
                     for lo, hi in ((-np.inf, mode), (mode, np.inf))))
