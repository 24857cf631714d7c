"""Which warm kernel a study gets (crmstats.book.warm_policy): lean kernels for own-data studies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crmstats.book.studies import Study
from crmstats.book.warm import KERNEL_NAME, OFF_ENV
from crmstats.book.warm_policy import LEAN_KERNEL_NAME, kernel_for
from tests.conftest import SMALL_DEMO, make_study_template


def _study(source: str, *requires: tuple[str, ...]) -> Study:
    return Study("s", "s", Path("t.ipynb"), {"data_source": source}, requires=requires)


def test_studies_that_simulate_their_own_demo_get_the_lean_kernel():
    assert kernel_for(KERNEL_NAME, _study("demo", ("experiments",))) == LEAN_KERNEL_NAME
    assert kernel_for(KERNEL_NAME, _study("demo:n_contacts=400000", ("spend@weekly",),
                                          ("conversions",))) == LEAN_KERNEL_NAME
    # the preloaded demo itself, or a source that is not simulated: the ordinary warm kernel
    assert kernel_for(KERNEL_NAME, _study("demo", ("transactions",), ("spend",))) == KERNEL_NAME
    assert kernel_for(KERNEL_NAME, _study("data/acme", ("experiments",))) == KERNEL_NAME
    assert kernel_for(KERNEL_NAME, _study("cdnow", ("spend@weekly",))) == KERNEL_NAME
    # no warm kernels (CRMSTATS_WARM_KERNELS=0): as asked
    assert kernel_for("python3", _study("demo", ("experiments",))) == "python3"


BUILD = """
import json, sys
from pathlib import Path
from crmstats.book.publish import build_lock
from crmstats.book.runner import run_studies
from crmstats.book.studies import Study
from crmstats.book.warm import warm_kernels

tmp, template, source, fork = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
studies = [Study("full", "full", template, {"data_source": source}, requires=(("spend",),)),
           Study("lean", "lean", template, {"data_source": source},
                 requires=(("experiments",),))]
with build_lock(tmp / "book"), warm_kernels(tmp, [source], fork=fork == "fork") as kernel:
    results = run_studies(studies, tmp / "out", jobs=2, cwd=tmp, kernel_name=kernel)
print(json.dumps({"errors": [str(r.error) for r in results if not r.ok]}))
"""

CELL = (
    "import os, sys\n"
    "from crmstats.sources import _PRELOADED\n"
    "print('preloaded', sorted(_PRELOADED))\n"
    "print('imported', 'statsmodels.api' in sys.modules)\n"
    "print('server', os.getppid())\n"
    "from crmstats.book.warm_policy import blas_threads\n"
    "print('blas', sorted(set(blas_threads())))\n"
    "import crmstats\n"
    "crm = crmstats.load_crm(data_source)\n"
    "print('rows', len(crm.transactions))"
)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["fork", "spawn"])
def test_lean_kernels_carry_no_preloaded_source(tmp_path, monkeypatch, how):
    """A study that makes its own data runs in a warm kernel without the preloaded demo."""
    monkeypatch.delenv(OFF_ENV, raising=False)
    template = make_study_template(tmp_path / "t.ipynb", CELL)
    proc = subprocess.run([sys.executable, "-c", BUILD, str(tmp_path), str(template),
                           SMALL_DEMO, how], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["errors"] == []
    lines = {}
    for slug in ("full", "lean"):
        nb = json.loads((tmp_path / "out" / f"{slug}.ipynb").read_text())
        text = "".join("".join(o.get("text", "")) for c in nb["cells"]
                       if c["cell_type"] == "code" for o in c.get("outputs", []))
        lines[slug] = dict(line.split(" ", 1) for line in text.splitlines())
    assert lines["full"]["preloaded"] == repr([SMALL_DEMO])
    assert lines["lean"]["preloaded"] == "[]"  # forked before the demo was made
    assert lines["lean"]["imported"] == "True"  # but warm: the stack is imported
    assert lines["lean"]["server"] != lines["full"]["server"]
    assert lines["lean"]["rows"] == lines["full"]["rows"]  # a lean kernel makes the same data
    assert lines["full"]["blas"] == lines["lean"]["blas"] == "[1]"  # one BLAS thread a kernel


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_one_blas_thread_sets_every_loaded_openblas():
    code = ("import numpy, scipy.linalg\n"
            "from crmstats.book.warm_policy import blas_threads, one_blas_thread\n"
            "print(len(blas_threads()), one_blas_thread(), sorted(set(blas_threads())))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ,
                                            "OPENBLAS_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr
    found, done, after = proc.stdout.split(maxsplit=2)
    assert int(found) >= 1 and done == found  # NumPy's OpenBLAS at least, each one set
    assert after.strip() == "[1]"
