"""Every public estimator, found automatically, behaves as README "API conventions" says.

Every :class:`~crmstats.estimator.Estimator` subclass that a crmstats package exports
(``__all__`` of each subpackage; a new package or a new estimator is found without an
edit here) is built with its defaults and checked:

* before ``fit``: ``is_fitted`` is False and every public method, property and fitted
  attribute (``*_``) — inherited ones included — raises ``NotFittedError``;
* ``fit`` returns ``self``; the fitted model has ``n_obs_``, ``converged_`` and, where it
  has one, a ``summary_`` in the one schema (:data:`~crmstats.estimator.SUMMARY_COLUMNS`);
* it is kept and rebuilt (``save``/``load``/``from_params`` predict identically: the
  parametrised round trip of ``tests/test_estimator_contract.py``) or says why not.

To cover a new estimator, give it a fit recipe: in ``_KEEPERS`` of
``tests/test_estimator_contract.py`` when it has a model file (the round trip is tested
there), else in :data:`FIT_ONLY` below; the data it is fitted on is built by the
``keeper_data`` fixture of that file (add a key there). Without a recipe its test fails
naming the estimator and where to add it.
"""

import importlib
import inspect
import pkgutil
import warnings

import numpy as np
import pytest

import crmstats
from crmstats import ConvergenceWarning, CRMStatsError, NotFittedError, attribution
from crmstats.estimator import SUMMARY_COLUMNS, Estimator
from crmstats.modelfile import MODEL_CLASSES
from tests.test_api_conventions import members
from tests.test_estimator_contract import (  # noqa: F401 (its fixtures, used here)
    _KEEPERS,
    NOT_PARAMETRIC,
    _all_estimator_classes,
    keeper_data,  # noqa: F811
    panel,
    summary,
)

pytestmark = pytest.mark.filterwarnings("ignore::crmstats.DataWarning")

#: Fit recipes of estimators without a model file: class name -> (data kind, fit(data)).
FIT_ONLY = {
    "MarkovAttribution": ("paths", lambda d: attribution.MarkovAttribution().fit(d)),
    "ShapleyAttribution": ("paths", lambda d: attribution.ShapleyAttribution().fit(d)),
}
#: Abstract bases: exported for subclassing, never fitted themselves.
ABSTRACT = {"BaseModel"}
#: Public methods that need no fitted model (besides fit and class/static methods).
NO_FIT_NEEDED = {"fit"}


def _exported_estimators() -> dict[str, type]:
    """Every Estimator subclass in the ``__all__`` of crmstats or any of its subpackages."""
    modules = [crmstats] + [importlib.import_module(f"crmstats.{info.name}")
                            for info in pkgutil.iter_modules(crmstats.__path__) if info.ispkg]
    out = {}
    for module in modules:
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if inspect.isclass(obj) and issubclass(obj, Estimator) and obj is not Estimator \
                    and obj.__name__ not in ABSTRACT and not inspect.isabstract(obj):
                out[obj.__name__] = obj
    return out


ESTIMATORS = _exported_estimators()


def test_estimators_are_found_and_every_one_is_public():
    assert {"BetaGeoModel", "GammaGammaModel", "CoxModel", "ShiftedBetaGeoHazardModel",
            "MarkovAttribution", "ShapleyAttribution", "IncrementalityModel",
            "LeadScoringModel"} <= set(ESTIMATORS)
    hidden = set(_all_estimator_classes()) - set(ESTIMATORS) - ABSTRACT
    assert not hidden, f"estimators no crmstats package exports (add them to an __all__): {hidden}"


def _recipe(name: str):
    if name in _KEEPERS:
        kind, fit = _KEEPERS[name][:2]
    elif name in FIT_ONLY:
        kind, fit = FIT_ONLY[name]
    else:
        pytest.fail(f"{name} has no fit recipe: add one to _KEEPERS in "
                    "tests/test_estimator_contract.py (if it has a model file) or to FIT_ONLY "
                    "in tests/test_estimator_behaviour.py, with its data in keeper_data")
    return kind, fit


def _placeholders(func):
    """Arguments for every required parameter (None): an unfitted model must refuse first."""
    args, kwargs = [], {}
    for p in list(inspect.signature(func).parameters.values())[1:]:
        if p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.kind is p.KEYWORD_ONLY:
            kwargs[p.name] = None
        else:
            args.append(None)
    return args, kwargs


def _fit(name, data, monkeypatch):
    """Fit ``name`` by its recipe; return (model, what fit returned, the instance fit ran on)."""
    kind, fit = _recipe(name)
    if kind not in data:
        pytest.fail(f"the fit recipe of {name} asks for data {kind!r}, which the keeper_data "
                    "fixture of tests/test_estimator_contract.py does not build")
    cls, calls = ESTIMATORS[name], []
    original = cls.fit

    def recording_fit(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls.append((self, out))
        return out

    monkeypatch.setattr(cls, "fit", recording_fit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = fit(data[kind])
    monkeypatch.undo()
    assert calls, f"the fit recipe of {name} does not call {name}.fit"
    return model, calls[-1]


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_estimator_behaves(name, keeper_data, monkeypatch):  # noqa: F811
    cls = ESTIMATORS[name]
    fresh = cls()  # every hyperparameter has a default
    assert not fresh.is_fitted
    model, (fitted_self, returned) = _fit(name, keeper_data, monkeypatch)
    assert returned is fitted_self, f"{name}.fit must return self"
    assert type(model) is cls and model.is_fitted

    # before fit, everything that needs a fitted model says so (inherited members too)
    public = [(a, k, f) for a, k, f in members(cls) if k in ("method", "property")
              and a != "__init__"]
    fitted_attrs = sorted(a for a in vars(model) if a.endswith("_") and not a.startswith("_"))
    assert "n_obs_" in fitted_attrs
    hyper = set(inspect.signature(cls.__init__).parameters)  # hyperparameters: readable unfitted
    wrong = []
    for attr, kind, member in public:
        if attr == "is_fitted" or attr in NO_FIT_NEEDED or attr in hyper:
            continue
        try:
            if kind == "property":
                getattr(fresh, attr)
            else:
                args, kwargs = _placeholders(member)
                getattr(fresh, attr)(*args, **kwargs)
        except NotFittedError:
            continue
        except Exception as exc:  # noqa: BLE001 - the test reports what was raised instead
            wrong.append(f"{attr} ({kind}) raised {type(exc).__name__}: {exc}")
        else:
            wrong.append(f"{attr} ({kind}) answered")
    for attr in fitted_attrs:
        try:
            getattr(fresh, attr)
        except NotFittedError:
            continue
        except Exception as exc:  # noqa: BLE001
            wrong.append(f"{attr} (fitted attribute) raised {type(exc).__name__}: {exc}")
        else:
            wrong.append(f"{attr} (fitted attribute) answered")
    assert not wrong, f"unfitted {name}: " + "; ".join(wrong)

    # what every fitted model has
    assert np.isfinite(model.n_obs_) and model.n_obs_ > 0
    assert getattr(model, "converged_", None) in (True, False, None)
    if hasattr(model, "summary_"):
        s = model.summary_
        assert list(s.columns) == [c for c in SUMMARY_COLUMNS if c in s.columns], name
        assert list(s.columns[:4]) == list(SUMMARY_COLUMNS[:4]), name
        assert s.index.is_unique and len(s) > 0
        est, se = s["estimate"].to_numpy(float), s["std_err"].to_numpy(float)
        lo, hi = s["lower_95"].to_numpy(float), s["upper_95"].to_numpy(float)
        assert np.isfinite(est).all(), name
        assert (se[np.isfinite(se)] >= 0).all(), name
        both = np.isfinite(lo) & np.isfinite(hi)
        assert ((lo <= est + 1e-12) & (est <= hi + 1e-12))[both].all(), name
        if "p_value" in s:
            p = s["p_value"].to_numpy(float)
            assert ((p >= 0) & (p <= 1))[np.isfinite(p)].all(), name

    # kept and rebuilt (the round trip is parametrised in test_estimator_contract.py) or why not
    if name in MODEL_CLASSES:
        assert name in _KEEPERS, f"{name} has a model file: add its round trip to _KEEPERS"
    else:
        assert name in NOT_PARAMETRIC, (f"{name} has no model file: add it to MODEL_CLASSES "
                                        "(crmstats.modelfile) or say why not in NOT_PARAMETRIC")
        with pytest.raises(CRMStatsError, match="cannot be saved"):
            model.to_dict()
        with pytest.raises(CRMStatsError, match="no parameters"):
            cls.from_params(None)
