"""The local executor's confining launcher: runs a job's command with what was bought, and meters it.

The bash wrapper (``jobfiles``) hands the command to this script, which forks and, in the child, before
``exec``:

- limits the address space to the memory bought (``setrlimit(RLIMIT_AS)``, setrlimit(2)): an allocation
  beyond it fails (Python raises MemoryError), where no cgroup is available to count resident memory;
- pins the command to ``cpus`` CPUs (``sched_setaffinity``, sched_setaffinity(2));
- drops to the unprivileged user ``suanwang-job`` when started as root (its working directory is entered
  first, so it need not reach it through the state directory's parents).

The parent forwards SIGTERM/SIGINT to the command, waits for it with ``wait4`` (wait4(2): the rusage of
the child and the descendants it waited for) and writes ``<key>.acct``: exit code or signal, elapsed and
CPU time, the peak RSS (``ru_maxrss``, KiB on Linux, getrusage(2)) and the limits applied. It then exits
like the command (128 + N for signal N, as a shell reports it), so the wrapper records the same outcome.

It imports nothing from the package: the wrapper runs it by path with the service's interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path

JOB_USER = "suanwang-job"


def choose_cpus(count: int, key: str) -> set[int]:
    """``count`` of the CPUs this process may use, starting at a place that depends on the job's key, so
    concurrent one-CPU jobs spread over the machine rather than all landing on the first CPU."""
    allowed = sorted(os.sched_getaffinity(0))
    start = sum(key.encode()) % len(allowed)
    return {allowed[(start + i) % len(allowed)] for i in range(min(count, len(allowed)))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run a job's command confined and metered")
    parser.add_argument("--accounting", required=True, type=Path, help="where to write the rusage record")
    parser.add_argument("--key", required=True)
    parser.add_argument("--node", default="")
    parser.add_argument("--cpus", required=True, type=int)
    parser.add_argument("--memory-mib", required=True, type=int)
    parser.add_argument("--uid", type=int)
    parser.add_argument("--gid", type=int)
    parser.add_argument("--script", type=Path, help="a bash script to run instead of an argv")
    parser.add_argument("command", nargs="*")
    args = parser.parse_args(argv)
    if args.script is not None:
        # Opened here, as the launcher's user: the job's user may not be able to reach the state directory.
        fd = os.open(args.script, os.O_RDONLY)
        os.set_inheritable(fd, True)
        command = ["/bin/bash", f"/dev/fd/{fd}"]
    else:
        command = args.command
    cpus = choose_cpus(args.cpus, args.key)
    limit = args.memory_mib * 1024 * 1024
    started_at, started = time.time(), time.monotonic()
    pid = os.fork()
    if pid == 0:
        _exec_confined(command, cpus, limit, args.uid, args.gid)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, _frame: _forward(pid, s))
    _, wait_status, usage = os.wait4(pid, 0)
    elapsed = time.monotonic() - started
    code = os.waitstatus_to_exitcode(wait_status)
    record = {
        "exit_code": code if code >= 0 else None,
        "signal": -code if code < 0 else None,
        "elapsed_s": round(elapsed, 3),
        "cpu_time_s": round(usage.ru_utime + usage.ru_stime, 3),
        "max_rss_bytes": usage.ru_maxrss * 1024,
        "cpus": args.cpus,
        "cpu_list": sorted(cpus),
        "memory_mib": args.memory_mib,
        "user": args.uid if args.uid is not None else os.getuid(),
        "node": args.node or None,
        "started_at": started_at,
        "finished_at": time.time(),
    }
    tmp = args.accounting.with_name(f".{args.accounting.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, args.accounting)
    return code if code >= 0 else 128 - code


def _forward(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _exec_confined(command: list[str], cpus: set[int], limit: int, uid: int | None, gid: int | None) -> None:
    try:
        os.sched_setaffinity(0, cpus)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if uid is not None and gid is not None:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.environ.update({"HOME": os.getcwd(), "USER": JOB_USER, "LOGNAME": JOB_USER})
        os.execvp(command[0], command)
    except OSError as exc:
        os.write(2, f"confine: cannot start {command[0]}: {exc}\n".encode())
        os._exit(127 if isinstance(exc, FileNotFoundError) else 126)


if __name__ == "__main__":
    sys.exit(main())
