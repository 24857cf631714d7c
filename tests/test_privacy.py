"""Pseudonyms (keyed, stable, reversible by the key holder) and the publication scanner."""

import os
import stat

import pandas as pd
import pytest

from crmstats import CRMStatsError, DataError
from crmstats.privacy import (
    CREDENTIAL_PATTERNS,
    find_credential,
    key_path,
    pseudonym_table,
    pseudonymize,
    reidentify,
    scan_text,
)
from tests.secret_forms import CREDENTIALS, LOOKALIKES


@pytest.fixture
def no_env_key(monkeypatch, tmp_path):
    monkeypatch.delenv("CRMSTATS_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("CRMSTATS_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg" / "pseudonym.key"


def test_pseudonyms_are_stable_keyed_and_short():
    ids = pd.Series(["anna@example.com", "bob@example.com", 17, None], index=[5, 6, 7, 8],
                    name="customer_id")
    a = pseudonymize(ids, key="k1")
    assert a.index.tolist() == [5, 6, 7, 8] and a.name == "customer_id"
    assert a.iloc[:3].str.fullmatch(r"C-[0-9a-f]{8}").all() and a.iloc[3] is None
    assert a.iloc[:3].nunique() == 3
    assert pseudonymize(ids, key="k1").equals(a)                     # stable
    assert pseudonymize(["anna@example.com"], key="k1")[0] == a[5]   # independent of the set
    b = pseudonymize(ids, key="k2")
    assert (a.iloc[:3] != b.iloc[:3]).all()                          # keyed
    assert "anna" not in "".join(a.iloc[:3])
    # caller's data untouched
    assert ids.tolist()[:3] == ["anna@example.com", "bob@example.com", 17]


def test_key_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CRMSTATS_PSEUDONYM_KEY", "from-env")
    assert pseudonymize(["x"])[0] == pseudonymize(["x"], key="from-env")[0]


def test_key_file_is_created_once_private_and_reused(no_env_key):
    path = no_env_key
    assert key_path() == path and not path.exists()
    first = pseudonymize(["x", "y"])
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_bytes()
    assert pseudonymize(["x", "y"]).equals(first) and path.read_bytes() == content
    assert not [p for p in path.parent.iterdir() if p != path]  # no temporary file left


def test_a_key_file_readable_by_others_is_refused(no_env_key):
    pseudonymize(["x"])
    os.chmod(no_env_key, 0o644)
    with pytest.raises(CRMStatsError, match="readable by other users.*chmod 600"):
        pseudonymize(["x"])


def test_analyst_maps_pseudonyms_back():
    ids = pd.Series([f"cust-{i}" for i in range(500)])
    published = pseudonymize(ids.iloc[[3, 99, 250]], key="k")
    back = reidentify(published, ids, key="k")
    assert back.tolist() == ["cust-3", "cust-99", "cust-250"]
    assert reidentify(["C-00000000"], ids, key="k").isna().all()
    table = pseudonym_table(ids, key="k")
    assert len(table) == 500 and table.set_index("id").loc["cust-99", "pseudonym"] == published[99]


def test_colliding_pseudonyms_are_lengthened_and_still_reidentified():
    ids = pd.Series(range(3000))
    short = pseudonymize(ids, key="k", length=4)  # 3000 ids in 65536 slots: collisions
    assert short.nunique() == 3000
    assert short.str.len().iloc[0] > len("C-") + 4
    assert reidentify(short.iloc[[10, 20]], ids, key="k").tolist() == [10, 20]
    four = pseudonymize(ids, key="k", length=8).str[: len("C-") + 4]
    assert four.duplicated().any()
    with pytest.raises(DataError, match="more than one id"):
        reidentify(four[four.duplicated(keep=False)].iloc[:1], ids, key="k")


def test_scan_finds_pii_credentials_and_paths_without_repeating_them():
    text = ("Contact anna.berg&#64;example.com or call +49 30 1234567.\n"
            "key: AKIAIOSFODNN7EXAMPLE\n"
            "log /home/builder/crm/book/run.log and Anna Berg\n"
            "percent-encoded bob%40example.org\n")
    found = scan_text(text, extra_values=["Anna Berg"], paths=["/home/builder"])
    kinds = [f.pattern for f in found]
    assert kinds.count("email address") == 2
    assert "phone number" in kinds and "AWS access key" in kinds
    assert "machine path" in kinds and "personal value" in kinds
    assert [f.line for f in found if f.pattern == "machine path"] == [3]
    for f in found:
        assert "anna" not in str(f).lower() and "AKIA" not in str(f)


@pytest.mark.parametrize("text", [
    "revenue 1,234,567.89 in 2024-03-01", "id 123456789012", "ratio 0.030123456",
    "order 10-2024-000123", "v1.2.3", "logo@2x.png", "1.5e-07", "(12) 3 4",
])
def test_scan_is_quiet_on_ordinary_numbers(text):
    assert scan_text(text, paths=[]) == []


def test_base64_images_do_not_raise_false_alarms():
    import base64
    import random

    rng = random.Random(3)
    blob = base64.b64encode(bytes(rng.randrange(256) for _ in range(300_000))).decode()
    page = f'<img src="data:image/png;base64,{blob}">'
    assert scan_text(page, paths=[]) == []


@pytest.mark.parametrize(("what", "text"), CREDENTIALS, ids=[c[0] for c in CREDENTIALS])
def test_every_credential_form_is_found(what, text):
    assert find_credential(text), what
    assert any(f.pattern in dict(CREDENTIAL_PATTERNS) for f in scan_text(text, paths=[]))


@pytest.mark.parametrize(("what", "text"), LOOKALIKES, ids=[c[0] for c in LOOKALIKES])
def test_no_false_alarm_on_lookalikes(what, text):
    assert find_credential(text) is None, what
    assert scan_text(text, paths=[]) == [], what


def test_the_tables_are_big_enough():
    assert len(CREDENTIALS) >= 30 and len(LOOKALIKES) >= 30


def test_pseudonymous_tables_for_publishing_leave_the_callers_table_alone():
    from crmstats.privacy import pseudonymous

    top = pd.DataFrame({"clv": [9.5, 7.25], "email": ["a@x.org", "b@x.org"],
                        "account_id": ["A1", "A2"]},
                       index=pd.Index(["C000001", "C000002"], name="customer_id"))
    shown = pseudonymous(top, key="k")
    assert shown.index.name == "customer_id"
    assert shown.index.tolist() == pseudonymize(["C000001", "C000002"], key="k").tolist()
    assert shown["account_id"].tolist() == pseudonymize(["A1", "A2"], key="k").tolist()
    assert "email" not in shown and shown["clv"].tolist() == [9.5, 7.25]
    # the analyst's table (what the crmstats functions return) keeps raw ids
    assert top.index.tolist() == ["C000001", "C000002"] and "email" in top
    # a table that is not a customer list is left as it is
    channels = pd.DataFrame({"share": [0.5]}, index=pd.Index(["email"], name="channel"))
    assert pseudonymous(channels, key="k").equals(channels)


def test_redact_removes_what_the_scan_finds():
    from crmstats.privacy import redact

    text = "dup anna&#64;example.com, Anna Berg, /root/x.csv:3, sk_live_abcdefghij12"
    assert redact(text, extra_values=["Anna Berg"], paths=["/root"]) == "dup […], […], […]:3, […]"
