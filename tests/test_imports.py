"""The import structure: public names resolve lazily, heavy libraries load only when used.

Structural checks in fresh interpreters (which modules are in ``sys.modules``),
never timings; the import times are measured by ``benchmarks/imports.py``.
"""

import importlib
import json
import os
import subprocess
import sys

import pytest

from crmstats._lazy import _typing_imports
from tests.conftest import ROOT

PACKAGES = ["crmstats", "crmstats.attribution", "crmstats.book", "crmstats.churn",
            "crmstats.clv", "crmstats.clv.models", "crmstats.datasets", "crmstats.funnel",
            "crmstats.overview", "crmstats.scores"]
HEAVY = ["matplotlib", "seaborn", "scipy.stats", "statsmodels", "ibis", "duckdb", "papermill"]


def loaded_after(code: str) -> list[str]:
    """The HEAVY modules a fresh interpreter has loaded after running ``code``."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}  # this checkout's package
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_crmstats_loads_no_heavy_library():
    assert loaded_after("import crmstats") == []


@pytest.mark.parametrize("package", PACKAGES[1:])
def test_importing_a_subpackage_loads_no_heavy_library(package):
    assert loaded_after(f"import {package}") == []


@pytest.mark.parametrize(("code", "allowed"), [
    # a CLV script: the database engine, but no plotting, statistics or modelling library
    ("from crmstats.clv import BetaGeoModel, rfm_summary", {"ibis", "duckdb"}),
    ("from crmstats.clv import customer_lifetime_value, value_tiers", set()),
    ("from crmstats.attribution import MarkovAttribution, ShapleyAttribution", set()),
    ("from crmstats.churn import ShiftedBetaGeoHazardModel, survival_curves", set()),
    ("from crmstats.funnel import LeadScoringModel, auc", {"ibis", "duckdb"}),
    ("import crmstats; crmstats.load_crm", {"ibis", "duckdb"}),
])
def test_computations_do_not_import_plotting_or_unused_statistics(code, allowed):
    assert set(loaded_after(code)) <= allowed


def test_plotting_is_imported_by_the_plotting_functions():
    assert "matplotlib" in loaded_after("from crmstats.clv import plot_lorenz")


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves_and_is_listed(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert set(module.__all__) <= set(dir(module))
    # the lazy table (the TYPE_CHECKING block) and __all__ name the same things
    table = _typing_imports(ROOT / "src" / package.replace(".", "/") / "__init__.py", package)
    assert set(table) <= set(module.__all__)
    eager = {n for n in module.__all__ if n not in table}
    assert all(n in vars(module) for n in eager), eager
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        module.nope  # noqa: B018


def test_subpackages_import_as_attributes_and_with_from():
    import crmstats

    assert crmstats.clv.rfm_summary is importlib.import_module("crmstats.clv").rfm_summary
    from crmstats import attribution, churn, clv, funnel, overview  # noqa: F401

    assert clv.BetaGeoModel.__module__ == "crmstats.clv.models.beta_geo"
