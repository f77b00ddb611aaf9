"""The munged every test cluster on this host shares, on munge's default socket.

slurmctld's connection to slurmdbd ignores slurm.conf's ``AuthInfo=socket=`` and uses the default socket
``/run/munge/munge.socket.2``; with a private socket slurmctld dies with "Problem adding tres to the
database" (../shared/docs/SLURM.md). So every cluster uses the default socket and one munged with
``/etc/munge/munge.key``. Each cluster registers under ``/run/munge/suanwang-clusters`` (under a lock); the
munged is started by the first cluster when none answers and stopped by the last one to go, and only if
it was started here (its pid file is ``/run/munge/suanwang-munged.pid``): a system munged is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

MUNGE_DIR = Path("/run/munge")
MUNGE_SOCKET = MUNGE_DIR / "munge.socket.2"
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_PIDFILE = MUNGE_DIR / "suanwang-munged.pid"
MUNGE_USERS = MUNGE_DIR / "suanwang-clusters"

Run = Callable[..., subprocess.CompletedProcess[str]]


class MungeError(Exception):
    """munged could not be started or does not answer."""


def _entry(directory: Path) -> str:
    return hashlib.sha256(str(directory).encode()).hexdigest()[:16]


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def registry() -> Iterator[Path]:
    """The registry of clusters using the shared munged, under an exclusive lock."""
    MUNGE_USERS.mkdir(parents=True, exist_ok=True)
    with open(MUNGE_DIR / "suanwang.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield MUNGE_USERS


def answers(binary: Callable[[str], str]) -> bool:
    probe = subprocess.run(
        f"{binary('munge')} -n -S {MUNGE_SOCKET} | {binary('unmunge')} -S {MUNGE_SOCKET}",
        shell=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return probe.returncode == 0


def start(directory: Path, binary: Callable[[str], str], run: Run) -> None:
    """Registers this cluster with the shared munged on the default socket, starting it if none answers."""
    MUNGE_DIR.mkdir(parents=True, exist_ok=True)
    MUNGE_DIR.chmod(0o755)  # munged checks its socket directory is not writable by others
    with registry() as users:
        (users / _entry(directory)).write_text(str(directory))
        if answers(binary):
            return
        if not MUNGE_KEY.exists():
            MUNGE_KEY.parent.mkdir(parents=True, exist_ok=True)
            MUNGE_KEY.write_bytes(secrets.token_bytes(1024))
        MUNGE_KEY.chmod(0o400)
        run(
            [
                binary("munged"),
                "--force",
                f"--socket={MUNGE_SOCKET}",
                f"--key-file={MUNGE_KEY}",
                f"--pid-file={MUNGE_PIDFILE}",
                f"--log-file={MUNGE_DIR / 'suanwang-munged.log'}",
                f"--seed-file={MUNGE_DIR / 'suanwang-munged.seed'}",
            ]
        )
        if not answers(binary):
            raise MungeError(f"munge does not answer on {MUNGE_SOCKET}; see {MUNGE_DIR / 'suanwang-munged.log'}")


def release(directory: Path, alive: Callable[[Path], bool]) -> None:
    """Unregisters this cluster; the last cluster to go stops the munged one of them started."""
    if not MUNGE_USERS.is_dir():
        return
    with registry() as users:
        (users / _entry(directory)).unlink(missing_ok=True)
        for entry in users.iterdir():
            other = Path(entry.read_text().strip())
            if not alive(other):
                entry.unlink(missing_ok=True)  # a cluster that is gone without stopping
        if any(users.iterdir()):
            return
        pid = _pid(MUNGE_PIDFILE)
        if pid is not None and _is_munged(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        MUNGE_PIDFILE.unlink(missing_ok=True)


def _is_munged(pid: int) -> bool:
    """Guards against a stale pid file naming a reused pid."""
    try:
        return b"munged" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
