"""The API conventions of README "API conventions", checked on every public signature.

Every public function, class and method of every domain package is inspected —
inherited methods, class and static methods and properties included, whatever
the annotations are (strings or real types, or none); a new function that breaks
a convention fails here with its name.
"""

import ast
import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

from crmstats.estimator import SUMMARY_COLUMNS, Estimator

DOMAINS = ["clv", "churn", "attribution", "funnel", "overview", "scores"]
SRC = Path(__file__).resolve().parents[1] / "src" / "crmstats"

#: Grouping is ``by=``; these names are not used for it.
GROUPING_NAMES = {"group_col", "cohort_col", "segment_col", "group_by", "groupby", "segment_by",
                  "group", "cohort_by"}
#: Names of the data a function works on (models come before them).
DATA_NAMES = {"summary", "transactions", "paths", "customers", "leads", "panel", "stage_events",
              "subscriptions", "tickets", "touchpoints", "conversions", "calibration_holdout",
              "values", "crm", "data", "lifetimes", "spend", "prospects", "contacts"}


def members(cls):
    """(name, kind, function) of a class's public members, inherited ones included.

    ``kind`` is "method", "property" (its getter), "classmethod" or "staticmethod"
    (their function). Members defined by ``object`` or outside crmstats (pandas'
    DataFrame methods on a subclass) and old names kept for one release
    (:func:`crmstats.vocabulary.renamed_attribute`) are left out.
    """
    out = []
    for attr in dir(cls):
        if attr.startswith("_") and attr != "__init__":
            continue
        owner = next((k for k in cls.__mro__ if attr in vars(k)), None)
        if owner is None or not owner.__module__.startswith("crmstats"):
            continue
        member, kind = inspect.getattr_static(cls, attr), "method"
        if isinstance(member, property):
            member, kind = member.fget, "property"
            if hasattr(member, "__renamed_to__"):
                continue
        elif isinstance(member, classmethod | staticmethod):
            member, kind = member.__func__, type(member).__name__
        if inspect.isfunction(member):
            out.append((attr, kind, member))
    return out


def _public_callables():
    """(qualified name, callable, owning class or None) for every public API member."""
    out = []
    for dom in DOMAINS:
        module = importlib.import_module(f"crmstats.{dom}")
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj):
                if dataclasses.is_dataclass(obj):
                    out.append((f"{dom}.{name}", obj, None))
                for attr, _, member in members(obj):
                    out.append((f"{dom}.{name}.{attr}", member, obj))
            elif inspect.isfunction(obj):
                out.append((f"{dom}.{name}", obj, None))
    return out


def _annotation(annotation) -> str:
    """The annotation as source text, whether the module wrote it as a string or a type."""
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        return annotation.replace(" ", "")
    return inspect.formatannotation(annotation).replace(" ", "")


#: Known deviations in code another helper owns, tracked here so they cannot be forgotten:
#: strict xfails turn into failures as soon as the code follows the convention.
KNOWN: dict[str, str] = {}

#: Retired names (README "Glossary") -> the name that replaced them.
RETIRED = {"ci": "level", "alpha": "level", "freq": "period", "cohort_freq": "period",
           "penalizer": "penalty", "n_boot": "n_bootstrap", "random_state": "seed",
           "rng": "seed", "churned_after": "lapsed_after"}
#: Where a retired name means another idea (the glossary says which).
RETIRED_OK = {
    "attribution.holdout_size": {"alpha"},  # the size of a planned test, not an interval level
    "attribution.holdout_plan": {"alpha"},
}
#: Members that return a dict and are not results (rule 5), and why.
NOT_RESULTS = {
    "to_dict": "a model's JSON-ready content (Estimator.to_dict), the model file's format",
    "models": "ValueFit.models: the fitted models by the names readers know, a lookup",
    "refit_options": "CLV models: the keyword arguments that repeat a fit (fit(**...))",
}


def _cases(pairs):
    def marks(n):
        if n in KNOWN:
            return [pytest.mark.xfail(strict=True, reason=KNOWN[n])]
        return []

    return [pytest.param(n, f, id=n, marks=marks(n)) for n, f in pairs]


CALLABLES = _public_callables()
FUNCTIONS = [(n, f) for n, f, _ in CALLABLES if inspect.isfunction(f)]


def _params(f):
    return [p for p in inspect.signature(f).parameters.values() if p.name != "self"]


def test_there_is_a_public_api_to_check():
    assert len(FUNCTIONS) > 100
    names = {n for n, _ in FUNCTIONS}
    assert {"clv.fit_value", "churn.retention_matrix", "funnel.pipeline",
            "clv.winback_list", "churn.CoxModel.fit"} <= names
    # inherited methods, class methods and properties are checked too
    assert {"clv.BetaGeoModel.save", "clv.BetaGeoModel.from_params", "churn.CoxModel.table",
            "clv.BetaGeoModel.fitted_here_", "funnel.LeadScoringModel.load"} <= names


@pytest.mark.parametrize(("name", "func"), _cases(FUNCTIONS))
def test_signature_follows_the_conventions(name, func):
    params = _params(func)
    problems = []
    for p in params:
        # 1. *_col only maps a caller's column onto a canonical one: default None, keyword
        if p.name.endswith("_col"):
            if p.default is not None:
                problems.append(f"{p.name}={p.default!r}: a *_col argument defaults to None "
                                "(the canonical column); it never picks another column")
            if p.kind is not p.KEYWORD_ONLY:
                problems.append(f"{p.name} must be keyword-only")
        # 2. grouping is by=
        if p.name in GROUPING_NAMES:
            problems.append(f"{p.name}: the grouping argument is called by")
        # 3. signatures are visible
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            problems.append(f"*{p.name}: spell the arguments out")
    # 4. models first, then data (positional arguments; a model named by a string, such
    # as a heuristic rule, is a setting, and a result dataclass's fields are not an API call)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = [p.name for p in positional]
    models = [i for i, p in enumerate(positional)
              if (p.name == "model" or p.name.endswith("_model"))
              and _annotation(p.annotation) != "str"]
    data = [i for i, n in enumerate(names) if n in DATA_NAMES]
    if not name.endswith(".__init__") and models and data and max(models) > min(data):
        problems.append(f"models must come before data: {names}")
    # 5. results are DataFrames/Series/frozen dataclasses, never dicts (annotations as
    # strings or as types); 6. and say what they are
    ret = _annotation(inspect.signature(func).return_annotation)
    if ret.startswith(("dict", "Dict", "typing.Dict", "collections.abc.Mapping")) \
            and name.rsplit(".", 1)[-1] not in NOT_RESULTS:
        problems.append(f"returns {ret}: return a frozen dataclass")
    if not ret and not name.endswith(".__init__") and not inspect.isclass(func):
        problems.append("no return annotation: annotate what it returns")
    # 7. one name per idea (README "Glossary")
    for p in params:
        if p.name in RETIRED and p.name not in RETIRED_OK.get(name, ()):
            problems.append(f"{p.name}: the glossary's name is {RETIRED[p.name]}")
    # 8. churn_probability is the probability of churn by a horizon
    if name.endswith(".churn_probability") and "horizon" not in {p.name for p in params}:
        problems.append("churn_probability takes horizon= (the probability of churn by it)")
    assert not problems, f"{name}: " + "; ".join(problems)


DATACLASSES = [(n, c) for n, c, _ in CALLABLES if inspect.isclass(c)]


@pytest.mark.parametrize(("name", "cls"), DATACLASSES, ids=[n for n, _ in DATACLASSES])
def test_result_dataclasses_are_frozen(name, cls):
    assert cls.__dataclass_params__.frozen, f"{name} is a result: make it frozen"


def _domain_sources():
    files = []
    for dom in DOMAINS:
        files += sorted((SRC / dom).rglob("*.py"))
    return files


def test_no_result_travels_in_attrs():
    """``DataFrame.attrs`` is not a result channel: nothing in a domain package writes it."""
    offenders = []
    for path in _domain_sources():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "attrs":
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not offenders, f".attrs used at {offenders}"


def _estimators():
    out = []
    for dom in DOMAINS:
        module = importlib.import_module(f"crmstats.{dom}")
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and callable(getattr(obj, "fit", None)):
                out.append((f"{dom}.{name}", obj))
    return out


ESTIMATORS = _estimators()


def test_every_domain_has_estimators_on_the_shared_base():
    assert {n.split(".")[0] for n, _ in ESTIMATORS} >= {"clv", "churn", "attribution", "funnel"}


@pytest.mark.parametrize(("name", "cls"), _cases(ESTIMATORS))
def test_estimator_follows_the_fitted_model_contract(name, cls):
    from crmstats import NotFittedError

    assert issubclass(cls, Estimator), f"{name} is not a crmstats.estimator.Estimator"
    model = cls()
    assert not model.is_fitted
    with pytest.raises(NotFittedError):
        model._check_fitted()


def test_summary_schema_is_one_schema():
    assert SUMMARY_COLUMNS == ("estimate", "std_err", "lower_95", "upper_95", "p_value")
