"""The ``crmstats`` command line: run studies, build the book, export data."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Annotated

import typer

from crmstats.exceptions import CRMStatsError

app = typer.Typer(
    help="crmstats: CRM KPI studies — run study notebooks and build the book.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
study_app = typer.Typer(help="Run one study template.", no_args_is_help=True)
book_app = typer.Typer(help="Build the Jupyter Book of KPI studies.", no_args_is_help=True)
data_app = typer.Typer(help="Data sources.", no_args_is_help=True)
scores_app = typer.Typer(help="Customer scores (the customer 360) for the CRM.",
                         no_args_is_help=True)
app.add_typer(study_app, name="study")
app.add_typer(book_app, name="book")
app.add_typer(data_app, name="data")
source_app = typer.Typer(help="Source files (crmstats.yml): map your own CRM export.",
                         no_args_is_help=True)
app.add_typer(source_app, name="source")


app.add_typer(scores_app, name="scores")


def _fail(exc: Exception) -> None:
    typer.echo(f"crmstats: error: {exc}", err=True)
    raise typer.Exit(code=1)


def _version(value: bool) -> None:
    if value:
        from crmstats._version import __version__

        typer.echo(f"crmstats {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Run CRM KPI studies and publish them as a book."""


def _read_yaml_params(path: Path | None) -> dict:
    """Read a YAML file of parameters: bounded plain data (crmstats.yamlfile); types later."""
    from crmstats.yamlfile import read_yaml

    if path is None:
        return {}
    if not path.exists():
        raise CRMStatsError(f"{path}: no such parameters file")
    data = read_yaml(path, what="parameters file") or {}
    if not isinstance(data, dict) or not all(type(k) is str for k in data):
        raise CRMStatsError(f"{path}: expected a mapping of parameter names to values")
    return data


@study_app.command("run")
def study_run(
    template: Annotated[Path, typer.Argument(help="Study template notebook.")],
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Executed notebook (default "
                                                "book/studies/<template name>).")] = None,
    parameter: Annotated[list[str] | None, typer.Option(
        "-p", "--parameter", help="NAME=VALUE (repeatable); values parse as int, float, "
        "bool, none or string.")] = None,
    parameters_yaml: Annotated[Path | None, typer.Option(
        "-y", "--parameters-yaml", help="YAML file of parameters.")] = None,
) -> None:
    """Run one study template with papermill."""
    from crmstats.book.runner import run_study
    from crmstats.book.studies import declared_parameters, parse_value

    try:
        params = _read_yaml_params(parameters_yaml)
        declared = declared_parameters(template)
        for item in parameter or []:
            if "=" not in item:
                raise CRMStatsError(f"parameter {item!r} is not of the form NAME=VALUE")
            name, value = item.split("=", 1)
            params[name.strip()] = parse_value(value, declared.get(name.strip(), ""))
        out = output or Path("book") / "studies" / template.name
        # run_study refuses undeclared names, values that are not plain data of the
        # declared type and credential-looking values before anything is executed
        run_study(template, out, params, progress=True)
    except CRMStatsError as exc:
        _fail(exc)
    typer.echo(f"wrote {out}")


@book_app.command("build")
def book_build(
    params: Annotated[Path | None, typer.Option(
        "--params", help="YAML of run-wide parameters (data_source, period, ...).")] = None,
    book_dir: Annotated[Path, typer.Option("--book-dir", help="The book folder.")] = Path("book"),
    jobs: Annotated[int | None, typer.Option("--jobs", "-j",
                                             help="Studies run in parallel (default: cores).")]
    = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="Only this study slug "
                                                   "(repeatable).")] = None,
    keep_going: Annotated[bool, typer.Option(
        "--keep-going", help="Run every study even after one failed, and publish the book with "
        "the failed ones marked as failed (the exit status is still non-zero).")] = False,
    keep_runs: Annotated[int, typer.Option(
        "--keep-runs", help="Run archives kept in book/runs (the newest, and always the latest "
        "published one); 0 keeps all.")] = 30,
    export_scores_to: Annotated[str | None, typer.Option(
        "--export-scores", help="After a successful build, write the customer 360 of the run's "
        "data source here (.parquet, .csv, .duckdb or postgresql:// URL), with the run's id.")]
    = None,
    scores_table: Annotated[str, typer.Option(
        "--scores-table", help="Table name for --export-scores into a database.")]
    = "crmstats_scores",
    replace_scores: Annotated[bool, typer.Option(
        "--replace-scores", help="--export-scores may overwrite an existing file (as "
        "scores export --replace).")] = False,
) -> None:
    """Execute every study with papermill and build the book to book/_build/html."""
    from crmstats.book.build import build_book
    from crmstats.book.runner import print_progress

    try:
        run_params = _read_yaml_params(params)
        typer.echo(f"running the studies of {book_dir / 'studies.yml'} ...", err=True)
        result = build_book(book_dir, params=run_params, only=only, jobs=jobs,
                            keep_going=keep_going, on_done=print_progress,
                            keep_runs=keep_runs, params_file=str(params) if params else None,
                            fork_server=True)  # this process does nothing but the build
    except CRMStatsError as exc:
        _fail(exc)
    for repaired in result.recovered:
        typer.echo(f"repaired after an interrupted build: {repaired}", err=True)
    if result.unavailable:
        typer.echo(f"not available for this source ({len(result.unavailable)}, listed on the "
                   f"page 'Not available for this source'): "
                   f"{', '.join(result.unavailable)}", err=True)
    typer.echo(f"book published: {result.html / 'index.html'} (run archived in {result.run_dir})")
    if result.failures:
        names = "\n  ".join(str(r.error) for r in result.failures)
        _fail(CRMStatsError(f"published with {len(result.failures)} failed study(ies), "
                            f"marked as failed in the book:\n  {names}"))
    if export_scores_to:
        _export_book_scores(book_dir, run_params, result, export_scores_to, scores_table,
                            replace_scores)


def _export_book_scores(book_dir: Path, run_params: dict, result, to: str, table: str,
                        replace: bool = False) -> None:
    """Write the customer 360 of a successful build's data source, with the run's id."""
    from crmstats.scores import export_customer_scores
    from crmstats.sources import resolve_source
    from crmstats.yamlfile import read_yaml

    try:
        spec = read_yaml(book_dir / "studies.yml", what="studies file") or {}
        source = run_params.get("data_source") or (spec.get("defaults") or {}).get(
            "data_source", "demo")
        # read as the studies' kernels read it: a relative path from the book's repository
        source = resolve_source(source, book_dir.parent)
        run_id = result.run_dir.name if result.run_dir is not None else None
        with _warnings_as_lines():
            done = export_customer_scores(source, to, table=table, run_id=run_id,
                                          replace=replace)
    except (CRMStatsError, ValueError) as exc:
        _fail(CRMStatsError(f"book published, but the scores export failed: {exc}"))
    typer.echo(f"scores exported: {done.rows:,} rows to {done.target}"
               + (f" table {done.table}" if done.table else "") + f" (run {done.run_id})")


@data_app.command("export")
def data_export(
    source: Annotated[str, typer.Argument(help="Data source: demo, demo:seed=N, cdnow, ...")],
    directory: Annotated[Path, typer.Argument(help="Folder for <table>.parquet files.")],
) -> None:
    """Write a data source's tables to a folder of Parquet files."""
    import crmstats

    try:
        paths = crmstats.export_crm(crmstats.load_crm(source), directory)
    except (CRMStatsError, ValueError) as exc:
        _fail(exc)
    for p in paths:
        typer.echo(f"wrote {p}")


@data_app.command("messy")
def data_messy(
    source: Annotated[str, typer.Argument(help="Data source to export: demo:seed=N,... .")],
    directory: Annotated[Path, typer.Argument(help="Folder for the export and its "
                                              "crmstats.yml.")],
    name: Annotated[str, typer.Option(help="The source file's name.")] = "ACME CRM export",
) -> None:
    """Write a messy CRM export of a source with the crmstats.yml that maps it back.

    Own column names, day-first dates, comma decimals, own stage and channel
    names, duplicate and blank-id rows: read through its source file, the
    export gives exactly the source's KPIs.
    """
    from crmstats.datasets.messy import write_messy_export

    try:
        path = write_messy_export(directory, source, name=name)
    except (CRMStatsError, ValueError) as exc:
        _fail(exc)
    typer.echo(f"wrote {path.parent} (source file {path})")


@source_app.command("init")
def source_init(
    folder: Annotated[Path, typer.Argument(help="Folder of your CSV/Parquet export.")],
    name: Annotated[str | None, typer.Option(help="Display name (default: the folder's "
                                                  "name).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing "
                                                        "crmstats.yml.")] = False,
) -> None:
    """Write FOLDER/crmstats.yml from the files found, every guess to review.

    Tables, column mapping, stage and channel names to map, date and number
    formats.
    """
    from crmstats.sources import SOURCE_FILE, init_source_file

    target = folder / SOURCE_FILE
    try:
        if target.exists() and not force:
            raise CRMStatsError(f"{target} exists; use --force to overwrite it")
        text = init_source_file(folder, name=name)
    except (CRMStatsError, ValueError) as exc:
        _fail(exc)
    target.write_text(text, encoding="utf-8")
    typer.echo(text)
    typer.echo(f"wrote {target}; review it, then: crmstats source check {target}")


@source_app.command("check")
def source_check(
    file: Annotated[Path, typer.Argument(help="A crmstats.yml (or the folder holding "
                                              "it).")],
    book_dir: Annotated[Path, typer.Option("--book-dir", help="The book whose studies are "
                                           "listed as supported or not.")] = Path("book"),
) -> None:
    """Validate every table of a source file and print what it reads, drops and flags.

    Then list the book's studies the source supports, and what each of the
    others needs.
    """
    import warnings

    import pandas as pd

    from crmstats.exceptions import DataWarning
    from crmstats.quality import data_quality
    from crmstats.sources import load_crm

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataWarning)
            crm = load_crm(file)
            report = data_quality(crm)
    except (CRMStatsError, ValueError) as exc:
        _fail(exc)
    typer.echo(f"source {crm.name!r} ({crm.source})")
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.max_colwidth", 80):
        typer.echo(report.drop(columns=["mapping"]).to_string())
    for table, mapping in report["mapping"].items():
        typer.echo(f"  {table}: {mapping}")
    seen = set()
    for w in caught:
        text = str(w.message)
        if issubclass(w.category, DataWarning) and text not in seen:
            seen.add(text)
            typer.echo(f"warning: {text}", err=True)
    _echo_study_support(crm, book_dir)
    bad = report.index[report["flags"].str.startswith("unusable")].tolist()
    for table in bad:  # in full, with the example rows the table above leaves out
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataWarning)
                crm.table(table)
        except CRMStatsError as exc:
            typer.echo(f"error: {exc}", err=True)
    if bad:
        _fail(CRMStatsError(f"{len(bad)} table(s) unusable: {', '.join(bad)}"))
    typer.echo("ok: every table validates")


def _echo_study_support(crm, book_dir: Path) -> None:
    """Print which studies of ``book_dir/studies.yml`` the source supports, and why not."""
    from crmstats.book.build import needs_text, unmet_needs
    from crmstats.book.studies import load_studies

    path = book_dir / "studies.yml"
    if not path.is_file():
        typer.echo(f"(no {path} here: run from the repository root, or give --book-dir, to "
                   "see which studies this source supports)", err=True)
        return
    try:
        studies = load_studies(path, check_parameters=False)
    except CRMStatsError as exc:
        typer.echo(f"warning: cannot list the studies: {exc}", err=True)
        return
    verdicts = [(s, unmet_needs(s, crm)) for s in studies]
    supported = [s.slug for s, unmet in verdicts if not unmet]
    typer.echo(f"studies supported ({len(supported)} of {len(studies)}): "
               + (", ".join(supported) or "none"))
    for study, unmet in verdicts:
        if unmet:
            typer.echo(f"  not available: {study.slug} — needs "
                       + ", ".join(needs_text(item).replace("`", "") for item in unmet))


@contextlib.contextmanager
def _warnings_as_lines():
    """Show each distinct warning raised inside as one ``warning:`` line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for text in dict.fromkeys(" ".join(str(w.message).split()) for w in caught):
                typer.echo(f"warning: {text}", err=True)


@scores_app.command("export")
def scores_export(
    source: Annotated[str, typer.Argument(help="Data source: demo, a folder, a source file or "
                                               "a database URL (see crmstats.load_crm).")],
    to: Annotated[str, typer.Option("--to", help="Where to write: a .parquet/.csv file, a "
                                                 ".duckdb file or a postgresql:// URL.")],
    table: Annotated[str, typer.Option("--table", help="Table name in a database "
                                                       "(name or schema.name).")]
    = "crmstats_scores",
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date of the scores (default: "
                                                              "the data's last date).")] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Run id stored in every row "
                                                                "(default: time + random).")]
    = None,
    bootstrap: Annotated[int | None, typer.Option(
        "--bootstrap", help="Bootstrap refits for the CLV interval (0: none; default 50, "
        "none with --model).")] = None,
    column: Annotated[list[str] | None, typer.Option(
        "--column", help="Contacts column to carry (repeatable); personal ones only when the "
        "source marks them exportable.")] = None,
    model: Annotated[list[Path] | None, typer.Option(
        "--model", help="A saved model file (Model.save) to value customers with instead of "
        "fitting: a BG/NBD, MBG/NBD or Pareto/NBD and/or a Gamma-Gamma (repeatable).")] = None,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Overwrite an existing file, or replace a database table that is not "
        "a crmstats scores table (never the source's own files or tables, never a table a "
        "view depends on).")] = False,
    raw: Annotated[bool, typer.Option(
        "--raw", help="CSV: write text cells as they are (default: cells a spreadsheet would "
        "evaluate, =... +... -... @..., get a leading ').")] = False,
    pseudonymize: Annotated[bool, typer.Option(
        "--pseudonymize", help="Write keyed pseudonyms of the ids (column id_pseudonym) "
        "instead of the ids.")] = False,
    lock_timeout: Annotated[float, typer.Option(
        "--lock-timeout", help="Seconds to wait for a DuckDB file or PostgreSQL table another "
        "process holds.")] = 60.0,
) -> None:
    """Write the customer 360 (one scored row per customer and open lead) for the CRM."""
    from crmstats.scores import export_customer_scores

    try:
        with _warnings_as_lines():
            if bootstrap is None:
                bootstrap = 0 if model else 50
            done = export_customer_scores(source, to, table=table, as_of=as_of, run_id=run_id,
                                          n_bootstrap=bootstrap, contact_columns=column or (),
                                          replace=replace, raw=raw, pseudonymize=pseudonymize,
                                          lock_timeout=lock_timeout, models=model or ())
    except (CRMStatsError, ValueError) as exc:
        _fail(exc)
    typer.echo(f"wrote {done.rows:,} rows to {done.target}"
               + (f" table {done.table}" if done.table else "") + f" (run {done.run_id})")


if __name__ == "__main__":  # pragma: no cover
    app()
