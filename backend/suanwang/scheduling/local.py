"""LocalExecutor: jobs as child processes of this machine (the default of the local demo).

Each job runs in its own session under a bash wrapper that records start and exit in the state directory,
so a new executor object (after the service restarted) reports the same state as the one that started
it. The job id is the key. The wrapper hands the command to ``confine``, which holds it to what was bought
(address space = memory_mib, CPU affinity = cpus), runs it as the unprivileged user ``suanwang-job`` when
the service is root, and records its rusage for ``accounting``; time_limit_s is enforced with coreutils
``timeout``. Memory is an address-space limit, not a cgroup: it counts mapped memory, not resident memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from suanwang.errors import InfeasibleError, InputError, NotFoundError, SuanwangError
from suanwang.scheduling import confine
from suanwang.scheduling.accounting import local_accounting
from suanwang.scheduling.base import (
    ExecutorNode,
    JobAccounting,
    JobSpec,
    JobState,
    JobStatus,
    validate_key,
    validate_spec,
)
from suanwang.scheduling.jobfiles import (
    LOST_GRACE_S,
    JobFiles,
    key_lock,
    prepare_root,
    read_json,
    record_time_limit,
    status_from_files,
    write_record,
    write_wrapper,
)

CANCEL_GRACE_S = 5.0
log = logging.getLogger(__name__)


class LocalExecutor:
    def __init__(self, state_dir: str | Path, *, node_name: str | None = None) -> None:
        self.root = prepare_root(Path(state_dir))
        self.node_name = node_name or socket.gethostname().split(".")[0]
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self.job_user = job_user()
        """(uid, gid) of ``suanwang-job`` the jobs run as, or None: the service is not root."""
        if self.job_user is not None:
            # Jobs run as suanwang-job inside their own working directory, entered before the launcher drops
            # to that user: the state directory itself (every job's command, record, output and working
            # directory) stays the service's alone, so one buyer's job cannot read another's.
            self.root.chmod(0o700)

    def nodes(self) -> list[ExecutorNode]:
        return [ExecutorNode(name=self.node_name, cpus=os.cpu_count() or 1, memory_mib=_total_memory_mib())]

    def submit(self, spec: JobSpec) -> str:
        validate_spec(spec)
        self._check_feasible(spec)
        files = JobFiles(self.root, spec.key)
        with key_lock(files):
            existing = self.find(spec.key)
            if existing is not None:
                return existing
            workdir = Path(spec.workdir) if spec.workdir else files.default_workdir()
            workdir.mkdir(parents=True, exist_ok=True)
            launcher = [
                sys.executable,
                "-I",  # isolated: the launcher's directory (this package's modules) stays off sys.path
                confine.__file__,
                f"--accounting={files.accounting}",
                f"--key={spec.key}",
                f"--node={self.node_name}",
                f"--cpus={spec.cpus}",
                f"--memory-mib={spec.memory_mib}",
            ]
            if self.job_user is not None:
                uid, gid = self.job_user
                os.chown(workdir, uid, gid)  # the job writes there; the service, as root, still reads it
                launcher += [f"--uid={uid}", f"--gid={gid}"]
            wrapper = write_wrapper(spec, files, workdir, enforce_time_limit=True, launcher=launcher)
            write_record(files, spec.key, spec)
            with open(files.scheduler_log, "ab") as log:
                self._children[spec.key] = subprocess.Popen(
                    ["/bin/bash", str(wrapper)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    cwd=self.root,
                    env={**os.environ, "SUANWANG_NODE_NAME": self.node_name},
                    start_new_session=True,
                )
        return spec.key

    def statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        return {job_id: self.status(job_id) for job_id in job_ids}

    def find(self, key: str) -> str | None:
        validate_key(key)
        return key if JobFiles(self.root, key).record.exists() else None

    def status(self, job_id: str) -> JobStatus:
        files = self._files(job_id)
        child = self._children.get(job_id)
        if child is not None:
            child.poll()  # reaps the wrapper once it ended, so its pid does not linger as a zombie
        # Look at the process before the exit file: the wrapper writes the exit file and then ends, so a job
        # that ends between the two looks is read as ended. The other order would call it lost.
        started = read_json(files.started)
        alive = started is not None and _same_process_alive(int(started["pid"]), int(started["proc_start"]))
        final = status_from_files(files, record_time_limit(files), timeout_exit_means_limit=True)
        if final is not None:
            return final
        result = str(files.stdout)
        if started is not None:
            if alive:
                return JobStatus(
                    JobState.RUNNING, started_at=float(started["started_at"]), result_path=result, node=self.node_name
                )
            return JobStatus(
                JobState.LOST,
                started_at=float(started["started_at"]),
                reason=f"process {started['pid']} ended without recording an exit status "
                "(killed with SIGKILL, or the machine restarted)",
                result_path=result,
            )
        if child is not None and child.returncode is None:
            return JobStatus(JobState.PENDING, reason="starting", result_path=result)
        submitted_at = float((read_json(files.record) or {}).get("submitted_at", 0.0))
        if time.time() - submitted_at < LOST_GRACE_S and child is None:
            return JobStatus(JobState.PENDING, reason="starting", result_path=result)
        return JobStatus(JobState.LOST, reason="the job's process never started", result_path=result)

    def accounting(self, job_id: str) -> JobAccounting | None:
        """The job's rusage as its launcher recorded it; None while the job has not ended."""
        status = self.status(job_id)
        if not status.state.is_final:
            return None
        record = read_json(JobFiles(self.root, job_id).accounting)
        if record is not None:
            return local_accounting(record, status.state)
        # The command never ran (cancelled before it started) or died with its launcher (SIGKILL): nothing
        # was metered, and what was allocated is what the spec asked for.
        spec = (read_json(JobFiles(self.root, job_id).record) or {}).get("spec") or {}
        return JobAccounting(
            state=status.state,
            scheduler_state="not-metered",
            exit_code=status.exit_code,
            signal=None,
            elapsed_s=0.0,
            cpu_time_s=0.0,
            max_rss_bytes=None,
            alloc_tres={"cpu": int(spec.get("cpus", 1)), "mem": int(spec.get("memory_mib", 0)) * 1024**2, "node": 1},
            node=status.node,
            started_at=status.started_at,
            finished_at=status.finished_at,
        )

    def cancel(self, job_id: str) -> None:
        files = self._files(job_id)
        if self.status(job_id).state.is_final:
            return
        files.cancelled.touch()
        pid = self._session_leader(job_id, files)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + CANCEL_GRACE_S
        while time.monotonic() < deadline and not files.exit.exists() and self._leader_alive(job_id, pid):
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        child = self._children.get(job_id)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=CANCEL_GRACE_S)

    def _session_leader(self, job_id: str, files: JobFiles) -> int | None:
        child = self._children.get(job_id)
        if child is not None:
            return child.pid
        started = read_json(files.started)
        if started is not None and _same_process_alive(int(started["pid"]), int(started["proc_start"])):
            return int(started["pid"])
        return None

    def _leader_alive(self, job_id: str, pid: int) -> bool:
        child = self._children.get(job_id)
        if child is not None:
            return child.poll() is None
        return _pid_alive(pid)

    def _files(self, job_id: str) -> JobFiles:
        if self.find(job_id) is None:
            raise NotFoundError(f"no local job {job_id!r} in {self.root}", field="job_id")
        return JobFiles(self.root, job_id)

    def _check_feasible(self, spec: JobSpec) -> None:
        node = self.nodes()[0]
        if spec.node is not None and spec.node != node.name:
            raise InputError(
                f"node {spec.node!r} does not exist here; the local executor has node {node.name!r}", field="node"
            )
        if spec.features:
            raise InfeasibleError(
                f"the local node {node.name!r} offers no features; asked for {list(spec.features)}", field="features"
            )
        if spec.gpus:
            raise InfeasibleError(f"the local node {node.name!r} has no GPUs; asked for {spec.gpus}", field="gpus")
        if spec.shards:
            raise InfeasibleError(
                f"the local node {node.name!r} has no GPU shards; asked for {spec.shards}", field="shards"
            )
        if spec.cpus > node.cpus:
            raise InfeasibleError(f"asked for {spec.cpus} CPUs; the local node has {node.cpus}", field="cpus")
        if spec.memory_mib > node.memory_mib:
            raise InfeasibleError(
                f"asked for {spec.memory_mib} MiB; the local node has {node.memory_mib} MiB", field="memory_mib"
            )


def job_user() -> tuple[int, int] | None:
    """The uid and gid of ``suanwang-job``, creating the system user when root and it is missing; None
    when not root (jobs then run as the service's own user, which this says once in the log)."""
    if os.geteuid() != 0:
        if not _warned_not_root:
            _warned_not_root.append(True)
            me = pwd.getpwuid(os.geteuid()).pw_name
            log.warning("not root: local jobs run as %s, not as %s", me, confine.JOB_USER)
        return None
    try:
        entry = pwd.getpwnam(confine.JOB_USER)
    except KeyError:
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
             confine.JOB_USER],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        try:
            entry = pwd.getpwnam(confine.JOB_USER)  # made here, or by a concurrent executor that won the race
        except KeyError:
            raise SuanwangError(
                f"cannot create the job user {confine.JOB_USER!r}: useradd said {made.stderr.strip()!r}"
            ) from None
    return entry.pw_uid, entry.pw_gid


_warned_not_root: list[bool] = []


def _total_memory_mib() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 0


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may hold spaces: [state, ppid, ...].
    return text.rsplit(")", 1)[1].split()


def _pid_alive(pid: int) -> bool:
    fields = _proc_stat(pid)
    return fields is not None and fields[0] != "Z"


def _same_process_alive(pid: int, proc_start: int) -> bool:
    """True when ``pid`` is alive and is the process that recorded ``proc_start`` (not a reused pid)."""
    fields = _proc_stat(pid)
    # /proc/<pid>/stat field 22 (starttime) is the 20th after the command name.
    return fields is not None and fields[0] != "Z" and int(fields[19]) == proc_start
