"""A process killed while it creates its SQLite store (an agent's first start) leaves a store the next
start can use: the migration is one transaction, so a kill leaves all of it or none of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect

from suanwang.storage.db import make_engine

# Creates the store and SIGKILLs itself right after its k-th schema statement (CREATE, ALTER, DROP).
MIGRATE_AND_DIE = """
import os, signal, sys
from sqlalchemy import event
import suanwang.storage.db as db
made = db.create_engine
def create_engine(*args, **kwargs):
    engine = made(*args, **kwargs)
    seen = []
    @event.listens_for(engine, "after_cursor_execute")
    def count(conn, cursor, statement, *rest):
        if statement.lstrip().split(" ", 1)[0].upper() in ("CREATE", "ALTER", "DROP"):
            seen.append(statement)
            if len(seen) == int(sys.argv[2]):
                os.kill(os.getpid(), signal.SIGKILL)
    return engine
db.create_engine = create_engine
db.make_engine(sys.argv[1])
print("done")
"""


def test_a_migration_killed_after_any_statement_leaves_a_usable_store(tmp_path: Path) -> None:
    killed = 0
    for k in range(1, 40, 3):
        url = f"sqlite:///{tmp_path / f'store-{k}.db'}"
        run = subprocess.run([sys.executable, "-c", MIGRATE_AND_DIE, url, str(k)], capture_output=True, timeout=60)
        if b"done" in run.stdout:
            break  # fewer schema statements than k: every later k would finish too
        assert run.returncode == -9, run.stderr.decode()[-2000:]
        killed += 1
        engine = make_engine(url)  # the next start migrates what is there
        assert {"alembic_version", "chain_cursor", "deals", "jobs"} <= set(inspect(engine).get_table_names())
        engine.dispose()
    assert killed >= 3, f"only {killed} kills fell inside the migration"
