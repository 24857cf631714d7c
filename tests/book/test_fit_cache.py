"""The build's cache of fitted models (crmstats.fitcache): one fit per data and parameter set."""

from __future__ import annotations

import json
import multiprocessing
import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from crmstats import clv
from crmstats.exceptions import ConvergenceWarning
from crmstats.fitcache import ENV, cache_key, fit_shared, read_log


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "fits"
    folder.mkdir()
    monkeypatch.setenv(ENV, str(folder))
    return folder


def _events(folder):
    return Counter((event, cls) for event, cls, _ in read_log(folder))


def test_outside_a_build_nothing_is_cached(small_crm, tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    fit = clv.fit_value(small_crm.transactions)
    assert fit.transaction_model.fitted_here_
    assert not list(tmp_path.iterdir())


def test_the_same_fit_is_made_once_and_predicts_identically(small_crm, cache):
    first = clv.fit_value(small_crm.transactions, horizon_months=12)
    second = clv.fit_value(small_crm.transactions, horizon_months=6)  # horizon: same fit
    assert _events(cache) == {("fit", "BetaGeoModel"): 1, ("fit", "GammaGammaModel"): 1,
                              ("hit", "BetaGeoModel"): 1, ("hit", "GammaGammaModel"): 1}
    pd.testing.assert_series_equal(first.transaction_model.params_,
                                   second.transaction_model.params_, check_exact=True)
    again = clv.customer_lifetime_value(second.transaction_model, second.spend_model,
                                        second.summary, horizon_months=12)
    pd.testing.assert_frame_equal(first.values, again, check_exact=True)
    assert second.transaction_model.converged_ == first.transaction_model.converged_
    assert second.transaction_model.fitted_here_


def test_other_data_or_parameters_are_other_fits(small_crm, cache):
    kw = {"allow_unconverged": True}  # which fits converge is not the question here
    clv.fit_value(small_crm.transactions, **kw)
    clv.fit_value(small_crm.transactions, observation_end="2024-06-30", **kw)
    clv.fit_value(small_crm.transactions, transaction_model=clv.BetaGeoModel(penalty=0.1),
                  **kw)
    clv.fit_value(small_crm.transactions, time_unit="D", **kw)
    counts = _events(cache)
    assert counts[("fit", "BetaGeoModel")] == 4
    assert counts[("hit", "BetaGeoModel")] == 0


def test_key_follows_every_value_of_the_data():
    data = pd.DataFrame({"frequency": [1.0, 2.0], "recency": [3.0, 4.0]},
                        index=pd.Index(["a", "b"], name="customer_id"))
    model = clv.BetaGeoModel()
    changed = data.copy()
    changed.iloc[1, 1] = 4.000001
    renamed = data.rename(index={"b": "c"})
    labelled = data.copy()
    labelled.columns.name = "rfm summary (freq=D, time_unit=D)"
    keys = {cache_key(model, d) for d in (data, changed, renamed, labelled)}
    keys.add(cache_key(clv.BetaGeoModel(maxiter=7), data))
    tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": [1.0, 2.0, 3.0],
                       "timestamp": pd.to_datetime(["2024-01-01", "2024-01-29", "2024-01-15"])})
    weeks = clv.rfm_summary(tx, time_unit="W")[["frequency", "recency", "T"]]
    relabelled = clv.with_units(pd.DataFrame(weeks), period="D", time_unit="D")
    assert relabelled.equals(weeks)  # the same numbers...
    keys |= {cache_key(model, weeks), cache_key(model, relabelled)}
    assert len(keys) == 7  # ...in other units are other data
    assert cache_key(model, data.copy()) == cache_key(clv.BetaGeoModel(), data)


@pytest.mark.parametrize("damage", ["garbage", "negative", "class"])
def test_a_damaged_entry_is_refitted_not_trusted(small_crm, cache, damage):
    fresh = clv.fit_value(small_crm.transactions)
    (entry,) = [p for p in cache.glob("*.json")
                if json.loads(p.read_text())["class"] == "BetaGeoModel"]
    if damage == "garbage":
        entry.write_text("{not json")
    else:
        data = json.loads(entry.read_text())
        if damage == "negative":
            data["params"]["values"][0] = -1.0
            data["summary"]["columns"]["estimate"][0] = -1.0
        else:
            data["class"] = "ParetoNBDModel"
        entry.write_text(json.dumps(data))
    again = clv.fit_value(small_crm.transactions)
    assert _events(cache)[("fit", "BetaGeoModel")] == 2
    pd.testing.assert_frame_equal(fresh.values, again.values, check_exact=True)
    assert json.loads(entry.read_text())["params"]["values"][0] > 0  # replaced


def test_a_reused_fit_gives_the_fits_warnings_again(small_crm, cache):
    model = clv.BetaGeoModel(maxiter=1)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        clv.fit_value(small_crm.transactions, transaction_model=model, allow_unconverged=True)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        fit = clv.fit_value(small_crm.transactions, transaction_model=model,
                            allow_unconverged=True)
    assert _events(cache)[("hit", "BetaGeoModel")] == 1
    assert fit.transaction_model.converged_ is False


def _fit_in_child(folder, summary, queue):
    import os

    os.environ[ENV] = folder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fit_shared(clv.BetaGeoModel(), summary)
    queue.put(model.params_.to_numpy().tolist())


def test_concurrent_kernels_fit_once(small_crm, cache):
    summary = clv.rfm_summary(small_crm.transactions)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_fit_in_child, args=(str(cache), summary, queue))
             for _ in range(3)]
    for p in procs:
        p.start()
    params = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert _events(cache) == {("fit", "BetaGeoModel"): 1, ("hit", "BetaGeoModel"): 2}
    assert all(np.array_equal(params[0], p) for p in params)
    assert not list(cache.glob(".tmp-*"))


@pytest.mark.slow
def test_a_book_build_fits_each_model_once_per_data_and_parameters(built_book):
    _, result, _ = built_book
    log = read_log(result.run_dir)
    fits = Counter((cls, key) for event, cls, key in log if event == "fit")
    assert fits and all(n == 1 for n in fits.values()), fits
    bg_fits = [key for cls, key in fits if cls == "BetaGeoModel"]
    bg_uses = [key for _, cls, key in log if cls == "BetaGeoModel"]
    # eight valuations (clv twice, attribution, lead scoring, lifecycle, value migration and
    # its customer 360 twice) rest on three fits (the demo's customers, the demo's customers
    # who are won contacts, CDNOW): at least five fits saved, whatever studies add
    assert len(bg_uses) >= 8
    assert len(bg_uses) - len(bg_fits) >= 5
    assert set(bg_uses) == set(bg_fits)
