"""Parameters are data, never code: typed plain values only, through every entry point."""

import datetime as dt

import pytest
import yaml
from typer.testing import CliRunner

from crmstats import StudyError
from crmstats.book import build_book, load_studies, parse_value
from crmstats.book.studies import check_parameter_types, validate_parameters
from crmstats.cli import app
from tests.test_cli import make_template

runner = CliRunner()

PARAMS_CELL = (
    'data_source: str = "demo"  # where the data come from\n'
    "x: int = 1  # a count\n"
    "rate: float = 0.5  # a share\n"
    "flag: bool = False  # a switch\n"
    "names: list[str] = []  # some names\n"
    "opts: dict = {}  # options\n"
    "anything = None  # no annotation\n"
    "maybe: Optional[int] = None  # optional count\n"
)


def error_line(res) -> str:
    """The one error line of a failed command (a progress banner may come before it)."""
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.output.strip().splitlines() if not ln.startswith("running ")]
    assert len(lines) == 1 and lines[0].startswith("crmstats: error: "), res.output
    assert "Traceback" not in res.output
    return lines[0]


def exploit(marker):
    """The issue's exploit, with a harmless payload that creates ``marker``."""
    payload = f'__import__("pathlib").Path("{marker}").touch()'
    return f"""data_source: !!pairs [{{'"+str({payload})+"': 1}}]\n"""


@pytest.fixture
def repo(tmp_path):
    """A repository with one template under notebooks/ and a book running it."""
    (tmp_path / "notebooks").mkdir()
    make_template(tmp_path / "notebooks" / "t.ipynb", "print(data_source)", PARAMS_CELL)
    book = tmp_path / "book"
    book.mkdir()
    (book / "_config.yml").write_text("title: T\n")
    (book / "intro.md").write_text("# Intro\n")
    (book / "studies.yml").write_text(yaml.safe_dump(
        {"studies": [{"slug": "t", "title": "T", "template": "notebooks/t.ipynb"}]}))
    return tmp_path


def test_the_exploit_is_real_without_the_check(tmp_path):
    """Papermill writes a tuple as unescaped text: the payload would run in the kernel."""
    from papermill.translators import PythonTranslator

    marker = tmp_path / "ran"
    value = yaml.safe_load(exploit(marker))["data_source"]
    line = f"data_source = {PythonTranslator.translate(value)}"
    exec(compile(line, "<injected parameters>", "exec"), {})  # what the kernel would run
    assert marker.exists()


def test_exploit_in_studies_yml_is_refused_by_book_build(repo):
    marker = repo / "ran"
    (repo / "book" / "studies.yml").write_text(
        "defaults:\n  " + exploit(marker)
        + "studies:\n  - {slug: t, title: T, template: notebooks/t.ipynb}\n")
    res = runner.invoke(app, ["book", "build", "--book-dir", str(repo / "book"), "-j", "1"])
    error = error_line(res)
    assert "study 't'" in error and "'data_source'" in error and "tuple" in error
    assert "__import__" not in error
    assert not marker.exists()
    assert not (repo / "book" / "studies").exists()  # nothing was executed


def test_exploit_in_run_params_is_refused_by_book_build(repo):
    marker = repo / "ran"
    run_yml = repo / "run.yml"
    run_yml.write_text(exploit(marker))
    res = runner.invoke(app, ["book", "build", "--book-dir", str(repo / "book"),
                              "--params", str(run_yml)])
    error = error_line(res)
    assert "run parameters" in error and "'data_source'" in error
    assert "tuple" in error and "__import__" not in error
    assert not marker.exists()


def test_exploit_in_study_run_yaml_is_refused(repo):
    marker = repo / "ran"
    params = repo / "p.yml"
    params.write_text(exploit(marker))
    out = repo / "out.ipynb"
    res = runner.invoke(app, ["study", "run", str(repo / "notebooks" / "t.ipynb"),
                              "-y", str(params), "-o", str(out)])
    error = error_line(res)
    assert "t.ipynb" in error and "'data_source'" in error and "tuple" in error
    assert not marker.exists() and not out.exists()


def test_run_study_itself_refuses_non_plain_values(repo, monkeypatch):
    import papermill

    from crmstats.book import run_study

    called = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: called.append(a))
    with pytest.raises(StudyError, match=r"t.ipynb: parameter 'names'\[1\] is a tuple"):
        run_study(repo / "notebooks" / "t.ipynb", repo / "o.ipynb", {"names": ["a", ("b", 1)]})
    assert called == []


YAML_CASES = [
    ("!!pairs [{a: 1}]", "tuple"),
    ("!!omap [{a: 1}, {b: 2}]", "tuple"),
    ("2024-03-01", "date"),
    ("2024-03-01 10:00:00", "datetime"),
    ("!!set {a, b}", "set"),
    ("!!binary aGVsbG8=", "binary"),
    ("[1, !!pairs [{a: 1}]]", r"'data_source'\[1\]\[0\] is a tuple"),
    ("{inner: {deeper: !!set {a}}}", r"'data_source'\['inner'\]\['deeper'\] is a set"),
    ("{? [1, 2] : x}", "not valid YAML|key"),
    ("!!python/tuple [1, 2]", "not valid YAML"),
    ("!!python/object/apply:os.system ['true']", "not valid YAML"),
    ("!!python/name:os.system", "not valid YAML"),
]


@pytest.mark.parametrize(("value", "message"), YAML_CASES, ids=[c[0] for c in YAML_CASES])
def test_non_plain_yaml_values_are_refused_everywhere(repo, value, message):
    text = f"data_source: {value}\n"
    # book/studies.yml
    (repo / "book" / "studies.yml").write_text(
        "defaults:\n  " + text + "studies:\n  - {slug: t, title: T, template: notebooks/t.ipynb}\n")
    with pytest.raises(StudyError, match=message) as err:
        load_studies(repo / "book" / "studies.yml")
    assert len(str(err.value).splitlines()) == 1
    # book build --params and study run -y
    (repo / "p.yml").write_text(text)
    for args in (["book", "build", "--book-dir", str(repo / "book"), "--params"],
                 ["study", "run", str(repo / "notebooks" / "t.ipynb"), "-o",
                  str(repo / "o.ipynb"), "-y"]):
        res = runner.invoke(app, [*args, str(repo / "p.yml")])
        assert error_line(res) and not (repo / "o.ipynb").exists()


DECLARED = {"data_source": "str", "x": "int", "rate": "float", "flag": "bool",
            "names": "list[str]", "opts": "dict", "anything": "None", "maybe": "Optional[int]"}


@pytest.mark.parametrize("params", [
    {"data_source": "demo:seed=3", "x": 5, "rate": 1, "flag": True},
    {"rate": 0.25, "names": ["a", "b"], "opts": {"a": [1, 2.5, None, {"b": "c"}]}},
    {"anything": [1, "x", None], "maybe": None},
    {"maybe": 3, "rate": float("nan")},
])
def test_plain_values_of_the_declared_type_pass(params):
    check_parameter_types(params, DECLARED, "study 't'")


@pytest.mark.parametrize(("params", "message"), [
    ({"data_source": 3}, "'data_source' is an int, but the template declares it str"),
    ({"x": 2.5}, "'x' is a float, but the template declares it int"),
    ({"x": True}, "'x' is a bool"),
    ({"flag": "yes"}, "'flag' is a str"),
    ({"names": ["a", 1]}, "'names' is a list, but the template declares it list"),
    ({"opts": ["a"]}, "'opts' is a list"),
    ({"maybe": "3"}, "'maybe' is a str"),
    ({"opts": {1: "a"}}, r"'opts' has a key that is an int"),
    ({"x": dt.date(2024, 1, 1)}, "date"),
    ({"anything": object()}, "builtins.object object"),
    ({"anything": frozenset()}, "set"),
    ({"anything": b"x"}, "binary"),
])
def test_values_not_of_the_declared_type_are_refused(params, message):
    with pytest.raises(StudyError, match=message) as err:
        check_parameter_types(params, DECLARED, "study 't'")
    assert str(err.value).startswith("study 't': parameter")


def test_subclasses_of_plain_types_are_refused():
    class Sneaky(str):
        def __repr__(self):
            return "__import__('os')"

    with pytest.raises(StudyError, match="Sneaky"):
        check_parameter_types({"data_source": Sneaky("demo")}, DECLARED, "s")


def test_deep_nesting_is_refused():
    value: list = []
    for _ in range(30):
        value = [value]
    with pytest.raises(StudyError, match="nested deeper"):
        check_parameter_types({"anything": value}, DECLARED, "s")


def test_command_line_values_follow_the_declared_type(repo):
    assert parse_value("2024", "str") == "2024"
    assert parse_value("2024", "int") == 2024
    assert parse_value("none", "Optional[int]") is None
    assert parse_value("3", "float") == 3
    declared = validate_parameters({"data_source": parse_value("2024", "str")},
                                   repo / "notebooks" / "t.ipynb", "t")
    assert declared == DECLARED


def test_slugs_templates_and_folders_are_checked(repo):
    studies = repo / "book" / "studies.yml"
    outside = repo / "elsewhere.ipynb"
    make_template(outside, "print(1)", PARAMS_CELL)
    (repo / "notebooks" / "sub").mkdir()
    (repo / "notebooks" / "link.ipynb").symlink_to(outside)
    (repo / "notebooks" / "notes.txt").write_text("x")
    ok = {"slug": "t", "title": "T", "template": "notebooks/t.ipynb"}
    cases = [
        ({**ok, "slug": "a\n"}, "slug is lowercase"),
        ({**ok, "slug": "a b"}, "slug is lowercase"),
        ({**ok, "slug": "-a"}, "slug is lowercase"),
        ({**ok, "slug": "../x"}, "slug is lowercase"),
        ({**ok, "slug": 5}, "slug is lowercase"),
        ({**ok, "template": "elsewhere.ipynb"}, "outside notebooks/"),
        ({**ok, "template": "notebooks/../elsewhere.ipynb"}, "outside notebooks/"),
        ({**ok, "template": str(outside)}, "outside notebooks/"),
        ({**ok, "template": "notebooks/link.ipynb"}, "outside notebooks/"),
        ({**ok, "template": "notebooks/sub"}, "is a folder, not a notebook"),
        ({**ok, "template": "notebooks/notes.txt"}, "not a notebook"),
        ({**ok, "template": ["x"]}, "must be a path"),
    ]
    for entry, message in cases:
        studies.write_text(yaml.safe_dump({"studies": [entry]}))
        with pytest.raises(StudyError, match=message) as err:
            load_studies(studies)
        assert len(str(err.value).splitlines()) == 1
    # a folder the file names instead of notebooks/
    studies.write_text(yaml.safe_dump({"templates": ".", "studies": [
        {**ok, "template": "elsewhere.ipynb"}]}))
    assert load_studies(studies)[0].template == outside.resolve()
    studies.write_text(yaml.safe_dump({"templates": "..", "studies": [ok]}))
    with pytest.raises(StudyError, match="inside the repository"):
        load_studies(studies)


def test_a_folder_as_template_is_a_clear_error_on_the_command_line(repo):
    res = runner.invoke(app, ["study", "run", str(repo / "notebooks")])
    assert "a folder, not a notebook" in error_line(res)
    (repo / "bad.ipynb").write_text("{not json")
    res = runner.invoke(app, ["study", "run", str(repo / "bad.ipynb")])
    assert "not a readable notebook" in error_line(res)


def test_build_book_refuses_before_taking_the_lock_or_running(repo):
    (repo / "book" / "studies.yml").write_text(
        "studies:\n  - {slug: t, title: T, template: notebooks/t.ipynb, "
        "parameters: {x: !!pairs [{a: 1}]}}\n")
    with pytest.raises(StudyError, match=r"study 't': parameter 'x'\[0\] is a tuple"):
        build_book(repo / "book")
    assert not (repo / "book" / "runs").exists()
