"""Warm kernels (crmstats.book.warm): each study in a fresh kernel forked from a preloaded one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from crmstats.book.runner import run_studies
from crmstats.book.studies import Study
from crmstats.book.warm import OFF_ENV
from tests.conftest import SMALL_DEMO, make_study_template

CELLS = (
    "import os, sys\n"
    "print('preloaded', 'statsmodels.api' in sys.modules)\n"
    "print('pid', os.getpid())\n"
    "print('cwd', os.getcwd())\n"
    "print('cache', bool(os.environ.get('CRMSTATS_FIT_CACHE')))\n"
    "x = globals().get('x', 0) + 1\n"
    "print('x', x)",
    "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3]);",
    "import crmstats\nfrom crmstats.sources import _PRELOADED\n"
    "from crmstats.datasets import simulate_crm\n"
    "crm = crmstats.load_crm(data_source)\n"
    "print('made_before', crm is _PRELOADED.get(data_source))\n"
    "fresh = simulate_crm(seed=3, n_contacts=2000)\n"
    "print('same_data', all(getattr(crm, t).equals(getattr(fresh, t)) for t in crm.tables()))\n"
    "from crmstats.validation.memory import COUNTS\n"
    "crm.table('transactions')\n"
    "print('validated_here', sum(COUNTS.values()))",
)


def _run(tmp_path, n=2):
    template = make_study_template(tmp_path / "t.ipynb", *CELLS)
    studies = [Study(f"s{i}", f"s{i}", template, {"data_source": SMALL_DEMO})
               for i in range(n)]
    results = run_studies(studies, tmp_path / "out", jobs=2, cwd=tmp_path)
    assert all(r.ok for r in results), [r.error for r in results]
    out = {}
    for r in results:
        nb = json.loads(r.output.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        text = "".join("".join(o.get("text", "")) for c in code for o in c.get("outputs", []))
        out[r.slug] = {
            "lines": dict(line.split(" ", 1) for line in text.splitlines()),
            "images": sum("image/png" in o.get("data", {}) for c in code
                          for o in c.get("outputs", [])),
            "counts": [c["execution_count"] for c in code],
        }
    return out


@pytest.mark.slow
def test_studies_run_in_fresh_preloaded_kernels(tmp_path, monkeypatch):
    monkeypatch.delenv(OFF_ENV, raising=False)
    out = _run(tmp_path, n=3)
    pids = {o["lines"]["pid"] for o in out.values()}
    assert len(pids) == 3  # a kernel of its own for every study
    for o in out.values():
        assert o["lines"]["preloaded"] == "True"
        assert o["lines"]["x"] == "1"  # nothing left over from another study
        assert o["lines"]["cwd"] == str(tmp_path)
        assert o["lines"]["cache"] == "True"
        assert o["lines"]["made_before"] == "True"  # the server simulated the demo once
        assert o["lines"]["same_data"] == "True"
        assert o["lines"]["validated_here"] == "0"  # the server validated the tables once
        assert o["images"] == 1  # the inline backend works in a forked kernel
        assert o["counts"] == list(range(1, len(o["counts"]) + 1))


@pytest.mark.slow
def test_warm_kernels_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv(OFF_ENV, "0")
    out = _run(tmp_path, n=1)
    assert out["s0"]["lines"]["preloaded"] == "False"
    assert out["s0"]["lines"]["made_before"] == "False"
    assert out["s0"]["lines"]["validated_here"] != "0"
    assert out["s0"]["images"] == 1


def test_launcher_without_a_server_starts_an_ordinary_kernel(tmp_path):
    import crmstats.book.warm as warm

    launcher = Path(warm.__file__).with_name("_warm_launch.py")
    proc = subprocess.run([sys.executable, "-I", "-S", str(launcher), str(tmp_path / "none.sock"),
                           "--version"], capture_output=True, text=True, timeout=120)
    import IPython

    assert proc.returncode == 0, proc.stderr
    assert IPython.__version__ in proc.stdout  # ipykernel_launcher --version answered


def test_validate_preloaded_validates_clean_sources_and_leaves_warning_ones(monkeypatch):
    """Validated once before the fork; a source whose checks warn is left for each kernel."""
    import warnings

    import crmstats
    from crmstats.backend import backend
    from crmstats.book import warm
    from crmstats.exceptions import DataWarning
    from crmstats.sources import _PRELOADED
    from crmstats.validation.memory import COUNTS

    clean = crmstats.load_crm(SMALL_DEMO)
    rows = clean.transactions.drop(columns="order_id", errors="ignore").head(50)
    doubled = crmstats.CRMData(transactions=rows.iloc[[*range(50), 0]].reset_index(drop=True),
                               source="x")
    monkeypatch.setattr("crmstats.sources._PRELOADED", {"clean": clean, "doubled": doubled})
    assert _PRELOADED is not None
    backend()  # a connection open before: closed too (the fork must not inherit its threads)
    assert warm.validate_preloaded() == ["clean"]
    assert sys.modules["crmstats.backend"]._BACKEND is None
    assert sum(COUNTS.values()) == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in clean.tables():
            clean.table(name)
        assert sum(COUNTS.values()) == 0  # nothing validated again
        assert crmstats.execute(clean.table("transactions").count()) == len(clean.transactions)
        doubled.table("transactions")  # validated (and warned) anew
    assert COUNTS["transactions"] == 1
    assert any(issubclass(w.category, DataWarning) and "repeat" in str(w.message)
               for w in caught)


FORKED = """
import json, os, sys
from pathlib import Path
from crmstats.book.publish import build_lock
from crmstats.book.runner import run_studies
from crmstats.book.studies import Study
from crmstats.book.warm import warm_kernels
from crmstats.sources import _PRELOADED

tmp, template, source = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
with build_lock(tmp / "book"), warm_kernels(tmp, [source], fork=True) as kernel:
    made_here = source in _PRELOADED
    results = run_studies([Study("s0", "s0", template, {"data_source": source})], tmp / "out",
                          jobs=1, cwd=tmp, kernel_name=kernel)
print(json.dumps({"ok": [r.ok for r in results], "errors": [str(r.error) for r in results],
                  "me": os.getpid(), "made_here": made_here}))
"""

LINEAGE = (
    "import os\n"
    "def target(link):\n"
    "    try:\n"
    "        return os.readlink(link)\n"
    "    except OSError:  # closed meanwhile (listdir's own descriptor)\n"
    "        return ''\n"
    "def lock_held(pid):\n"
    "    fds = f'/proc/{pid}/fd'\n"
    "    return any(target(f'{fds}/{fd}').endswith('.build.lock') for fd in os.listdir(fds))\n"
    "server = os.getppid()\n"
    "print('grandparent', open(f'/proc/{server}/stat').read().rsplit(')', 1)[1].split()[1])\n"
    "print('lock', lock_held(os.getpid()) or lock_held(server))"
)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_server_is_forked_from_the_build(tmp_path, monkeypatch):
    """The build makes the sources once and forks the server: its kernels inherit them."""
    monkeypatch.delenv(OFF_ENV, raising=False)
    template = make_study_template(tmp_path / "t.ipynb", LINEAGE, CELLS[2])
    proc = subprocess.run([sys.executable, "-c", FORKED, str(tmp_path), str(template),
                           SMALL_DEMO], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    done = json.loads(proc.stdout.strip().splitlines()[-1])
    assert done["ok"] == [True], done["errors"]
    assert done["made_here"]  # the demo was made in the build's process, before the fork
    nb = json.loads((tmp_path / "out" / "s0.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c.get("outputs", []))
    lines = dict(line.split(" ", 1) for line in text.splitlines())
    assert lines["grandparent"] == str(done["me"])  # kernel <- server <- the build
    assert lines["lock"] == "False"  # only the build holds its lock
    assert lines["made_before"] == "True"
    assert lines["same_data"] == "True"
    assert lines["validated_here"] == "0"


def test_no_fork_while_other_threads_run():
    """A fork copies other threads' held locks, not the threads: then the server is spawned."""
    import threading

    from crmstats.book import warm

    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        assert not warm._can_fork()
    finally:
        release.set()
        thread.join()


FIGURES = """
import hashlib, json, os, sys
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
pngs, draws = [], []

class Capture(DisplayPublisher):
    def publish(self, data, metadata=None, **kwargs):
        if "image/png" in data:
            pngs.append(hashlib.sha256(str(data["image/png"]).encode()).hexdigest())

class Shell(InteractiveShell):
    display_pub_class = Capture

    def enable_gui(self, gui=None):  # the inline backend needs no GUI loop
        pass

if sys.argv[1] == "kernel":  # as in a warm kernel
    from crmstats.book.warm import _render_inline_figures_once
    _render_inline_figures_once()
shell = Shell.instance()
shell.user_ns["draws"] = draws
for layout in ("constrained", None):
    shell.run_cell(
        "import matplotlib.pyplot as plt\\n"
        f"fig, ax = plt.subplots(figsize=(4, 3), layout={layout!r})\\n"
        "im = ax.imshow([[1, 2], [3, 4]])\\n"
        "fig.colorbar(im, label='a long colour bar label')\\n"
        "ax.set_title('a title'); ax.set_ylabel('a label')\\n"
        "fig.canvas.mpl_connect('draw_event', lambda event: draws.append(1))\\n"
    ).raise_error()
print(json.dumps({"pngs": pngs, "draws": len(draws)}))
"""


def test_kernels_lay_figures_out_without_drawing_them_twice():
    """The inline figures are the same bytes with one drawing less each (layout kept)."""
    out = {}
    for mode in ("plain", "kernel"):
        proc = subprocess.run([sys.executable, "-c", FIGURES, mode], capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["plain"]["pngs"]) == 2
    assert out["kernel"]["pngs"] == out["plain"]["pngs"]  # a constrained layout included
    assert out["kernel"]["draws"] == out["plain"]["draws"] - 2  # pyplot's redraw, per figure


def test_the_command_line_forks_the_server_from_its_build(monkeypatch, tmp_path):
    """``crmstats book build`` (a process that does nothing else) forks; other callers do not."""
    import inspect

    from typer.testing import CliRunner

    import crmstats.book.build as build
    from crmstats import cli
    from crmstats.exceptions import CRMStatsError

    assert inspect.signature(build.build_book).parameters["fork_server"].default is False
    seen = {}

    def fake_build(book_dir, **kwargs):
        seen.update(kwargs)
        raise CRMStatsError("stopped here")

    monkeypatch.setattr(build, "build_book", fake_build)
    result = CliRunner().invoke(cli.app, ["book", "build", "--book-dir", str(tmp_path)])
    assert "stopped here" in result.output
    assert seen["fork_server"] is True


@pytest.mark.slow
def test_the_shutdown_interrupt_is_not_an_error_on_the_console(tmp_path, monkeypatch, capfd):
    """Jupyter interrupts each kernel it shuts down; ipykernel's ERROR line about it stays out."""
    monkeypatch.delenv(OFF_ENV, raising=False)
    cell = ("import logging\n"
            "log = logging.getLogger('IPKernelApp')\n"
            "log.error('KeyboardInterrupt caught in kernel.')  # as ipykernel logs it\n"
            "log.error('crmstats-probe: another error')")
    template = make_study_template(tmp_path / "t.ipynb", cell)
    results = run_studies([Study("s0", "s0", template, {"data_source": SMALL_DEMO})],
                          tmp_path / "out", jobs=1, cwd=tmp_path)
    assert results[0].ok, results[0].error
    console = capfd.readouterr().err
    assert "crmstats-probe: another error" in console  # the kernel's log reaches the console
    assert "KeyboardInterrupt caught in kernel" not in console
