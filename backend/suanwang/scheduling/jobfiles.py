"""The files a job leaves in the executor's state directory, shared by every executor.

The state directory is owned by the service. For a job with key K it holds:

- ``jobs/K.json``: the submit record (job id, submit time, spec), written before or right after the
  job is handed to the OS or scheduler; its existence is what makes ``submit`` idempotent.
- ``K.sh``: the wrapper script that runs the command (and ``K.cmd`` for a shell-script command).
- ``K.started``: written by the wrapper when the job starts (pid, start time, node).
- ``K.exit``: written by the wrapper when the command ends (exit code, signal, times, node). Both are
  written to a temporary name and renamed, so a reader never sees half a file.
- ``K.out`` / ``K.err``: the command's standard output (the job's result bytes) and error.
- ``K.acct``: the local executor's accounting (rusage of the command, its limits), written by the
  confining launcher (``confine``) when the command ends.
- ``K.final``: the scheduler's final state and reason, saved the first time ``status`` sees them.
- ``K.cancelled``: written by ``cancel`` so a cancellation is known even after the scheduler forgot the job.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from suanwang.scheduling.base import JobSpec, JobState, JobStatus

LOST_GRACE_S = 60.0
"""How long a submitted job may go without its wrapper starting before it counts as lost (local executor)."""


@dataclass(frozen=True)
class JobFiles:
    root: Path
    key: str

    @property
    def record(self) -> Path:
        return self.root / "jobs" / f"{self.key}.json"

    @property
    def lock(self) -> Path:
        return self.root / "locks" / f"{self.key}.lock"

    @property
    def wrapper(self) -> Path:
        return self.root / f"{self.key}.sh"

    @property
    def script(self) -> Path:
        return self.root / f"{self.key}.cmd"

    @property
    def started(self) -> Path:
        return self.root / f"{self.key}.started"

    @property
    def exit(self) -> Path:
        return self.root / f"{self.key}.exit"

    @property
    def accounting(self) -> Path:
        return self.root / f"{self.key}.acct"

    @property
    def stdout(self) -> Path:
        return self.root / f"{self.key}.out"

    @property
    def stderr(self) -> Path:
        return self.root / f"{self.key}.err"

    @property
    def scheduler_log(self) -> Path:
        return self.root / f"{self.key}.log"

    @property
    def scheduler_final(self) -> Path:
        """The scheduler's last word on a finished job (state and reason), kept for after it forgets the job."""
        return self.root / f"{self.key}.final"

    @property
    def cancelled(self) -> Path:
        return self.root / f"{self.key}.cancelled"

    def default_workdir(self) -> Path:
        return self.root / "work" / self.key


def prepare_root(root: Path) -> Path:
    root = root.resolve()
    for sub in ("jobs", "locks", "work", "ids"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def key_lock(files: JobFiles) -> Iterator[None]:
    """Serialises submits of one key across threads and processes (flock on a per-key file)."""
    with open(files.lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_record(files: JobFiles, job_id: str, spec: JobSpec | None) -> None:
    """Records the job id of a key; ``spec`` is None for a job recovered from the scheduler after a crash."""
    spec_data = None if spec is None else {**asdict(spec), "env": dict(spec.env)}
    record = {"key": files.key, "job_id": job_id, "submitted_at": time.time(), "spec": spec_data}
    write_json_atomic(files.record, record)


def write_wrapper(
    spec: JobSpec,
    files: JobFiles,
    workdir: Path,
    *,
    enforce_time_limit: bool,
    address_space_mib: int | None = None,
    launcher: Sequence[str] = (),
) -> Path:
    """Writes the bash wrapper that runs the command and records start and exit atomically.

    On SIGTERM (a cancel, Slurm's time limit or node shutdown) it stops the command and still records
    an exit status with the signal, so the outcome survives the scheduler forgetting the job.
    ``address_space_mib`` limits the command's address space (``ulimit -v``, RLIMIT_AS) where nothing
    else holds it to the memory bought; ``launcher`` is an argv the command is handed to (``confine``),
    which takes a script as ``--script PATH`` and an argv after ``--``.
    """
    if isinstance(spec.command, str):
        files.script.write_text(spec.command if spec.command.endswith("\n") else spec.command + "\n")
    if launcher:
        tail = ["--script", str(files.script)] if isinstance(spec.command, str) else ["--", *spec.command]
        command = shlex.join([*launcher, *tail])
    elif isinstance(spec.command, str):
        command = f"/bin/bash {shlex.quote(str(files.script))}"
    else:
        command = shlex.join(spec.command)
    if enforce_time_limit and spec.time_limit_s is not None:
        command = f"timeout --kill-after=5 {spec.time_limit_s} {command}"
    if address_space_mib is not None:
        # ulimit -v counts KiB (bash(1)); exec keeps $child the command itself, so signals reach it.
        command = f"(ulimit -v {address_space_mib * 1024} && exec {command})"
    q = shlex.quote
    exports = "".join(f"export {name}={q(value)}\n" for name, value in spec.env.items())
    text = f"""#!/bin/bash
# Suanwang job wrapper for key {spec.key}: runs the command, then records how it ended.
started={q(str(files.started))}
exitfile={q(str(files.exit))}
node="${{SLURMD_NODENAME:-${{SUANWANG_NODE_NAME:-$(uname -n)}}}}"
job_id="${{SLURM_JOB_ID:-}}"
start_time=$(date +%s.%N)
proc_start=$(cut -d' ' -f22 /proc/$$/stat)
where="\\"node\\": \\"$node\\", \\"job_id\\": \\"$job_id\\""
record() {{ printf '%s\\n' "$2" > "$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"; }}
record "$started" "$(printf '{{"pid": %d, "proc_start": %s, "started_at": %s, %s}}' \
  $$ "$proc_start" "$start_time" "$where")"
finish() {{
  record "$exitfile" "$(printf '{{"exit_code": %d, "signal": "%s", "started_at": %s, "finished_at": %s, %s}}' \
    "$1" "$2" "$start_time" "$(date +%s.%N)" "$where")"
  exit "$1"
}}
child=""
on_signal() {{
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child"
  finish 143 "$1"
}}
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT
[ -e {q(str(files.cancelled))} ] && finish 143 TERM  # cancelled before the wrapper got to run
{exports}cd {q(str(workdir))} || finish 126 ""
{command} </dev/null >{q(str(files.stdout))} 2>{q(str(files.stderr))} &
child=$!
wait "$child"
finish $? ""
"""
    files.wrapper.write_text(text)
    files.wrapper.chmod(0o755)
    return files.wrapper


def status_from_files(
    files: JobFiles, spec_time_limit_s: int | None = None, *, timeout_exit_means_limit: bool = False
) -> JobStatus | None:
    """The final status the job's own files prove, or None when the files say nothing final.

    A cancel marker wins when the command did not end on its own (no exit file, or one with a signal).
    """
    exit_data = read_json(files.exit)
    cancelled = files.cancelled.exists()
    result = str(files.stdout)
    if exit_data is None:
        if cancelled:
            return JobStatus(JobState.CANCELLED, reason="cancelled", result_path=result)
        return None
    code = int(exit_data["exit_code"])
    ended = JobStatus(
        JobState.COMPLETED,
        exit_code=code,
        started_at=float(exit_data["started_at"]),
        finished_at=float(exit_data["finished_at"]),
        result_path=result,
        node=exit_data.get("node") or None,
        ran_to_end=True,
    )
    signal_name = exit_data.get("signal") or ""
    if signal_name and cancelled:
        return replace(ended, state=JobState.CANCELLED, reason="cancelled", ran_to_end=False)
    if signal_name:
        reason = f"terminated by SIG{signal_name} (time limit, node shutdown or an administrator's cancel)"
        return replace(ended, state=JobState.FAILED, reason=reason, ran_to_end=False)
    if code == 0:
        return ended
    if timeout_exit_means_limit and code == 124 and spec_time_limit_s is not None:
        return replace(ended, state=JobState.FAILED, reason=f"time limit of {spec_time_limit_s} s exceeded")
    return replace(ended, state=JobState.FAILED, reason=f"command exited with code {code}")


def record_time_limit(files: JobFiles) -> int | None:
    record = read_json(files.record) or {}
    limit = (record.get("spec") or {}).get("time_limit_s")
    return int(limit) if limit is not None else None
