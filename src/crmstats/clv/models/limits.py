"""The one-dropout limit of the BTYD models, in words a reader of the book understands.

Pareto/NBD's dropout rates vary across customers as a Gamma(s, β) distribution,
BG/NBD's dropout probabilities as a Beta(a, b) one. When the data show no
such variation the likelihood keeps rising as the distribution narrows to a
point (s, β → ∞ with s / β fixed; a, b → ∞ with a / (a + b) fixed): the fit
ends on that ridge, at the model's limit with one dropout rate (probability)
for every customer. That limit is a model in its own right — heterogeneous
purchase rates, a common dropout — and its predictions (and so its holdout
error) are as real as any other fit's; only the standard errors of the two
parameters that run off mean nothing. So a fit there is ranked like any
other (:func:`crmstats.clv.compare_models`, the CLV study's findings), and
its ``boundary_`` says what the limit means without parameter names, in a
clause that starts with :data:`NO_DIFFERENCES` (:func:`is_one_dropout_limit`).
"""

from __future__ import annotations

__all__ = ["NO_DIFFERENCES", "is_one_dropout_limit", "one_dropout_clause"]

#: How every such clause starts (it follows the fit's name).
NO_DIFFERENCES = "found no differences between customers in how soon they stop buying"


def one_dropout_clause(what: str) -> str:
    """Return the ``boundary_`` clause of a fit at the limit: ``what`` it predicts with."""
    return f"{NO_DIFFERENCES}, so it predicts with {what}"


def is_one_dropout_limit(problem) -> bool:
    """Whether a :func:`crmstats.clv.fit_problem` clause is this limit and nothing else.

    A fit that also did not converge has the clause "did not converge and
    ...", which does not qualify: it is not ranked.
    """
    return isinstance(problem, str) and problem.startswith(NO_DIFFERENCES)
