"""Saved models for the scores: read the model files ``scores export --model`` names.

A model file is untrusted input (:func:`crmstats.load_model` bounds and checks
it); here it must also hold a model the customer 360 can value customers with.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from crmstats.exceptions import DataError

__all__ = ["SPEND_MODELS", "TRANSACTION_MODELS", "load_value_models"]

#: Model classes that predict purchases (the customer 360's transaction model), by reader name.
TRANSACTION_MODELS = {"BetaGeoModel": "BG/NBD", "ModifiedBetaGeoModel": "MBG/NBD",
                      "ParetoNBDModel": "Pareto/NBD"}
#: Model classes that predict spend per purchase.
SPEND_MODELS = {"GammaGammaModel": "Gamma-Gamma"}


def load_value_models(paths: Iterable[str | os.PathLike]) -> tuple[Any, Any]:
    """Read model files into a transaction model and a spend model (either may be None).

    Parameters
    ----------
    paths : iterable of path
        Model files written by :meth:`crmstats.estimator.Estimator.save`:
        at most one transaction model (BG/NBD, MBG/NBD or Pareto/NBD) and one
        spend model (Gamma-Gamma).

    Returns
    -------
    (transaction_model, spend_model)

    Raises
    ------
    DataError
        A file that cannot be read or is not a valid model file (naming the
        file and the key), a model of another kind, or two models of one kind.
    """
    from crmstats.estimator import load_model

    found: dict[str, tuple[Any, str]] = {}
    for path in paths:
        source = os.fspath(path)
        model = load_model(source)
        name = type(model).__name__
        role = ("transaction model" if name in TRANSACTION_MODELS
                else "spend model" if name in SPEND_MODELS else None)
        if role is None:
            kinds = ", ".join([*TRANSACTION_MODELS.values(), *SPEND_MODELS.values()])
            raise DataError(f"model file {source}: holds a {name}; the scores value customers "
                            f"with a transaction and a spend model ({kinds})", table=source)
        if role in found:
            raise DataError(f"model files {found[role][1]} and {source}: two {role}s; give one",
                            table=source)
        found[role] = (model, source)
    return (found.get("transaction model", (None,))[0], found.get("spend model", (None,))[0])
