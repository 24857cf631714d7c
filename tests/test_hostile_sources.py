"""Hostile source files and folders: no file outside the folder, no secret, no unbounded config.

Each case of issue 22's "source file" bullets and its relatives: table files
that leave the source's folder by path or by link, system folders as a location,
file content echoed in an error, every credential form in every text of a source
file, and crafted YAML (alias bombs, deep nesting, huge files, wrong types) in a
source file, a ``studies.yml`` and a run's parameters file. The pseudonym-key
cases are in ``tests/test_privacy.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from crmstats import CRMStatsError, DataError, StudyError, load_crm, source_label
from crmstats.book import load_studies
from crmstats.sources import read_source_file
from crmstats.yamlfile import MAX_BYTES, read_yaml
from tests.secret_forms import CREDENTIALS, LOOKALIKES

ORDERS = "Customer,Date,Revenue\nC1,2024-01-02,10.5\nC2,2024-01-03,20.0\n"
SHADOW = "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
PGPASS = "db.example.com:5432:crm:crm:hunter22\n"


def write_spec(folder: Path, spec: dict | str) -> Path:
    path = folder / "crmstats.yml"
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec))
    return path


def orders_spec(file: str = "orders.csv", **extra) -> dict:
    entry = {"file": file, "columns": {"customer_id": "Customer", "timestamp": "Date",
                                       "amount": "Revenue"}}
    return {"name": "ACME", "location": ".", "tables": {"transactions": {**entry, **extra}}}


@pytest.fixture
def source(tmp_path):
    """A source folder holding orders.csv, and a sibling folder with a 'secret' file."""
    folder = tmp_path / "acme"
    folder.mkdir()
    (folder / "orders.csv").write_text(ORDERS)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(ORDERS.replace("C1", "SECRET-ROW"))
    (outside / "shadow").write_text(SHADOW)
    return folder


def amounts(crm) -> list[float]:
    from crmstats import execute

    return sorted(execute(crm.table("transactions"))["amount"].tolist())


# ----------------------------------------------------------------------------- the folder


def test_a_source_file_inside_its_folder_still_reads(source):
    assert amounts(load_crm(write_spec(source, orders_spec()))) == [10.5, 20.0]


@pytest.mark.parametrize("file", ["../outside/secret.csv", "sub/../../outside/secret.csv",
                                  "{tmp}/outside/secret.csv", "/etc/passwd", "/etc/hostname",
                                  "/proc/self/environ"])
def test_table_files_outside_the_folder_are_refused(source, file):
    file = file.format(tmp=source.parent)
    with pytest.raises(DataError, match="outside the source's folder.*allow_outside") as err:
        load_crm(write_spec(source, orders_spec(file)))
    assert "transactions" in str(err.value) and "root:" not in str(err.value)


@pytest.mark.parametrize("target", ["outside/secret.csv", "outside/shadow", "/etc/passwd"])
def test_a_link_out_of_the_folder_is_refused(source, target):
    link = source / "orders.csv"
    link.unlink()
    link.symlink_to(target if target.startswith("/") else source.parent / target)
    with pytest.raises(DataError, match="outside the source's folder") as err:
        load_crm(write_spec(source, orders_spec()))
    assert "SECRET" not in str(err.value) and "root:" not in str(err.value)


def test_a_link_inside_the_folder_is_fine(source):
    (source / "current.csv").symlink_to(source / "orders.csv")
    assert amounts(load_crm(write_spec(source, orders_spec("current.csv")))) == [10.5, 20.0]


@pytest.mark.parametrize("where", ["table", "top"])
def test_allow_outside_opts_in_explicitly(source, where):
    spec = orders_spec("../outside/secret.csv", **({"allow_outside": True}
                                                    if where == "table" else {}))
    if where == "top":
        spec["allow_outside"] = True
    crm = load_crm(write_spec(source, spec))
    assert amounts(crm) == [10.5, 20.0]
    # even then, never a system folder
    spec["tables"]["transactions"]["file"] = "/etc/passwd"
    with pytest.raises(DataError, match="/etc, a folder of the system"):
        load_crm(write_spec(source, spec))


def test_allow_outside_must_be_true_or_false(source):
    with pytest.raises(DataError, match="allow_outside must be true or false"):
        load_crm(write_spec(source, orders_spec("../outside/secret.csv", allow_outside="yes")))


@pytest.mark.parametrize("location", ["/", "/etc", "/etc/ssl", "/proc", "/proc/self", "/sys",
                                      "/dev", "/usr", "/usr/lib", "/bin", "/boot", "/var/lib",
                                      "/var/log", "/root", "/home", "/tmp", "~", "~/.ssh",
                                      "~/.config/crmstats"])
def test_system_home_and_credential_folders_are_never_a_location(source, location):
    folder = Path(location).expanduser()
    if not folder.is_dir():
        pytest.skip(f"{location} is not a folder on this machine")
    spec = orders_spec()
    spec["location"] = str(folder)
    with pytest.raises(DataError, match="cannot be a data source") as err:
        load_crm(write_spec(source, spec))
    assert "location" in str(err.value) or str(folder) in str(err.value)
    with pytest.raises(DataError, match="cannot be a data source"):
        load_crm(folder)  # a folder source, too


def test_a_location_linked_to_a_system_folder_is_refused(source, tmp_path):
    (tmp_path / "exports").symlink_to("/etc")
    spec = orders_spec()
    spec["location"] = "../exports"
    with pytest.raises(DataError, match="inside /etc"):
        load_crm(write_spec(source, spec))
    with pytest.raises(DataError, match="inside /etc"):
        load_crm(tmp_path / "exports")


def test_a_table_file_that_is_a_fifo_or_a_folder_is_refused(source):
    os.mkfifo(source / "pipe.csv")
    (source / "folder.csv").mkdir()
    for name in ("pipe.csv", "folder.csv"):
        with pytest.raises(DataError, match="is not a regular file"):
            load_crm(write_spec(source, orders_spec(name)))


def test_a_folder_of_the_users_own_is_a_location(source, tmp_path):
    data = tmp_path / "exports" / "2024"
    data.mkdir(parents=True)
    (data / "orders.csv").write_text(ORDERS)
    spec = orders_spec()
    spec["location"] = "../exports/2024"
    assert amounts(load_crm(write_spec(source, spec))) == [10.5, 20.0]


def test_a_folder_sources_link_to_a_system_file_is_refused(tmp_path):
    folder = tmp_path / "crm"
    folder.mkdir()
    (folder / "transactions.csv").symlink_to("/etc/passwd")
    with pytest.raises(DataError, match="outside the source's folder") as err:
        load_crm(folder)
    assert ":0:0:" not in str(err.value) and "/bin/" not in str(err.value)
    (folder / "transactions.csv").unlink()
    (folder / "transactions.csv").symlink_to(tmp_path / "missing.csv")  # dangling, outside
    with pytest.raises(DataError, match="outside the source's folder"):
        load_crm(folder)


@pytest.mark.parametrize("content", [SHADOW, PGPASS, "root:x:0:0:root:/root:/bin/bash\n",
                                     "machine db.example.com login crm password hunter22\n",
                                     "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n"])
def test_a_file_that_is_no_csv_is_not_echoed(tmp_path, content):
    folder = tmp_path / "crm"
    folder.mkdir()
    (folder / "transactions.csv").write_text(content)
    with pytest.raises(DataError, match="missing required column") as err:
        load_crm(folder).table("transactions")
    message = str(err.value)
    assert "does not look like column names" in message
    for word in ("root", "hunter22", "db.example.com", "OPENSSH", "19000"):
        assert word not in message


def test_the_header_of_a_real_csv_is_still_named(tmp_path):
    folder = tmp_path / "crm"
    folder.mkdir()
    (folder / "transactions.csv").write_text("Kunde,Datum,Umsatz\nC1,2024-01-02,3\n")
    with pytest.raises(DataError, match="columns present: Kunde, Datum, Umsatz"):
        load_crm(folder).table("transactions")


# ----------------------------------------------------------------------------- secrets


def _secret_part(text: str) -> str:
    """A distinctive piece of the credential that must never be echoed."""
    pieces = [p for p in re.findall(r"[A-Za-z0-9_/+=%-]{6,}", text)
              if not re.fullmatch(r"[A-Z_]+", p)]  # a setting's name (PGPASSWORD) is no secret
    return max(pieces, key=lambda p: sum(c.isdigit() for c in p) + len(p))


def _placements(text: str) -> dict[str, dict]:
    """A source file with ``text`` in each of its texts (keys included)."""
    def spec(**table):
        return {"name": "ACME", "location": ".",
                "tables": {"transactions": {"file": "orders.csv", **table}}}

    return {
        "name": {**spec(), "name": text},
        "description": {**spec(), "description": text},
        "location": {**spec(), "location": text},
        "file": spec(file=text),
        "columns": spec(columns={"customer_id": text}),
        "values key": spec(values={"channel": {text: "email"}}),
        "values value": spec(values={"channel": {"Mail": text}}),
        "personal": spec(personal=["Phone", text]),
        "timestamp_format": spec(timestamp_format=text),
        "a top-level key": {**spec(), text: 1},
        "a table key": spec(**{text: 1}),
    }


@pytest.mark.parametrize(("what", "text"), CREDENTIALS, ids=[c[0] for c in CREDENTIALS])
def test_credentials_in_any_text_of_a_source_file_are_refused_unechoed(source, what, text):
    secret = _secret_part(text)
    for where, spec in _placements(text).items():
        path = write_spec(source, spec)
        with pytest.raises(DataError, match="credential") as err:
            read_source_file(path)
        message = str(err.value)
        assert secret not in message and text not in message, (what, where, message)
        assert message.startswith("source file crmstats.yml") and len(message.splitlines()) == 1
        with pytest.raises(DataError, match="credential"):
            load_crm(path)


@pytest.mark.parametrize("name", ["postgresql://crm:s3cretPW@db.example.com/crm",
                                  "PGPASSWORD=s3cretPW", ["ACME", "s3cretPW"], "x" * 300])
def test_a_hostile_name_never_becomes_a_label(source, name):
    spec = orders_spec()
    spec["name"] = name
    path = write_spec(source, spec)
    assert source_label(path) == source_label(source) == "acme"
    with pytest.raises(DataError):
        load_crm(path)


@pytest.mark.parametrize(("what", "text"), LOOKALIKES, ids=[c[0] for c in LOOKALIKES])
def test_lookalikes_in_a_source_files_texts_pass(source, what, text):
    spec = orders_spec()
    spec["description"] = text
    spec["tables"]["transactions"]["values"] = {"channel": {text: "other"}}
    read_source_file(write_spec(source, spec))


@pytest.mark.parametrize("location", [
    "host=db.example.com user=crm password=s3cretPW dbname=crm",
    "host=db.example.com user=crm dbname=crm sslpassword=s3cretPW",
    "postgresql://crm@db.example.com/crm?sslmode=require&sslpassword=s3cretPW",
    "postgresql://crm:s3cretPW@db.example.com/crm",
])
def test_the_issues_locations_are_refused_without_the_value(source, location):
    spec = orders_spec()
    spec["location"] = location
    with pytest.raises(DataError, match="credential") as err:
        load_crm(write_spec(source, spec))
    assert "s3cretPW" not in str(err.value) and "db.example.com" not in str(err.value)


def test_a_keyword_string_without_a_password_is_explained_not_opened(source):
    spec = orders_spec()
    spec["location"] = "host=db.example.com dbname=crm"
    with pytest.raises(DataError, match="keyword connection string.*postgresql://"):
        load_crm(write_spec(source, spec))


def test_demo_options_with_a_credential_are_refused_unechoed():
    with pytest.raises(DataError, match="credential") as err:
        load_crm("demo:seed=3,password=s3cretPW")
    assert "s3cretPW" not in str(err.value)


# ----------------------------------------------------------------------------- bounded YAML

BOMB = textwrap.dedent("""\
    location: .
    tables: {transactions: orders.csv}
    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
    name: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
""")
#: The bomb inside legal keys only: name: and values: (the issue's "name: as a list").
BOMB_IN_LEGAL_KEYS = textwrap.dedent("""\
    location: .
    name: &i [[&h [&g [&f [&e [&d [&c [&b [&a ["lol", "lol", "lol", "lol", "lol", "lol"],
           *a, *a, *a, *a, *a, *a, *a, *a], *b, *b, *b, *b, *b, *b, *b, *b],
           *c, *c, *c, *c, *c, *c, *c, *c], *d, *d, *d, *d, *d, *d, *d, *d],
           *e, *e, *e, *e, *e, *e, *e, *e], *f, *f, *f, *f, *f, *f, *f, *f],
           *g, *g, *g, *g, *g, *g, *g, *g], *h, *h, *h, *h, *h, *h, *h, *h]]
    tables: {transactions: {file: orders.csv, values: {channel: {x: *i}}}}
""")

_CHILD = """
import json, resource, sys, time
def vm():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
from crmstats import load_crm, source_label
from crmstats.exceptions import CRMStatsError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
# a hostile file may not take more than 200 MB: beyond that the child dies, not the machine
resource.setrlimit(resource.RLIMIT_AS, (vm() + 200 * 2**20, resource.RLIM_INFINITY))
start = time.perf_counter()
try:
    label = source_label(sys.argv[1])
    load_crm(sys.argv[1])
    result = "accepted"
except CRMStatsError as exc:
    result = "refused: " + str(exc)
except MemoryError:
    result = "MemoryError"
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"result": result, "grew": after - before,
                  "seconds": time.perf_counter() - start}))
"""


def _in_a_child(path: Path) -> dict:
    """Load ``path`` in a child process whose memory is capped; its result and growth."""
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True,
                         text=True, timeout=300, check=False,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("bomb", [BOMB, BOMB_IN_LEGAL_KEYS], ids=["classic", "legal keys"])
def test_an_alias_bomb_is_refused_at_once_in_little_memory(source, bomb):
    path = write_spec(source, bomb)
    child = _in_a_child(path)
    assert child["result"].startswith("refused: source file"), child
    assert "values (line" in child["result"] and "through YAML aliases" in child["result"]
    assert child["grew"] < 50 * 2**20, child  # bytes of RSS beyond the imports


def test_a_few_aliases_are_fine_but_a_value_holding_itself_is_refused(source):
    spec = ("name: &n ACME\nlocation: .\ntables: {transactions: {file: orders.csv, "
            "personal: &p [Phone, Mail], exportable: *p}}\ndescription: *n\n")
    read = read_source_file(write_spec(source, spec))
    assert read["name"] == "ACME" and read["tables"]["transactions"]["exportable"] == [
        "Phone", "Mail"]
    with pytest.raises(DataError, match=r"alias \*a \(line 1\) repeats a value inside itself"):
        read_source_file(write_spec(source, "name: &a [x, *a]\n"))
    with pytest.raises(DataError, match="alias.*repeats a value inside itself"):
        read_source_file(write_spec(source, "tables: &t {transactions: {file: x, values: *t}}\n"))


def test_aliases_cannot_deepen_past_the_limit(source):
    spec = "a: &a " + "[" * 20 + "1" + "]" * 20 + "\nname: [[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]\n"
    with pytest.raises(DataError, match="nested more than 32 levels"):
        read_source_file(write_spec(source, spec))


def test_deep_nesting_is_refused(source):
    spec = "name: " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(DataError, match="nested more than 32 levels"):
        read_source_file(write_spec(source, spec))


def test_a_50_mb_values_map_is_refused_by_its_size_before_it_is_read(source, monkeypatch):
    path = source / "crmstats.yml"
    with path.open("w") as handle:
        handle.write("name: ACME\ntables:\n  transactions:\n    file: orders.csv\n"
                     "    values:\n      channel:\n")
        line = "        'Exported channel name number {:09d}': paid_search\n"
        for i in range(50 * 2**20 // len(line.format(0))):
            handle.write(line.format(i))
    assert path.stat().st_size > 50 * 10**6

    def no_parsing(*args, **kwargs):
        raise AssertionError("a file over the size limit was parsed")

    monkeypatch.setattr(yaml, "parse", no_parsing)
    monkeypatch.setattr(yaml, "load", no_parsing)
    with pytest.raises(DataError, match=f"more than the {MAX_BYTES:,} a crmstats YAML file"):
        load_crm(path)
    assert source_label(path) == "acme"  # a label never reads a refused file


def test_a_values_map_under_the_size_limit_is_still_bounded(source):
    spec = orders_spec(values={"channel": {f"c{i}": "email" for i in range(10_001)}})
    with pytest.raises(DataError, match="values of 'channel' has 10,001 entries; at most"):
        read_source_file(write_spec(source, spec))


@pytest.mark.parametrize(("change", "message"), [
    ({"name": ["a", "b"]}, "name must be text, got a list"),
    ({"name": {"a": 1}}, "name must be text, got a mapping"),
    ({"name": 2024}, r"name must be text, got a number \(quote it\)"),
    ({"name": "x" * 201}, "name is 201 characters long; at most 200"),
    ({"name": "two\nlines"}, "name must be one line"),
    ({"location": ["."]}, "location must be text"),
    ({"description": {"x": 1}}, "description must be text"),
    ({"dayfirst": "yes"}, "dayfirst must be true or false"),
    ({"trim": 1}, "trim must be true or false"),
    ({"tables": ["transactions"]}, "'tables' must map"),
    ({"tables": {"transactions": 5}}, "table transactions: expected a file name or a mapping"),
    ({"table": {"file": ["orders.csv"]}}, "file must be text, got a list"),
    ({"table": {"columns": ["Customer"]}}, "columns must map canonical names"),
    ({"table": {"columns": {"customer_id": {"x": 1}}}}, "columns.customer_id must be text"),
    ({"table": {"columns": {"customer_id": None}}}, "columns.customer_id must be text"),
    ({"table": {"values": ["x"]}}, "values must map columns"),
    ({"table": {"values": {"channel": {"Mail": ["email"]}}}},
     "values of 'channel' must map exported values to canonical names"),
    ({"table": {"values": {"channel": ["email"]}}}, "values of 'channel' must map"),
    ({"table": {"decimal": "ab"}}, "decimal is 2 characters|decimal must be a separator"),
    ({"table": {"decimal": "1"}}, "decimal must be a separator"),
    ({"table": {"thousands": 5}}, "thousands must be text"),
    ({"table": {"timestamp_format": ["%d"]}}, "timestamp_format must be text"),
    ({"table": {"personal": "Phone"}}, "personal must be a list of column names"),
    ({"table": {"exportable": [["email"]]}}, "a column name in exportable must be text"),
    ({"table": {"drop_duplicates": "no"}}, "drop_duplicates must be true or false"),
])
def test_every_key_is_type_checked_and_named(source, change, message):
    spec = orders_spec()
    for key, value in change.items():
        if key == "table":
            spec["tables"]["transactions"].update(value)
        else:
            spec[key] = value
    with pytest.raises(DataError, match=message) as err:
        read_source_file(write_spec(source, spec))
    assert str(err.value).startswith("source file crmstats.yml")


def test_plain_values_of_every_key_still_pass(source):
    spec = orders_spec(values={"channel": {"Mail": "email", 3: "paid_search", True: "direct",
                                           None: "unknown"}},
                       columns={"customer_id": "Customer", "timestamp": "Date",
                                "amount": 2024},
                       personal=["Phone", 7], exportable=[], thousands="", decimal=",",
                       timestamp_format="%Y-%m-%d", dayfirst=None, trim=False)
    spec.update(description="Orders\nfrom the shop", dayfirst=False, drop_duplicates=True)
    read = read_source_file(write_spec(source, spec))["tables"]["transactions"]
    assert read["columns"]["amount"] == "2024" and read["values"]["channel"][None] == "unknown"
    assert read["trim"] is False and read["dayfirst"] is None


@pytest.mark.parametrize(("content", "message"), [
    (b"\xff\xfe n\x00a\x00", "not UTF-8"),
    (b"name: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
    (b"name: [unclosed\n", "not valid YAML"),
    (b"- just\n- a list\n", "expected a mapping"),
])
def test_files_that_are_no_source_file_are_one_line(source, content, message):
    path = source / "crmstats.yml"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        load_crm(path)
    assert len(str(err.value).splitlines()) == 1


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "run.yml"
    os.mkfifo(fifo)
    with pytest.raises(CRMStatsError, match="not a regular file"):
        read_yaml(fifo, what="parameters file")


# ----------------------------------------------------------------------------- studies and runs


def test_studies_yml_goes_through_the_same_reader(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    (book / "studies.yml").write_text(BOMB.replace("name:", "defaults:"))
    with pytest.raises(StudyError, match="through YAML aliases"):
        load_studies(book / "studies.yml", check_parameters=False)
    (book / "studies.yml").write_text("studies: []\n" + "# padding\n" * (MAX_BYTES // 10 + 1))
    with pytest.raises(StudyError, match="more than the"):
        load_studies(book / "studies.yml", check_parameters=False)


def test_a_run_file_goes_through_the_same_reader(tmp_path):
    from crmstats.cli import app

    run = tmp_path / "run.yml"
    run.write_text(BOMB.replace("name:", "data_source:"))
    for command in (["book", "build", "--book-dir", str(tmp_path / "book"), "--params", str(run)],
                    ["study", "run", str(tmp_path / "t.ipynb"), "-y", str(run)]):
        res = CliRunner().invoke(app, command)
        assert res.exit_code == 1, res.output
        assert "parameters file" in res.output and "through YAML aliases" in res.output
        assert "Traceback" not in res.output


@pytest.mark.parametrize("source", ["$PGPASSWORD/shop", "${API_TOKEN}", "~/x/$DB_SECRET"])
def test_a_data_source_never_expands_a_credential_variable(source, monkeypatch):
    """``data_source: $PGPASSWORD`` would put the password into every message naming the source."""
    for name in ("PGPASSWORD", "API_TOKEN", "DB_SECRET"):
        monkeypatch.setenv(name, "hunter2-s3cret")
    with pytest.raises(DataError, match="names a credential") as err:
        load_crm(source)
    assert "hunter2" not in str(err.value)


def test_a_keyword_dsn_given_as_the_data_source_is_not_echoed():
    dsn = "host=db.example.com user=crm password=hunter2-s3cret dbname=crm"
    with pytest.raises(DataError, match="looks like a credential") as err:
        load_crm(dsn)
    assert "hunter2" not in str(err.value)
    in_a_path = "password=hunter2-s3cret"
    with pytest.raises(DataError) as err:
        load_crm(f"/tmp/exports/{in_a_path}")
    assert "hunter2" not in str(err.value)


def test_source_init_never_opens_a_link_out_of_its_folder(tmp_path):
    """``source init`` reads every data file of the folder: a link to a secret is not one."""
    from crmstats.sources import init_source_file

    secret = tmp_path / "outside" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text("root:HASHVALUE:19000:0:99999:7:::\nx\n")
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "orders.csv").write_text("customer_id,timestamp,amount\nc1,2024-01-02,10\n")
    (folder / "transactions.csv").symlink_to(secret)
    text = init_source_file(folder)
    assert "HASHVALUE" not in text and "root:" not in text
    assert "transactions.csv: a link to a file outside the folder, not read" in text
    (folder / "orders.csv").unlink()
    with pytest.raises(DataError, match="links to files outside it are not read") as err:
        init_source_file(folder)
    assert "HASHVALUE" not in str(err.value)
