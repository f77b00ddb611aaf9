"""Job accounting records, read from Slurm's ``sacct`` or from the local executor's rusage file.

sacct is read rather than slurmrestd's ``/slurmdb/v0.0.38/job``, whose ``exit_code`` says SUCCESS 0 for a
job that exited 3 in Slurm 22.05 (../shared/docs/SLURM.md). ``sacct -P -n`` prints one ``|``-separated
line per job and per step; the job line holds the state, exit code and allocation, the ``batch`` step line
the sampled MaxRSS (sacct(1): MaxRSS is a step field). Formats, from sacct(1): Elapsed ``[D-]HH:MM:SS``,
TotalCPU ``[D-][HH:]MM:SS.mmm``, sizes with a K/M/G/T suffix in powers of 1024, Start/End in local time.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

from suanwang.scheduling.base import JobAccounting, JobState

SLURM_STATES: dict[str, JobState] = {
    **dict.fromkeys(
        ("PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED", "STOPPED"),
        JobState.PENDING,
    ),
    **dict.fromkeys(("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING"), JobState.RUNNING),
    "COMPLETED": JobState.COMPLETED,
    **dict.fromkeys(
        ("FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED", "SPECIAL_EXIT"),
        JobState.FAILED,
    ),
    **dict.fromkeys(("CANCELLED", "REVOKED"), JobState.CANCELLED),
}

SACCT_FIELDS = ("JobID", "JobName", "State", "ExitCode", "Elapsed", "TotalCPU", "MaxRSS", "AllocTRES", "NodeList",
                "Start", "End")  # fmt: skip
SIZE_SUFFIXES = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
STEP_GRACE_S = 30.0
"""How long after the job's end its batch step may still be unfinished in the database before the job
record is taken as final without it (a step lost with its node never gets an end)."""


def sacct_argv(job_id: str) -> list[str]:
    return ["sacct", "-j", job_id, "--format=" + ",".join(SACCT_FIELDS), "-P", "-n", "--noconvert"]


def parse_sacct(output: str, job_id: str, key: str | None) -> JobAccounting | None:
    """The job's final record from ``sacct_argv`` output, or None while it is missing or not final.

    ``key`` is the job name the executor gave; a record under another name (job ids restart when a cluster
    is recreated) is not this job's.
    """
    rows = [dict(zip(SACCT_FIELDS, line.split("|"), strict=False)) for line in output.splitlines() if "|" in line]
    job = next((r for r in rows if r["JobID"] == job_id), None)
    if job is None or (key is not None and job["JobName"] != key):
        return None
    scheduler_state = job["State"].split()[0] if job["State"] else ""
    state = SLURM_STATES.get(scheduler_state, JobState.LOST)
    if not state.is_final:
        return None
    batch = next((r for r in rows if r["JobID"] == f"{job_id}.batch"), None)
    started_at, finished_at = slurm_time(job["Start"]), slurm_time(job["End"])
    batch_final = batch is not None and SLURM_STATES.get(batch["State"].split()[0], JobState.LOST).is_final
    if started_at is not None and not batch_final and time.time() - (finished_at or 0.0) < STEP_GRACE_S:
        return None  # the step's usage (MaxRSS) is written a moment after the job's state
    rc, _, sig = job["ExitCode"].partition(":")
    steps = [batch] if batch is not None else []
    max_rss = max((size_bytes(r["MaxRSS"]) or 0 for r in steps), default=None)
    return JobAccounting(
        state=state,
        scheduler_state=scheduler_state,
        exit_code=int(rc) if rc.isdigit() else None,
        # Real signals are 1..64 (signal(7)); an OUT_OF_MEMORY job shows 0:125, Slurm's marker, not a signal.
        signal=int(sig) if sig.isdigit() and 0 < int(sig) <= 64 else None,
        elapsed_s=duration_s(job["Elapsed"]),
        cpu_time_s=duration_s(job["TotalCPU"]),
        max_rss_bytes=max_rss if max_rss else None,
        alloc_tres=parse_tres(job["AllocTRES"]),
        node=job["NodeList"] if job["NodeList"] not in ("", "None assigned") else None,
        started_at=started_at,
        finished_at=finished_at,
    )


def parse_tres(text: str) -> dict[str, int]:
    """``cpu=2,gres/shard=4,mem=300M,node=1`` -> {"cpu": 2, "gres/shard": 4, "mem": 314572800, "node": 1}.

    Memory is in bytes; ``billing`` (a price weight, not a resource) is left out.
    """
    out = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name == "billing":
            continue
        amount = size_bytes(value) if name == "mem" else _int(value)
        if amount is not None:
            out[name] = amount
    return out


def size_bytes(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    suffix = text[-1].upper() if text[-1].isalpha() else ""
    number = text[: -len(suffix)] if suffix else text
    try:
        return int(float(number) * SIZE_SUFFIXES[suffix])
    except (ValueError, KeyError):
        return None


def duration_s(text: str) -> float:
    """Elapsed/TotalCPU text in seconds: ``1-02:03:04``, ``02:03:04``, ``03:04.5``."""
    text = text.strip()
    if not text or text in ("INVALID", "Unknown"):
        return 0.0
    days, _, rest = text.rpartition("-")
    parts = [float(p) for p in rest.split(":")]
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds + (int(days) * 86400 if days else 0)


def slurm_time(text: str | None) -> float | None:
    if text in (None, "", "Unknown", "None", "N/A", "(null)"):
        return None
    try:
        return dt.datetime.fromisoformat(str(text)).timestamp()  # local time, as Slurm prints it
    except ValueError:
        return None


def local_accounting(record: Mapping[str, Any], state: JobState) -> JobAccounting:
    """A local job's accounting from the record the confining launcher wrote (see ``confine``)."""
    signal = record.get("signal")
    return JobAccounting(
        state=state,
        scheduler_state="signaled" if signal else "exited",
        exit_code=None if signal else int(record["exit_code"]),
        signal=int(signal) if signal else None,
        elapsed_s=float(record["elapsed_s"]),
        cpu_time_s=float(record["cpu_time_s"]),
        max_rss_bytes=int(record["max_rss_bytes"]),
        alloc_tres={"cpu": int(record["cpus"]), "mem": int(record["memory_mib"]) * 1024**2, "node": 1},
        node=record.get("node"),
        started_at=float(record["started_at"]),
        finished_at=float(record["finished_at"]),
    )


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
