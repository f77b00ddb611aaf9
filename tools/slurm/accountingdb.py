"""Slurm accounting for the test cluster: a private MariaDB and a slurmdbd, both under the cluster directory.

The recipe is ../shared/docs/SLURM.md ("Accounting"): ``mariadb-install-db`` into ``<dir>/db/data``,
``mariadbd`` on a private socket and a loopback port, a ``slurm`` database user, ``slurmdbd.conf`` (mode
600: slurmdbd refuses a readable one, slurmdbd.conf(5)) next to slurm.conf, and the cluster added with
``sacctmgr -i add cluster`` before slurmctld starts, so slurmctld needs no restart.

mariadbd runs as root (``--user=root``): the pytest directories it lives in are mode 700, so the ``mysql``
user could not reach its data directory.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

READY_TIMEOUT_S = 60.0

Run = Callable[..., subprocess.CompletedProcess[str]]


class AccountingError(Exception):
    """The accounting database or slurmdbd did not come up; the message says where to look."""


def render_slurmdbd_conf(directory: Path, host: str, dbd_port: int, db_port: int, password: str) -> str:
    return (
        "\n".join(
            [
                "AuthType=auth/munge",
                f"DbdHost={host}",
                "DbdAddr=127.0.0.1",
                f"DbdPort={dbd_port}",
                "SlurmUser=root",
                f"PidFile={directory}/run/slurmdbd.pid",
                f"LogFile={directory}/log/slurmdbd.log",
                "StorageType=accounting_storage/mysql",
                "StorageHost=127.0.0.1",
                f"StoragePort={db_port}",
                "StorageUser=slurm",
                f"StoragePass={password}",
                "StorageLoc=slurm_acct_db",
            ]
        )
        + "\n"
    )


def accounting_conf_lines(host: str, dbd_port: int, gather_frequency_s: int) -> list[str]:
    """The slurm.conf lines that send jobs to slurmdbd and sample their memory and CPU use."""
    return [
        "AccountingStorageType=accounting_storage/slurmdbd",
        f"AccountingStorageHost={host}",
        f"AccountingStoragePort={dbd_port}",
        # GRES are not accounted unless listed (slurm.conf(5), AccountingStorageTRES); cpu, mem, node are.
        "AccountingStorageTRES=gres/gpu,gres/shard",
        "JobAcctGatherType=jobacct_gather/linux",
        # MaxRSS is a sample: a step shorter than one interval may show nothing (default 30 s).
        f"JobAcctGatherFrequency={gather_frequency_s}",
    ]


def start_database(directory: Path, db_port: int, binary: Callable[[str], str], run: Run) -> str:
    """Initialises and starts mariadbd; returns the password of its ``slurm`` user."""
    db = directory / "db"
    data = db / "data"
    run(
        [
            binary("mariadb-install-db"),
            "--no-defaults",
            "--user=root",
            f"--datadir={data}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]
    )
    socket_path = db / "mysqld.sock"
    log = open(directory / "log" / "mariadbd.log", "ab")  # noqa: SIM115 - handed to the daemon for its life
    with log:
        subprocess.Popen(
            [
                binary("mariadbd"),
                "--no-defaults",
                "--user=root",
                f"--datadir={data}",
                f"--socket={socket_path}",
                f"--port={db_port}",
                "--bind-address=127.0.0.1",
                f"--pid-file={directory / 'run' / 'mariadbd.pid'}",
                "--skip-name-resolve",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    password = secrets.token_hex(12)
    users = " ".join(
        f"CREATE USER 'slurm'@'{h}' IDENTIFIED BY '{password}'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'{h}';"
        for h in ("localhost", "127.0.0.1")
    )
    mariadb = [binary("mariadb"), "--no-defaults", f"--socket={socket_path}", "-u", "root"]
    retry_until_ok("mariadbd to accept connections", [*mariadb, "-e", users], run, directory / "log" / "mariadbd.log")
    return password


def start_slurmdbd(
    directory: Path, cluster_name: str, env: dict[str, str], binary: Callable[[str], str], run: Run
) -> None:
    """Starts slurmdbd (slurmdbd.conf must be in place) and registers the cluster in it."""
    run([binary("slurmdbd")], env=env)
    retry_until_ok(
        "slurmdbd to register the cluster",
        [binary("sacctmgr"), "-i", "add", "cluster", cluster_name],
        run,
        directory / "log" / "slurmdbd.log",
        env=env,
    )


def retry_until_ok(what: str, argv: list[str], run: Run, log: Path, env: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        proc = run(argv, env=env, check=False)
        if proc.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AccountingError(
                f"gave up waiting {READY_TIMEOUT_S:.0f} s for {what}: {proc.stderr.strip() or proc.stdout}; see {log}"
            )
        time.sleep(0.2)
