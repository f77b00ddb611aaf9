"""A private, throw-away PostgreSQL server for the storage tests (the Debian package's binaries,
its own data directory and port; the system's cluster is never touched)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from suanwang.devstack import free_port, wait_until

INSTALL_HINT = "PostgreSQL is not installed: `make test` installs it (apt-get install -y postgresql)"


def _bin_dir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail(INSTALL_HINT)
    return os.path.dirname(found[-1])


def _as_postgres(args: list[str]) -> list[str]:
    # initdb and the server refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    bin_dir = _bin_dir()
    data = tempfile.mkdtemp(prefix="suanwang-pg-")
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([f"{bin_dir}/initdb", "-D", data, "-A", "trust", "-U", "suanwang", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    server = subprocess.Popen(
        _as_postgres(
            [
                f"{bin_dir}/postgres",
                "-D",
                data,
                "-p",
                str(port),
                "-k",
                data,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"postgresql+psycopg://suanwang@127.0.0.1:{port}/postgres"
        wait_until(
            lambda: (
                subprocess.run(
                    [f"{bin_dir}/pg_isready", "-h", "127.0.0.1", "-p", str(port)], capture_output=True
                ).returncode
                == 0
            ),
            "PostgreSQL",
            30,
            server,
        )
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Each test that takes this runs twice: on SQLite (the default) and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'suanwang.db'}"
    server_url: str = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:16]}"
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name
