"""The study runner: papermill executes the templates, Jupyter Book publishes them.

* :mod:`crmstats.book.studies` — reading and checking ``book/studies.yml``;
* :mod:`crmstats.book.runner` — executing one or many studies with papermill;
* :mod:`crmstats.book.build` — building the book aside and swapping it in;
* :mod:`crmstats.book.kpis` — headline KPIs recorded by studies, the summary page;
* :mod:`crmstats.book.report` — numbers formatted for readers (``format_table``,
  ``fmt_money``, ``fmt_pct``...), "Key findings" first and "Data notes" last
  (``StudyPage``).
"""

from typing import TYPE_CHECKING

from crmstats._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy exports (crmstats._lazy reads this block)
    from crmstats.book import report
    from crmstats.book.build import BuildResult, build_book
    from crmstats.book.kpis import HEADLINE_KPIS, read_kpis, record_kpis
    from crmstats.book.report import StudyPage, fmt_money, fmt_pct, format_table
    from crmstats.book.runner import StudyResult, run_studies, run_study
    from crmstats.book.studies import Study, comma_list, load_studies, parse_value

__all__ = [
    "BuildResult",
    "HEADLINE_KPIS",
    "Study",
    "StudyPage",
    "StudyResult",
    "build_book",
    "comma_list",
    "fmt_money",
    "fmt_pct",
    "format_table",
    "load_studies",
    "parse_value",
    "read_kpis",
    "record_kpis",
    "report",
    "run_studies",
    "run_study",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
