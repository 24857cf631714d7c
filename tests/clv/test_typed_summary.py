"""The RFM summary is a typed object carrying its units (no column-axis side channel)."""

import io
import pickle
import warnings

import pandas as pd
import pytest

from crmstats import DataError
from crmstats.clv import BetaGeoModel, rfm_summary, summary_units, with_units
from crmstats.clv.units import RFMSummary, SummaryUnits, resolve_units


@pytest.fixture(scope="module")
def weekly():
    tx = pd.DataFrame({"customer_id": ["a", "a", "b", "c", "c", "c"],
                       "timestamp": pd.to_datetime(["2024-01-01", "2024-01-15", "2024-01-03",
                                                    "2024-01-02", "2024-02-01", "2024-03-01"]),
                       "amount": [10.0, 12.0, 5.0, 7.0, 8.0, 9.0]})
    return rfm_summary(tx, period="D", time_unit="W", observation_end="2024-03-31")


def test_a_summary_is_typed_and_knows_its_units(weekly):
    assert isinstance(weekly, RFMSummary) and isinstance(weekly, pd.DataFrame)
    assert weekly.units == SummaryUnits("D", "W") == summary_units(weekly)
    assert weekly.columns.name is None  # no side channel on the column axis
    for piece in (weekly[weekly.frequency > 0], weekly.head(2), weekly.copy(),
                  weekly.sort_values("T"), pd.concat([weekly.iloc[:1], weekly.iloc[1:]])):
        assert isinstance(piece, RFMSummary) and piece.units == weekly.units


def test_round_trips_keep_the_units(weekly):
    back = pickle.loads(pickle.dumps(weekly))
    assert isinstance(back, RFMSummary) and back.units == weekly.units
    parquet = pd.read_parquet(io.BytesIO(weekly.to_parquet()))
    assert summary_units(parquet) == weekly.units  # a plain frame; the file has the units
    assert summary_units(pd.concat([weekly, weekly.iloc[:0].merge(
        weekly[["T"]], left_index=True, right_index=True)])) is None  # merge dropped them


def test_a_summary_labelled_by_an_earlier_release_is_still_read(weekly):
    old = pd.DataFrame(weekly.to_numpy(), index=weekly.index, columns=list(weekly.columns))
    old.columns.name = "rfm summary (freq=D, time_unit=W)"
    assert summary_units(old) == SummaryUnits("D", "W")
    old_file = pd.read_parquet(io.BytesIO(old.to_parquet()))
    assert summary_units(old_file) == SummaryUnits("D", "W")
    relabelled = with_units(old, period="D", time_unit="W")
    assert relabelled.columns.name is None and relabelled.units == SummaryUnits("D", "W")
    assert old.columns.name == "rfm summary (freq=D, time_unit=W)"  # caller's frame untouched


def test_freq_still_works_for_one_release_with_a_deprecation_warning(weekly):
    tx = pd.DataFrame({"customer_id": ["a", "a"], "amount": [1.0, 2.0],
                       "timestamp": pd.to_datetime(["2024-01-01", "2024-01-08"])})
    with pytest.warns(DeprecationWarning, match="freq= is renamed period="):
        old = rfm_summary(tx, freq="D", time_unit="W")
    assert old.units == SummaryUnits("D", "W")
    with pytest.raises(TypeError, match="pass period= only"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        rfm_summary(tx, freq="D", period="W")
    with pytest.warns(DeprecationWarning, match="renamed period"):
        assert weekly.units.freq == "D"
    with pytest.warns(DeprecationWarning):
        assert resolve_units(weekly, freq="D").period == "D"
    with pytest.raises(DataError, match="purchase-merging mismatch"):
        resolve_units(weekly, period="W")


def test_an_edited_summary_is_checked_again(weekly):
    edited = weekly.copy()
    BetaGeoModel().fit(edited)  # checked, and remembered while unchanged
    edited.loc[edited.index[0], "T"] = -1.0  # copy-on-write: new arrays, checked again
    with pytest.raises(DataError, match="negative"):
        BetaGeoModel().fit(edited)
