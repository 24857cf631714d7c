"""`crmstats scores export --model`: value customers with saved models, read as untrusted files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crmstats import clv
from crmstats.cli import app
from tests.conftest import SMALL_DEMO

runner = CliRunner()


@pytest.fixture(scope="module")
def saved(tmp_path_factory, small_crm):
    """BG/NBD and Gamma-Gamma fitted on data up to an earlier date ("last month's model")."""
    folder = tmp_path_factory.mktemp("models")
    fit = clv.fit_value(small_crm.transactions, observation_end="2024-12-31")
    fit.transaction_model.save(folder / "bgnbd.json")
    fit.spend_model.save(folder / "gg.json")
    return folder, fit


def _export(tmp_path, *args):
    out = tmp_path / "scores.parquet"
    res = runner.invoke(app, ["scores", "export", SMALL_DEMO, "--to", str(out), *args])
    return res, out


def test_saved_models_value_the_customers_without_refitting(tmp_path, saved, small_crm):
    folder, fit = saved
    res, out = _export(tmp_path, "--model", str(folder / "bgnbd.json"),
                       "--model", str(folder / "gg.json"))
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(out).set_index("id")
    customers = frame[frame["kind"] == "customer"].dropna(subset=["clv"])
    # the reference: today's summary valued by the saved fit's own models
    as_of = pd.Timestamp(frame["as_of"].iloc[0])
    summary = clv.rfm_summary(small_crm.transactions, observation_end=as_of, freq="D",
                              time_unit="W")
    expected = clv.customer_lifetime_value(fit.transaction_model, fit.spend_model, summary)
    expected.index = expected.index.astype(str)
    np.testing.assert_allclose(customers["clv"], expected["clv"].reindex(customers.index),
                               rtol=1e-12)
    refit = clv.fit_value(small_crm.transactions)
    assert not np.allclose(refit.clv.to_numpy(), expected["clv"].to_numpy())  # not a refit
    assert customers["clv_lower_90"].isna().all()  # no bootstrap with saved models


def test_only_a_transaction_model_fits_the_spend_model(tmp_path, saved):
    folder, _ = saved
    res, out = _export(tmp_path, "--model", str(folder / "bgnbd.json"))
    assert res.exit_code == 0, res.output
    assert pd.read_parquet(out)["clv"].notna().any()


def _bad_files(folder, tmp_path):
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    negative = tmp_path / "negative.json"
    data = json.loads((folder / "bgnbd.json").read_text())
    data["params"]["values"][0] = -data["params"]["values"][0]
    data["summary"]["columns"]["estimate"][0] = data["params"]["values"][0]
    negative.write_text(json.dumps(data))
    other = tmp_path / "bgbb.json"
    clv.BetaGeoBetaBinomModel.from_params(
        {"alpha": 1.0, "beta": 2.0, "gamma": 3.0, "delta": 4.0}).save(other)
    return {"garbage": ([garbage], "garbage.json"),
            "negative": ([negative], "params"),
            "missing": ([tmp_path / "nowhere.json"], "nowhere.json"),
            "other kind": ([other], "BetaGeoBetaBinomModel"),
            "two of a kind": ([folder / "bgnbd.json", folder / "bgnbd.json"],
                              "two transaction models")}


def test_bad_model_files_are_clear_errors_before_anything_is_written(tmp_path, saved):
    folder, _ = saved
    for name, (files, words) in _bad_files(folder, tmp_path).items():
        args = [a for f in files for a in ("--model", str(f))]
        res, out = _export(tmp_path, *args)
        assert res.exit_code == 1, (name, res.output)
        assert words in res.output, (name, res.output)
        assert "Traceback" not in res.output, name
        assert not out.exists(), name


def test_saved_models_refuse_a_bootstrap(tmp_path, saved):
    folder, _ = saved
    res, out = _export(tmp_path, "--model", str(folder / "bgnbd.json"), "--bootstrap", "5")
    assert res.exit_code == 1 and "--bootstrap 0" in res.output
    assert not out.exists()
