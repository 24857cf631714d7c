"""The study runner: papermill executes the templates, Jupyter Book publishes them.

* :mod:`crmstats.book.studies` — reading and checking ``book/studies.yml``;
* :mod:`crmstats.book.runner` — executing one or many studies with papermill;
* :mod:`crmstats.book.build` — building the book aside and swapping it in.
"""

from crmstats.book.build import BuildResult, build_book
from crmstats.book.runner import StudyResult, run_studies, run_study
from crmstats.book.studies import Study, load_studies, parse_value

__all__ = [
    "BuildResult",
    "Study",
    "StudyResult",
    "build_book",
    "load_studies",
    "parse_value",
    "run_studies",
    "run_study",
]
