"""Credentials are refused in every parameter value, nested ones included, without false alarms."""

import re

import pytest
import yaml
from typer.testing import CliRunner

from crmstats import StudyError
from crmstats.book import load_studies
from crmstats.book.studies import check_no_secrets
from crmstats.cli import app
from tests.book.test_params_security import PARAMS_CELL, error_line
from tests.secret_forms import CREDENTIALS, LOOKALIKES
from tests.test_cli import make_template

runner = CliRunner()


def _secret_part(text: str) -> str:
    """A distinctive piece of the credential that must never be echoed."""
    pieces = re.findall(r"[A-Za-z0-9_/+=-]{6,}", text)
    return max(pieces, key=lambda p: sum(c.isdigit() for c in p) + len(p))


def _placements(text):
    return {
        "top level": {"data_source": text},
        "in a list": {"names": ["ok", text]},
        "in a dict": {"opts": {"source": {"url": text}}},
        "as a dict key": {"opts": {text: 1}},
    }


@pytest.mark.parametrize(("what", "text"), CREDENTIALS, ids=[c[0] for c in CREDENTIALS])
def test_credentials_are_refused_wherever_they_are_nested(what, text):
    secret = _secret_part(text)
    for where, params in _placements(text).items():
        with pytest.raises(StudyError, match="credential") as err:
            check_no_secrets(params, "study 't'")
        message = str(err.value)
        assert secret not in message, (what, where)
        assert "environment variables" in message and len(message.splitlines()) == 1


@pytest.mark.parametrize(("what", "text"), LOOKALIKES, ids=[c[0] for c in LOOKALIKES])
def test_lookalikes_pass_wherever_they_are(what, text):
    for params in _placements(text).values():
        check_no_secrets(params, "study 't'")


@pytest.mark.parametrize("name", ["password", "api_key", "authToken", "client-secret",
                                  "PGPASSWORD"])
def test_credential_names_are_refused_also_as_nested_keys(name):
    with pytest.raises(StudyError, match="credential"):
        check_no_secrets({name: "x"}, "s")
    with pytest.raises(StudyError, match="a key in parameter 'opts'"):
        check_no_secrets({"opts": {"db": {name: "x"}}}, "s")


def test_credentials_are_refused_through_each_entry_point(tmp_path):
    (tmp_path / "notebooks").mkdir()
    template = make_template(tmp_path / "notebooks" / "t.ipynb", "print(1)", PARAMS_CELL)
    book = tmp_path / "book"
    book.mkdir()
    studies = book / "studies.yml"
    url = "postgresql://crm@db/crm?sslpassword=kx81Qa"
    studies.write_text(yaml.safe_dump({"studies": [{
        "slug": "t", "title": "T", "template": "notebooks/t.ipynb",
        "parameters": {"opts": {"db": [url]}}}]}))
    with pytest.raises(StudyError, match=r"study 't': the value of parameter 'opts'\['db'\]\[0\]"):
        load_studies(studies)
    studies.write_text(yaml.safe_dump({"studies": [{
        "slug": "t", "title": "T", "template": "notebooks/t.ipynb"}]}))
    with pytest.raises(StudyError, match="run parameters"):
        load_studies(studies, overrides={"names": ["Bearer 4f9a2c7e1b8d3f6a0c5e9b2d"]})
    res = runner.invoke(app, ["study", "run", str(template), "-o", str(tmp_path / "o.ipynb"),
                              "-p", "data_source=PGPASSWORD=s3cret"])
    assert "credential" in error_line(res) and "s3cret" not in res.output
    (tmp_path / "p.yml").write_text(yaml.safe_dump({"opts": {"k": ["AKIAIOSFODNN7EXAMPLE"]}}))
    res = runner.invoke(app, ["study", "run", str(template), "-o", str(tmp_path / "o.ipynb"),
                              "-y", str(tmp_path / "p.yml")])
    assert "AWS access key" in error_line(res) and "AKIAIOSFODNN7EXAMPLE" not in res.output
    res = runner.invoke(app, ["book", "build", "--book-dir", str(book), "--params",
                              str(tmp_path / "p.yml")])
    assert "run parameters" in error_line(res) and "AKIAIOSFODNN7EXAMPLE" not in res.output
    assert not (tmp_path / "o.ipynb").exists()
