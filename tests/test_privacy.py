"""Pseudonyms (keyed, stable, reversible by the key holder) and the publication scanner."""

import os
import stat
import warnings

import pandas as pd
import pytest

from crmstats import CRMStatsError, DataError
from crmstats.privacy import (
    CREDENTIAL_PATTERNS,
    PseudonymKeyWarning,
    find_credential,
    key_path,
    pseudonym_table,
    pseudonymize,
    reidentify,
    scan_text,
)
from tests.secret_forms import CREDENTIALS, LOOKALIKES

K, K1, K2 = "test-key-0123456789", "test-key-one-0123456789", "test-key-two-0123456789"


@pytest.fixture
def no_env_key(monkeypatch, tmp_path):
    monkeypatch.delenv("CRMSTATS_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("CRMSTATS_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg" / "pseudonym.key"


def test_pseudonyms_are_stable_keyed_and_short():
    ids = pd.Series(["anna@example.com", "bob@example.com", 17, None], index=[5, 6, 7, 8],
                    name="customer_id")
    a = pseudonymize(ids, key=K1)
    assert a.index.tolist() == [5, 6, 7, 8] and a.name == "customer_id"
    assert a.iloc[:3].str.fullmatch(r"C-[0-9a-f]{8}").all() and a.iloc[3] is None
    assert a.iloc[:3].nunique() == 3
    assert pseudonymize(ids, key=K1).equals(a)                     # stable
    assert pseudonymize(["anna@example.com"], key=K1)[0] == a[5]   # independent of the set
    b = pseudonymize(ids, key=K2)
    assert (a.iloc[:3] != b.iloc[:3]).all()                          # keyed
    assert "anna" not in "".join(a.iloc[:3])
    # caller's data untouched
    assert ids.tolist()[:3] == ["anna@example.com", "bob@example.com", 17]


def test_key_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CRMSTATS_PSEUDONYM_KEY", "from-env-0123456789")
    assert pseudonymize(["x"])[0] == pseudonymize(["x"], key="from-env-0123456789")[0]


def test_key_file_is_created_once_private_announced_and_reused(no_env_key):
    path = no_env_key
    assert key_path() == path and not path.exists()
    with pytest.warns(PseudonymKeyWarning) as record:
        first = pseudonymize(["x", "y"])
    assert len(record) == 1
    said = str(record[0].message)
    assert str(path) in said and "changes every pseudonym" in said
    assert record[0].filename == __file__  # points at the caller, not at crmstats
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_bytes()
    assert content.strip().decode() not in said
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an existing key is used without a word
        assert pseudonymize(["x", "y"]).equals(first) and path.read_bytes() == content
    assert not [p for p in path.parent.iterdir() if p != path]  # no temporary file left


def test_check_key_announces_a_new_key_once_and_refuses_a_short_one(no_env_key, monkeypatch):
    from crmstats.privacy import check_key

    with pytest.warns(PseudonymKeyWarning, match="changes every pseudonym"):
        check_key()
    assert no_env_key.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_key()
        pseudonymize(["x"])  # the key it made is the one used
    monkeypatch.setenv("CRMSTATS_PSEUDONYM_KEY", "short")
    with pytest.raises(CRMStatsError, match="CRMSTATS_PSEUDONYM_KEY: shorter than 16 bytes"):
        check_key()


def test_a_book_build_checks_the_key_before_any_study_runs(tmp_path, monkeypatch):
    from crmstats.book import build_book

    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "studies.yml").write_text("studies: []\n")
    monkeypatch.setenv("CRMSTATS_PSEUDONYM_KEY", "short")
    with pytest.raises(CRMStatsError, match="shorter than 16 bytes"):
        build_book(tmp_path / "book")
    assert not (tmp_path / "book" / "runs").exists()  # refused before anything ran


SHORT_KEYS = ["a", "k3y", "0123456789abcde", "ü" * 7]  # 1, 3, 15 and 14 bytes


@pytest.mark.parametrize("short", SHORT_KEYS)
def test_a_short_key_is_refused_from_every_origin_without_showing_it(short, no_env_key,
                                                                      monkeypatch):
    def refused(call) -> str:
        with pytest.raises(CRMStatsError, match="shorter than 16 bytes") as err:
            call()
        return str(err.value)

    def same_for_another_key(make) -> str:
        """The message, checked to be the same for another short key: it cannot hold the key."""
        said = refused(make(short))
        assert said == refused(make("~Q~")), said
        return said

    same_for_another_key(lambda k: lambda: pseudonymize(["C1"], key=k))
    same_for_another_key(lambda k: lambda: pseudonymize(["C1"], key=k.encode()))
    same_for_another_key(lambda k: lambda: reidentify(["C-00000000"], ["C1"], key=k))

    def from_env(k):
        monkeypatch.setenv("CRMSTATS_PSEUDONYM_KEY", k)
        return lambda: pseudonymize(["C1"])

    assert "CRMSTATS_PSEUDONYM_KEY" in same_for_another_key(from_env)
    monkeypatch.delenv("CRMSTATS_PSEUDONYM_KEY")
    no_env_key.parent.mkdir(parents=True)

    def from_file(k):
        no_env_key.write_text(k + "\n")
        os.chmod(no_env_key, 0o600)
        return lambda: pseudonymize(["C1"])

    assert str(no_env_key) in same_for_another_key(from_file)
    assert no_env_key.read_text() == "~Q~\n"  # the user's file is left alone


def test_a_key_of_16_bytes_is_enough():
    assert pseudonymize(["C1"], key="0123456789abcdef")[0].startswith("C-")


def test_a_key_file_readable_by_others_is_refused(no_env_key):
    with pytest.warns(PseudonymKeyWarning):
        pseudonymize(["x"])
    os.chmod(no_env_key, 0o644)
    with pytest.raises(CRMStatsError, match="readable by other users.*chmod 600"):
        pseudonymize(["x"])


def test_analyst_maps_pseudonyms_back():
    ids = pd.Series([f"cust-{i}" for i in range(500)])
    published = pseudonymize(ids.iloc[[3, 99, 250]], key=K)
    back = reidentify(published, ids, key=K)
    assert back.tolist() == ["cust-3", "cust-99", "cust-250"]
    assert reidentify(["C-00000000"], ids, key=K).isna().all()
    table = pseudonym_table(ids, key=K)
    assert len(table) == 500 and table.set_index("id").loc["cust-99", "pseudonym"] == published[99]


def test_colliding_pseudonyms_are_lengthened_and_still_reidentified():
    ids = pd.Series(range(3000))
    short = pseudonymize(ids, key=K, length=4)  # 3000 ids in 65536 slots: collisions
    assert short.nunique() == 3000
    assert short.str.len().iloc[0] > len("C-") + 4
    assert reidentify(short.iloc[[10, 20]], ids, key=K).tolist() == [10, 20]
    four = pseudonymize(ids, key=K, length=8).str[: len("C-") + 4]
    assert four.duplicated().any()
    with pytest.raises(DataError, match="more than one id"):
        reidentify(four[four.duplicated(keep=False)].iloc[:1], ids, key=K)


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
    shown = pseudonymous(top, key=K)
    assert shown.index.name == "customer_id"
    assert shown.index.tolist() == pseudonymize(["C000001", "C000002"], key=K).tolist()
    assert shown["account_id"].tolist() == pseudonymize(["A1", "A2"], key=K).tolist()
    assert "email" not in shown and shown["clv"].tolist() == [9.5, 7.25]
    # the analyst's table (what the crmstats functions return) keeps raw ids
    assert top.index.tolist() == ["C000001", "C000002"] and "email" in top
    # a table that is not a customer list is left as it is
    channels = pd.DataFrame({"share": [0.5]}, index=pd.Index(["email"], name="channel"))
    assert pseudonymous(channels, key=K).equals(channels)


def test_redact_removes_what_the_scan_finds():
    from crmstats.privacy import redact

    text = "dup anna&#64;example.com, Anna Berg, /root/x.csv:3, sk_live_abcdefghij12"
    assert redact(text, extra_values=["Anna Berg"], paths=["/root"]) == "dup […], […], […]:3, […]"


# ----------------------------------------------------------------------------- executable HTML

#: What sphinx-book-theme 1.3 and Jupyter Book's extensions put on a study page (copied from a
#: built book, cut down): every script, inline body and handler must pass.
THEME_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8" />
  <script data-cfasync="false">
    document.documentElement.dataset.mode = localStorage.getItem("mode") || "light";
    document.documentElement.dataset.theme = localStorage.getItem("theme") || "light";
  </script>
  <noscript><style>.pst-js-only { display: none !important; }</style></noscript>
  <script defer src="../_static/scripts/fontawesome.js?digest=55c26ed414f5f8a31ebb"></script>
  <link rel="preload" as="script" href="../_static/scripts/bootstrap.js?digest=55c26ed4" />
    <script src="../_static/documentation_options.js?v=9eb32ce0"></script>
    <script src="../_static/doctools.js?v=9a2dae69"></script>
    <script>let toggleHintShow = 'Click to show';</script>
    <script>let toggleHintHide = 'Click to hide';</script>
    <script>let toggleOpenOnPrint = 'true';</script>
    <script src="../_static/togglebutton.js?v=b8b12719"></script>
    <script>var togglebuttonSelector = '.toggle, .admonition.dropdown';</script>
    <script data-sd-tabs-storage-prefix="sphinx-design-tab-id-" src="../_static/design-tabs.js?v=fcb327ea"></script>
    <script>const THEBE_JS_URL = "https://unpkg.com/thebe@0.8.2/lib/index.js"; const thebe_selector = ".thebe,.cell"; const thebe_selector_input = "pre"; const thebe_selector_output = ".output, .cell_output"</script>
    <script async="async" src="../_static/sphinx-thebe.js?v=c100c467"></script>
    <script>DOCUMENTATION_OPTIONS.pagename = 'studies/clv-demo';</script>
    <script>DOCUMENTATION_OPTIONS.search_as_you_type = false;</script>
    <script src="../searchindex.js"></script>
  </head><body>
<button onclick="window.print()"
  class="btn btn-sm btn-download-pdf-button dropdown-item" title="Print to PDF">.pdf</button>
<button onclick="toggleFullScreen()" class="btn btn-sm btn-fullscreen-button">full</button>
    <script type="text/x-thebe-config">
    {
        requestKernel: true,
        binderOptions: {
            repo: "binder-examples/jupyter-stacks-datascience",
            ref: "master",
        },
        codeMirrorConfig: {
            theme: "abcdef",
            mode: "python"
        },
        kernelOptions: {
            name: "python3",
            path: "./studies"
        },
        predefinedOutput: true
    }
    </script>
    <script>kernelName = 'python3'</script>
<h1>&lt;script&gt;alert(1)&lt;/script&gt; &#8212; CLV</h1>
<p>&quot;&gt;&lt;img src=x onerror=alert(1)&gt; onerror=alert(1) javascript:alert(1)</p>
<style>#T_crm1 td {text-align: right;}</style><table id="T_crm1"><tr>
<td>&lt;b onmouseover=alert(4)&gt;x&lt;/b&gt;</td></tr></table>
<a href="https://example.com/x">x</a> <a href="mailto:a@b.org">m</a> <a href="../summary.html">s</a>
<a href="javascript-study.html">a study named javascript</a>
<img src="data:image/png;base64,iVBORw0KGgo=" alt="plot">
</body></html>"""  # noqa: E501

#: (markup, kind the scan names): each would run in a browser.
EXECUTABLE = [
    ("<script>alert(1)</script>", "inline <script>"),
    ("<SCRIPT SRC=//evil.example/x.js></SCRIPT>", "<script src>"),
    ('<script src="../_static/../../evil.js"></script>', "<script src>"),
    ('<script src="https://unpkg.com/other.js"></script>', "<script src>"),
    ("<script>DOCUMENTATION_OPTIONS.pagename = 'summary';</script>", "inline <script>"),
    ("<svg><script>alert(1)</script></svg>", "inline <script>"),
    ("<script>alert(1)", "inline <script>"),  # unclosed: still runs
    ("<img src=x onerror=alert(1)>", "onerror="),
    ('"><img src=x onerror=alert(1)>', "onerror="),
    ("<img src=x oNeRrOr=alert(1)>", "onerror="),
    ('<img/src="x"/onerror=alert(1)>', "onerror="),
    ("<svg/onload=alert(1)>", "onload="),
    ("<details open ontoggle=alert(1)>", "ontoggle="),
    ('<div onclick="window.print()">not the theme\'s button</div>', "onclick="),
    ("<iframe src=javascript:alert(1)></iframe>", "<iframe>"),
    ('<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>', "<iframe>"),
    ("<object data=x.swf></object>", "<object>"),
    ("<embed src=x.swf>", "<embed>"),
    ('<base href="https://evil.example/">', "<base>"),
    ('<a href="javascript:alert(1)">x</a>', "javascript: URL"),
    ('<a href=" JAVASCRIPT:alert(1)">x</a>', "javascript: URL"),
    ('<a href="&#106;avascript:alert(1)">x</a>', "javascript: URL"),
    ('<a href="jav&#x09;ascript:alert(1)">x</a>', "javascript: URL"),
    ('<a href="java&NewLine;script:alert(1)">x</a>', "javascript: URL"),
    ('<a href="vbscript:msgbox(1)">x</a>', "vbscript: URL"),
    ('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', "data: URL"),
    ('<form action="javascript:alert(1)"><button>go</button></form>', "javascript: URL"),
    ('<svg><a xlink:href="javascript:alert(1)">x</a></svg>', "javascript: URL"),
    ("<svg><animate attributeName=href values=javascript:alert(1) /></svg>", "javascript: URL"),
    ('<meta http-equiv="refresh" content="0;url=javascript:alert(1)">', "javascript: URL"),
]


def test_the_themes_own_scripts_and_text_showing_markup_pass():
    from crmstats.privacy import scan_html

    assert scan_html(THEME_PAGE, page="studies/clv-demo.html") == []
    assert scan_html('<meta http-equiv="Refresh" content="0; url=summary.html" />',
                     page="index.html") == []
    # a page with math: Sphinx adds MathJax from its CDN and its configuration
    math = ('<script>window.MathJax = {"options": {"processHtmlClass": '
            '"tex2jax_process|mathjax_process|math|output_area"}}</script>\n'
            '<script defer="defer" src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/'
            'tex-mml-chtml.js"></script>')
    assert scan_html(math, page="intro.html") == []
    assert scan_html(math.replace("cdn.jsdelivr.net", "cdn.example.org"), page="intro.html")


@pytest.mark.parametrize(("markup", "kind"), EXECUTABLE, ids=[m for m, _ in EXECUTABLE])
def test_executable_markup_is_found_with_its_kind_and_line(markup, kind):
    from crmstats.privacy import scan_html

    page = THEME_PAGE.replace("<h1>", markup + "\n<h1>")
    found = scan_html(page, page="studies/clv-demo.html")
    assert found and all(kind in f.pattern for f in found[:1]), [f.pattern for f in found]
    line = THEME_PAGE[:THEME_PAGE.index("<h1>")].count("\n") + 1
    assert found[0].line == line
    assert "alert" not in " ".join(f.pattern for f in found)  # the kind, never the value


def test_the_theme_script_of_another_page_is_not_the_theme_here():
    from crmstats.privacy import scan_html

    assert scan_html(THEME_PAGE, page="studies/other.html")  # pagename names another page


def test_scan_finds_credential_file_lines_in_a_published_table():
    page = ("<table><tr><th>columns present</th></tr>"
            "<tr><td>root:*:19000:0:99999:7:::</td></tr>"
            "<tr><td>root:x:0:0:root:/root:/bin/bash</td></tr>"
            "<tr><td>host:5432:db:user:password</td></tr>"
            "<tr><td>12:30:00</td><td>3:1</td></tr></table>")
    assert [f.pattern for f in scan_text(page, paths=[])] == [
        "shadow file line", "passwd file line", ".pgpass line"]
