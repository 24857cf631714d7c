"""Keeping fitted models: from_params at published parameters, save/load, refusal of bad files."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from crmstats import DataError, clv
from crmstats.datasets import load_cdnow, load_donations
from crmstats.estimator import load_model
from crmstats.modelfile import MAX_MODEL_FILE_BYTES

pytestmark = pytest.mark.filterwarnings("ignore::crmstats.DataWarning")

#: Fader, Hardie & Lee (2005), table 1: BG/NBD on the CDNOW sample, weeks.
FHL_2005 = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


@pytest.fixture(scope="module")
def cdnow():
    return clv.calibration_holdout_split(load_cdnow("sample"), calibration_end="1997-09-30",
                                         observation_end="1998-06-30", period="D", time_unit="W")


def test_bgnbd_at_published_parameters_gives_the_published_expectation():
    """E[X(39) | x=2, t_x=30.43, T=38.86] = 1.226 at FHL's estimates.

    The figure is Hardie's BG/NBD spreadsheet's for the paper's example customer
    (Fader, Hardie & Lee 2005, section 5), checked to 1e-3 in lifetimes' tests
    (test_conditional_expectation_returns_same_value_as_Hardie_excel_sheet).
    """
    model = clv.BetaGeoModel.from_params(FHL_2005, time_unit="W")
    one = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
    assert model.predict_purchases(one, 39).iloc[0] == pytest.approx(1.226, abs=5e-4)
    assert not model.fitted_here_ and model.converged_ is None and model.boundary_ is None
    assert model.summary_["std_err"].isna().all()
    assert list(model.params_.index) == ["r", "alpha", "a", "b"]
    assert model.time_unit_ == "W"


def test_from_params_takes_standard_errors_and_checks_its_input():
    model = clv.GammaGammaModel.from_params({"p": 6.25, "q": 3.74, "v": 15.44},
                                            std_err={"p": 0.5})
    s = model.summary_
    assert s.loc["p", "std_err"] == 0.5 and s.loc["p", "lower_95"] < 6.25 < s.loc["p", "upper_95"]
    assert np.isnan(s.loc["q", "std_err"])
    # Fader, Hardie & Lee (2005, JMR): population mean spend p v / (q - 1)
    assert model.population_mean() == pytest.approx(6.25 * 15.44 / 2.74)
    with pytest.raises(DataError, match="exactly r, alpha, a, b"):
        clv.BetaGeoModel.from_params({"r": 1, "alpha": 2, "a": 1})
    with pytest.raises(DataError, match="'b' must be a positive"):
        clv.BetaGeoModel.from_params({**FHL_2005, "b": -1})
    with pytest.raises(DataError, match="'r' must be a positive"):
        clv.BetaGeoModel.from_params({**FHL_2005, "r": float("nan")})
    with pytest.raises(DataError, match="time_unit"):
        clv.BetaGeoModel.from_params(FHL_2005, time_unit="fortnight")


def _fits(cdnow):
    donations = load_donations()
    return {
        "BetaGeoModel": (clv.BetaGeoModel().fit(cdnow), cdnow),
        "ModifiedBetaGeoModel": (clv.ModifiedBetaGeoModel().fit(cdnow), cdnow),
        "ParetoNBDModel": (clv.ParetoNBDModel().fit(cdnow), cdnow),
        "GammaGammaModel": (clv.GammaGammaModel().fit(cdnow), cdnow),
        "BetaGeoBetaBinomModel": (clv.BetaGeoBetaBinomModel().fit(donations), donations),
        "ShiftedBetaGeoModel": (clv.ShiftedBetaGeoModel().fit([1000, 631, 468, 382, 326]),
                                None),
    }


def _predictions(model, data):
    """Every prediction a CLV model makes, on ``data`` where it takes one."""
    out = {}
    for name, args in [("predict_purchases", (data, 39)), ("probability_alive", (data,)),
                       ("expected_spend", (data,)), ("expected_purchases", (np.arange(60),)),
                       ("population_mean", ()), ("survival", (np.arange(12),)),
                       ("retention_rate", (np.arange(1, 12),)), ("derl", (0.1, 2))]:
        method = getattr(model, name, None)
        if method is None or (data is None and args and args[0] is None):
            continue
        out[name] = np.asarray(method(*args), dtype=float)
    return out


def test_saved_and_rebuilt_models_predict_exactly_what_the_fitted_ones_did(cdnow, tmp_path):
    for name, (model, data) in _fits(cdnow).items():
        path = tmp_path / f"{name}.json"
        model.save(path)
        loaded = type(model).load(path)
        assert type(loaded) is type(model) and loaded.fitted_here_
        assert type(load_model(path)) is type(model)
        rebuilt = type(model).from_params(model.params_, time_unit=model.time_unit_,
                                          period=model.period_)
        pd.testing.assert_frame_equal(loaded.summary_, model.summary_)
        pd.testing.assert_series_equal(loaded.params_, model.params_)
        for attr in ("n_obs_", "converged_", "boundary_", "log_likelihood_", "time_unit_",
                     "period_", "n_rows_"):
            assert getattr(loaded, attr) == getattr(model, attr), (name, attr)
        pd.testing.assert_frame_equal(loaded.variance_matrix_, model.variance_matrix_)
        expected = _predictions(model, data)
        assert expected, name
        for other in (loaded, rebuilt):
            got = _predictions(other, data)
            assert got.keys() == expected.keys()
            for key in expected:
                np.testing.assert_allclose(got[key], expected[key], rtol=1e-12, atol=0,
                                           err_msg=f"{name}.{key}")
        # the file is plain JSON: no pickle, readable by anything
        assert json.loads(path.read_text())["class"] == name


def test_a_model_fitted_on_weeks_refuses_a_daily_summary(cdnow, tmp_path):
    model = clv.BetaGeoModel().fit(cdnow)
    model.save(tmp_path / "m.json")
    daily = clv.calibration_holdout_split(load_cdnow("sample"), calibration_end="1997-09-30",
                                          observation_end="1998-06-30", period="D", time_unit="D")
    for m in (clv.BetaGeoModel.load(tmp_path / "m.json"),
              clv.BetaGeoModel.from_params(FHL_2005, time_unit="W")):
        with pytest.raises(DataError, match="time_unit='W'.*time_unit='D'"):
            m.predict_purchases(daily, 39)


_SCORE = """
import sys
from crmstats import clv
from crmstats.datasets import load_cdnow
model = clv.BetaGeoModel.load(sys.argv[1])
summary = clv.rfm_summary(load_cdnow("sample"), observation_end="1998-03-31", period="D",
                          time_unit="W")
model.predict_purchases(summary, 13).to_frame().to_csv(sys.argv[2])
"""


def test_a_scheduled_job_scores_new_customers_with_last_months_model(tmp_path):
    """Fit on one period, save; a fresh process loads the file and scores a later summary."""
    tx = load_cdnow("sample")
    old = clv.rfm_summary(tx, observation_end="1997-12-31", period="D", time_unit="W")
    model = clv.BetaGeoModel().fit(old)
    model.save(tmp_path / "model.json")
    subprocess.run([sys.executable, "-c", _SCORE, str(tmp_path / "model.json"),
                    str(tmp_path / "scores.csv")], check=True, timeout=300)
    scores = pd.read_csv(tmp_path / "scores.csv", index_col=0, dtype={0: str})
    new = clv.rfm_summary(tx, observation_end="1998-03-31", period="D", time_unit="W")
    assert len(scores) == len(new) > len(old) * 0.9
    np.testing.assert_allclose(scores["expected_purchases"].to_numpy(),
                               model.predict_purchases(new, 13).to_numpy(), rtol=1e-12)


def _write(path, data):
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


@pytest.fixture(scope="module")
def good(cdnow):
    return clv.BetaGeoModel().fit(cdnow).to_dict()


@pytest.mark.parametrize("change, key", [
    (lambda d: d.update({"class": "os.system"}), "class"),
    (lambda d: d.update({"format": "pickle"}), "format"),
    (lambda d: d.update({"format_version": 99}), "format_version"),
    (lambda d: d["params"].update({"values": [0.2, 4, 0.8, "x"]}), "params.values[3]"),
    (lambda d: d["params"].update({"values": [0.2, 4, 0.8, None]}), "params.values[3]"),
    (lambda d: d["params"].update({"names": ["r", "alpha", "a", "c"]}), "params"),
    (lambda d: [d["params"].update({"values": [0.2, 4, 0.8, -2]}),
                d["summary"]["columns"].update({"estimate": [0.2, 4, 0.8, -2]})], "params"),
    (lambda d: d["hyperparameters"].update({"evil": 1}), "hyperparameters.evil"),
    (lambda d: d["hyperparameters"].update({"maxiter": "many"}), "hyperparameters.maxiter"),
    (lambda d: d["hyperparameters"].update({"tol": [1, 2]}), "hyperparameters.tol"),
    (lambda d: d["fit"].update({"time_unit": "fortnight"}), "fit.time_unit"),
    (lambda d: d["fit"].update({"n_obs": -5}), "fit.n_obs"),
    (lambda d: d["fit"].update({"converged": "yes"}), "fit.converged"),
    (lambda d: d.update({"variance_matrix": [[1.0]]}), "variance_matrix"),
    (lambda d: d["summary"]["columns"].update({"estimate": [1, 2, 3, 4]}),
     "summary.columns.estimate"),
    (lambda d: d["summary"]["columns"].update({"__class__": [1, 2, 3, 4]}),
     "summary.columns.__class__"),
    (lambda d: d.pop("params"), "params"),
])
def test_bad_model_files_are_data_errors_naming_file_and_key(good, tmp_path, change, key):
    data = json.loads(json.dumps(good))
    change(data)
    path = _write(tmp_path / "bad.json", data)
    with pytest.raises(DataError) as err:
        clv.BetaGeoModel.load(path)
    assert str(path) in str(err.value) and repr(key) in str(err.value)
    assert err.value.column == key


def test_files_that_are_not_model_files_are_refused(good, tmp_path):
    cases = {
        "nan.json": json.dumps(good).replace("0.0", "NaN", 1),
        "text.json": "not json at all",
        "list.json": "[1, 2, 3]",
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "binary.json": b"\x80\x04\x95pickle".decode("latin-1"),
    }
    for name, text in cases.items():
        path = _write(tmp_path / name, text)
        with pytest.raises(DataError, match="model file"):
            load_model(path)
    big = tmp_path / "big.json"
    big.write_text(" " * (MAX_MODEL_FILE_BYTES + 1))
    with pytest.raises(DataError, match="bytes"):
        load_model(big)
    with pytest.raises(DataError, match="cannot be read"):
        load_model(tmp_path / "missing.json")
    # a file of another class is refused by the class's own load
    gg = tmp_path / "gg.json"
    clv.GammaGammaModel.from_params({"p": 6.25, "q": 3.74, "v": 15.44}).save(gg)
    with pytest.raises(DataError, match="not a BetaGeoModel"):
        clv.BetaGeoModel.load(gg)
    assert not load_model(gg).fitted_here_
