"""A real, throwaway PostgreSQL server for the tests: Debian's binaries, a cluster in a temp dir.

`PostgresServer.start()` runs initdb and pg_ctl from the installed `postgresql` package (.ci/setup
installs it), as the unprivileged `postgres` user when the tests run as root (initdb refuses
root), listening on a free loopback port only. Missing binaries fail the test with the fix; they
never skip it.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.engagelab import app_key_fingerprint
from reconciler.state.backend import Store
from reconciler.state.store import StateStore

SETUP_HINT = "install Debian's postgresql package: `bash .ci/setup` (as root) does"


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError(f"PostgreSQL's initdb was not found; {SETUP_HINT}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    def __init__(self) -> None:
        self.bindir = _bindir()
        self.tmp = Path(tempfile.mkdtemp(prefix="reconcile-pg-"))
        self.data = self.tmp / "data"
        self.port = _free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"  # util-linux, in sbin
            self._as_user = [runuser, "-u", "postgres", "--"]
            shutil.chown(self.tmp, "postgres")
            self.tmp.chmod(0o755)

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> None:
        done = subprocess.run(
            [*self._as_user, *argv], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()}")

    def start(self) -> PostgresServer:
        if not self.data.exists():
            self._run(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--no-sync",  # a throwaway cluster: the tests' durability is the server's
            )
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.tmp / "server.log"))
        return self

    def _pg_ctl(self, *argv: str) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.tmp} "
            "-c fsync=on -c max_connections=100"
        )
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, *argv)

    def restart(self) -> None:
        """Stop (fast: open sessions are cut) and start again, as a server restart does."""
        self._pg_ctl("restart", "-m", "fast", "-w", "-t", "60", "-l", str(self.tmp / "server.log"))

    def stop(self) -> None:
        try:
            self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "60")
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def new_database(self) -> str:
        """A fresh, empty database on this server; its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url_for(name)

    def wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


# --- fixtures (a pytest plugin: tests/conftest.py loads it) ---------------------------------

STATE_URL_ENV = "RECONCILE_TEST_STATE_URL"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole test session."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_url(postgres: PostgresServer) -> str:
    """A database shared by the tests; each test keys its states by a project of its own."""
    return postgres.new_database()


@dataclass
class Backend:
    """One state backend, for tests that must hold for both (`backend` fixture).

    `store()` opens the test's state (a new store object each time, as a new process would);
    `configure(root)` points a project's default environment at it (reconcile.toml), so the
    CLI under test uses it.
    """

    kind: str
    root: Path
    url: str = ""
    project: str = ""

    def store(self, path: Path | None = None) -> Store:
        if self.kind == "file":
            return StateStore(path or self.root / "state" / "default.json")
        from reconciler.state.pg import PgLocation, PgStateStore

        location = PgLocation(
            url=self.url,
            url_env=STATE_URL_ENV,
            project=self.project,
            environment="default",
            app_key_fingerprint=app_key_fingerprint(os.environ.get("ENGAGELAB_APP_KEY", "k")),
        )
        return PgStateStore(location)

    def configure(self, root: Path | None = None) -> None:
        if self.kind == "file":
            return
        config = (root or self.root) / "reconcile.toml"
        config.write_text(
            "[environments.default]\n"
            f'state = {{ url_env = "{STATE_URL_ENV}", project = "{self.project}" }}\n',
            encoding="utf-8",
        )


@pytest.fixture(params=["file", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Backend:
    """Each backend in turn (the test runs once per backend)."""
    if request.param == "file":
        return Backend("file", tmp_path)
    url: str = request.getfixturevalue("pg_url")
    monkeypatch.setenv(STATE_URL_ENV, url)
    return Backend("postgres", tmp_path, url=url, project="t-" + uuid.uuid4().hex[:12])


@pytest.fixture
def pg_backend(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """The PostgreSQL backend only, for what the file store has no counterpart of."""
    monkeypatch.setenv(STATE_URL_ENV, pg_url)
    return Backend("postgres", tmp_path, url=pg_url, project="t-" + uuid.uuid4().hex[:12])


def open_store(spec: str) -> Store:
    """The store a `Backend.spec()` names, opened in another process (a lock holder, a kill)."""
    data = json.loads(spec)
    backend = Backend(data["kind"], Path(data["root"]), url=data["url"], project=data["project"])
    return backend.store()


HOLDER = """
import sys
from tests.support.postgres import open_store
store = open_store(sys.argv[1])
with store.lock(sys.argv[2]):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def spec_of(backend: Backend) -> str:
    return json.dumps(
        {
            "kind": backend.kind,
            "root": str(backend.root),
            "url": backend.url,
            "project": backend.project,
        }
    )
