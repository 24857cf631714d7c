"""Real database servers for the backend tests, started and stopped by the tests themselves.

PostgreSQL: the Debian package's ``initdb``/``pg_ctl`` make a throwaway cluster
in a temporary directory, listening on loopback only, with trust
authentication for a test role; it is stopped and deleted afterwards. Running
as root (as in containers), the server runs as the ``postgres`` system user,
since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import requires_system_tool


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres():
    """An Ibis connection to a throwaway PostgreSQL server."""
    bindir = _pg_bin()
    requires_system_tool(bindir is not None, "PostgreSQL server",
                         "apt-get install postgresql; .ci/run does this")
    ibis = pytest.importorskip("ibis")
    pytest.importorskip("psycopg")
    tmp = Path(tempfile.mkdtemp(prefix="crmstats-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(tmp, "postgres")
    data, port = tmp / "data", _free_port()

    def run(*args):
        return subprocess.run(prefix + [str(bindir / args[0]), *args[1:]],
                              capture_output=True, text=True, check=True)

    run("initdb", "-D", str(data), "-A", "trust", "-U", "crm", "--no-sync", "-E", "UTF8")
    run("pg_ctl", "-D", str(data), "-w", "-l", str(tmp / "server.log"), "-o",
        f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        con = ibis.postgres.connect(host="127.0.0.1", port=port, user="crm",
                                    database="postgres")
        yield con
        con.disconnect()
    finally:
        subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_tables(postgres, small_crm):
    """The small demo CRM's tables loaded into PostgreSQL, as Ibis tables."""
    out = {}
    for name, frame in small_crm.tables().items():
        postgres.create_table(name, frame, overwrite=True)
        out[name] = postgres.table(name)
    return out
