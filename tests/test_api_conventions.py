"""The API conventions of README "API conventions", checked on every public signature.

Every public function, class and method of every domain package is inspected;
a new function that breaks a convention fails here with its name.
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
                for attr, member in vars(obj).items():
                    if attr.startswith("_") and attr != "__init__":
                        continue
                    if inspect.isfunction(member):
                        out.append((f"{dom}.{name}.{attr}", member, obj))
            elif inspect.isfunction(obj):
                out.append((f"{dom}.{name}", obj, None))
    return out


#: Known deviations in code another helper owns, tracked here so they cannot be forgotten:
#: strict xfails turn into failures as soon as the code follows the convention.
KNOWN: dict[str, str] = {}


def _cases(pairs):
    return [pytest.param(n, f, id=n, marks=pytest.mark.xfail(strict=True, reason=KNOWN[n]))
            if n in KNOWN else pytest.param(n, f, id=n) for n, f in pairs]


CALLABLES = _public_callables()
FUNCTIONS = [(n, f) for n, f, _ in CALLABLES if inspect.isfunction(f)]


def _params(f):
    return [p for p in inspect.signature(f).parameters.values() if p.name != "self"]


def test_there_is_a_public_api_to_check():
    assert len(FUNCTIONS) > 100
    names = {n for n, _ in FUNCTIONS}
    assert {"clv.fit_value", "churn.retention_matrix", "funnel.pipeline",
            "clv.winback_list", "churn.CoxModel.fit"} <= names


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
              if (p.name == "model" or p.name.endswith("_model")) and p.annotation != "str"]
    data = [i for i, n in enumerate(names) if n in DATA_NAMES]
    if not name.endswith(".__init__") and models and data and max(models) > min(data):
        problems.append(f"models must come before data: {names}")
    # 5. results are DataFrames/Series/frozen dataclasses, never dicts
    ret = inspect.signature(func).return_annotation
    if isinstance(ret, str) and ret.replace(" ", "").startswith("dict"):
        problems.append(f"returns {ret}: return a frozen dataclass")
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
