"""SlurmExecutor: jobs on a real Slurm cluster, driven through its command-line tools.

A job is an ``sbatch`` of the shared bash wrapper (see ``jobfiles``), named after its key, pinned to the
matched node with ``--nodelist`` and/or to features with ``--constraint``, asking for exactly what was
bought: ``-c``, ``--mem`` and ``--gres=gpu:<type>:<n>,shard:<n>``. Its state comes from ``scontrol show
job`` while Slurm lists it; once Slurm forgets the job (MinJobAge after its end) from Slurm's accounting
(``sacct``) when the cluster has it, else from the exit file the wrapper writes into the state directory.
The state directory must therefore be reachable from the compute nodes at the same path (one host here; a
shared file system on a real cluster), and belong to one Slurm cluster (job ids are unique per cluster).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from suanwang.errors import InfeasibleError, InputError, NotFoundError, SuanwangError
from suanwang.scheduling.accounting import SLURM_STATES, parse_sacct, sacct_argv
from suanwang.scheduling.base import (
    ExecutorNode,
    JobAccounting,
    JobSpec,
    JobState,
    JobStatus,
    NodeState,
    validate_key,
    validate_spec,
)
from suanwang.scheduling.jobfiles import (
    JobFiles,
    key_lock,
    prepare_root,
    read_json,
    status_from_files,
    write_json_atomic,
    write_record,
    write_wrapper,
)

INSTALL_HINT = "apt-get install -y slurm-wlm munge"
__all__ = ["SLURM_STATES", "SchedulerUnavailableError", "SlurmExecutor"]

KEY_VALUE_RE = re.compile(r"(\S+?)=(.*?)(?=\s+[^\s=]+=|\s*$)")

# sbatch's refusals and the spec field each one is about ("gres": whichever GPU field the spec used).
SBATCH_ERRORS: tuple[tuple[str, type[SuanwangError], str], ...] = (
    ("Invalid feature specification", InfeasibleError, "features"),
    ("Invalid node name specified", InputError, "node"),
    ("Memory specification can not be satisfied", InfeasibleError, "memory_mib"),
    ("CPU count per node can not be satisfied", InfeasibleError, "cpus"),
    ("Invalid generic resource (gres) specification", InfeasibleError, "gres"),
    ("Invalid Trackable RESource (TRES) specification", InfeasibleError, "gres"),
    ("Requested time limit is invalid", InputError, "time_limit_s"),
    ("Requested node configuration is not available", InfeasibleError, "node"),
    ("Invalid partition name specified", InputError, "partition"),
)


NODES_TTL_S = 2.0


class SchedulerUnavailableError(SuanwangError):
    """The Slurm tools are missing or the controller does not answer."""


class SlurmExecutor:
    def __init__(
        self,
        state_dir: str | Path,
        *,
        slurm_conf: str | Path | None = None,
        partition: str | None = None,
        command_timeout_s: float = 30.0,
    ) -> None:
        self.root = prepare_root(Path(state_dir))
        self._nodes_snapshot: list[ExecutorNode] | None = None  # one look at the nodes per status pass
        self._nodes_seen: tuple[float, list[ExecutorNode]] | None = None
        self._nodes_lock = threading.Lock()
        self.partition = partition
        self.command_timeout_s = command_timeout_s
        self._env = dict(os.environ)
        if slurm_conf is not None:
            self._env["SLURM_CONF"] = str(slurm_conf)
        self._config: dict[str, str] | None = None

    def _cluster_config(self) -> dict[str, str]:
        """``scontrol show config`` as a dict, read once: whether the cluster accounts and confines jobs."""
        if self._config is None:
            out = self._run(["scontrol", "show", "config"]).stdout
            pairs = (line.split("=", 1) for line in out.splitlines() if " = " in line)
            self._config = {k.strip(): v.strip() for k, v in pairs}
        return self._config

    @property
    def has_accounting(self) -> bool:
        """The cluster stores jobs in slurmdbd, so ``sacct`` knows them after slurmctld forgets them."""
        return self._cluster_config().get("AccountingStorageType") == "accounting_storage/slurmdbd"

    @property
    def confines_memory(self) -> bool:
        """Slurm's task/cgroup holds each job to its --mem (cgroup.conf ConstrainRAMSpace); else the wrapper
        limits the address space itself (RLIMIT_AS)."""
        return "task/cgroup" in self._cluster_config().get("TaskPlugin", "")

    # ---- the Executor interface ----------------------------------------------------------------------

    def nodes(self) -> list[ExecutorNode]:
        out = self._run(["scontrol", "show", "node", "-o"]).stdout
        return [_parse_node(fields) for fields in map(parse_key_values, out.splitlines()) if "NodeName" in fields]

    def _recent_nodes(self) -> list[ExecutorNode]:
        """The nodes as seen at most NODES_TTL_S ago: a burst of submits shares one look (feasibility is
        a courtesy check; Slurm itself still refuses or holds what cannot run)."""
        with self._nodes_lock:
            if self._nodes_seen is None or time.monotonic() - self._nodes_seen[0] > NODES_TTL_S:
                self._nodes_seen = (time.monotonic(), self.nodes())
            return self._nodes_seen[1]

    def submit(self, spec: JobSpec) -> str:
        validate_spec(spec)
        self._check_feasible(spec, self._recent_nodes())
        files = JobFiles(self.root, spec.key)
        with key_lock(files):
            existing = self.find(spec.key)
            if existing is not None:
                return existing
            workdir = Path(spec.workdir) if spec.workdir else files.default_workdir()
            workdir.mkdir(parents=True, exist_ok=True)
            limit = None if self.confines_memory else spec.memory_mib
            wrapper = write_wrapper(spec, files, workdir, enforce_time_limit=False, address_space_mib=limit)
            proc = self._run(self._sbatch_argv(spec, files, workdir, wrapper), check=False)
            if proc.returncode != 0:
                raise _sbatch_error(spec, proc.stderr, self.partition)
            job_id = proc.stdout.strip().split(";")[0]
            self._remember(files, job_id, spec)
        return job_id

    def find(self, key: str) -> str | None:
        validate_key(key)
        files = JobFiles(self.root, key)
        record = read_json(files.record)
        if record is not None:
            return str(record["job_id"])
        if not files.wrapper.exists():
            return None  # submit writes the wrapper before sbatch: without it sbatch never ran for this key
        # Submitted but not recorded (the service stopped right after sbatch): Slurm or the job's own files know.
        out = self._run(["squeue", "-h", "--states=all", f"--name={key}", "-o", "%i"]).stdout.split()
        job_id = min(out, key=int) if out else None
        if job_id is None:
            for path in (files.exit, files.started):
                job_id = str((read_json(path) or {}).get("job_id") or "") or None
                if job_id:
                    break
        if job_id is not None:
            self._remember(files, job_id, None)
        return job_id

    def status(self, job_id: str) -> JobStatus:
        files = self._files(job_id)
        self._nodes_snapshot = None
        try:
            return self._status(job_id, files, self._show_job(job_id, files.key))
        finally:
            self._nodes_snapshot = None

    def statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        """Many jobs' states from one `scontrol show job` (a pass over hundreds of jobs costs one call)."""
        proc = self._run(["scontrol", "show", "job", "-o"], check=False)
        if proc.returncode != 0 and "No jobs in the system" not in (proc.stdout + proc.stderr):
            raise SchedulerUnavailableError(f"scontrol show job failed: {proc.stderr.strip()}")
        # Slurm lists every job it still remembers (for MinJobAge after the end): parse only the asked ones.
        wanted = {f"JobId={job_id}" for job_id in job_ids}
        lines = [line for line in proc.stdout.splitlines() if line.split(" ", 1)[0] in wanted]
        listed = {job.get("JobId", ""): job for job in map(parse_key_values, lines) if job}
        out = {}
        self._nodes_snapshot = None  # pending jobs' reasons share one look at the nodes
        try:
            for job_id in job_ids:
                files = self._files(job_id)
                job = listed.get(job_id)
                if job is not None and files.key is not None and job.get("JobName") != files.key:
                    job = None  # the id now names another job
                out[job_id] = self._status(job_id, files, job)
        finally:
            self._nodes_snapshot = None
        return out

    def accounting(self, job_id: str) -> JobAccounting | None:
        """The job's record in Slurm's accounting (``sacct``); None until it is final or without slurmdbd."""
        files = self._files(job_id)
        if not self.has_accounting:
            return None
        return parse_sacct(self._run(sacct_argv(job_id)).stdout, job_id, files.key)

    def _status(self, job_id: str, files: JobFiles, job: dict[str, str] | None) -> JobStatus:
        from_files = status_from_files(files)
        if job is None:
            return self._status_after_slurm_forgot(job_id, files, from_files)
        slurm_state = job.get("JobState", "")
        state = SLURM_STATES.get(slurm_state, JobState.LOST)
        node = _value(job.get("NodeList"))
        started_at = _slurm_time(job.get("StartTime"))
        result = str(files.stdout)
        if state is JobState.PENDING:
            return JobStatus(state, reason=self._pending_reason(job), result_path=result)
        if state is JobState.RUNNING:
            return JobStatus(state, started_at=started_at, result_path=result, node=node)
        rc, _, sig = job.get("ExitCode", "0:0").partition(":")
        ended = JobStatus(
            state,
            exit_code=int(rc) if rc.isdigit() else None,
            started_at=started_at,
            finished_at=_slurm_time(job.get("EndTime")),
            result_path=result,
            node=node,
        )
        reason = self._final_reason(slurm_state, files, ended, sig, job.get("TimeLimit"), _value(job.get("Reason")))
        return self._settle(slurm_state, reason, files, from_files, ended)

    def _status_after_slurm_forgot(self, job_id: str, files: JobFiles, from_files: JobStatus | None) -> JobStatus:
        final = read_json(files.scheduler_final)
        if final is not None:
            known = from_files or JobStatus(JobState.LOST, result_path=str(files.stdout))
            return replace(
                known,
                state=JobState(final["state"]),
                reason=str(final["reason"]),
                ran_to_end=bool(final.get("ran_to_end", known.ran_to_end)),
            )
        try:
            record = self.accounting(job_id)
        except SchedulerUnavailableError:
            record = None  # slurmdbd is down: the job's own files still say how it ended
        if record is not None:
            ended = JobStatus(
                record.state,
                exit_code=record.exit_code,
                started_at=record.started_at,
                finished_at=record.finished_at,
                result_path=str(files.stdout),
                node=record.node,
            )
            reason = self._final_reason(record.scheduler_state, files, ended, str(record.signal or 0), None, None)
            return self._settle(record.scheduler_state, reason, files, from_files, ended)
        if from_files is not None:
            return from_files
        return JobStatus(
            JobState.LOST,
            reason=f"Slurm no longer lists job {job_id} (it ended more than MinJobAge ago, or the controller "
            f"lost its state), the cluster's accounting has no final record of it, and the job left no exit "
            f"status in {files.exit}",
            result_path=str(files.stdout),
        )

    def _settle(
        self, slurm_state: str, reason: str, files: JobFiles, from_files: JobStatus | None, ended: JobStatus
    ) -> JobStatus:
        """The final status from Slurm's final state and the job's own exit file, saved in ``.final``.

        Stopped at its time limit, or by its own memory limit, the job ran on what was bought: its result is
        delivered like that of a job that ended by itself.
        """
        if from_files is not None and slurm_state in ("COMPLETED", "FAILED"):
            status = from_files  # the wrapper knows whether a signal from elsewhere stopped the command
        else:
            bought_limit = slurm_state in ("TIMEOUT", "OUT_OF_MEMORY")
            base = from_files or ended
            status = replace(base, state=ended.state, reason=reason, ran_to_end=bought_limit or base.ran_to_end)
        if not files.scheduler_final.exists():
            write_json_atomic(
                files.scheduler_final,
                {"state": status.state.value, "reason": status.reason, "ran_to_end": status.ran_to_end},
            )
        return status

    def _final_reason(
        self,
        slurm_state: str,
        files: JobFiles,
        ended: JobStatus,
        sig: str,
        time_limit: str | None,
        slurm_reason: str | None,
    ) -> str:
        bought = (read_json(files.record) or {}).get("spec") or {}
        limit_s = bought.get("time_limit_s")
        reasons = {
            "TIMEOUT": f"time limit of {time_limit or f'{limit_s} s'} exceeded",
            "NODE_FAIL": f"node {ended.node} failed while running the job",
            "OUT_OF_MEMORY": f"stopped by its memory limit ({bought.get('memory_mib', '?')} MiB bought)",
            "CANCELLED": "cancelled" if files.cancelled.exists() else "cancelled by Slurm or an administrator",
            "FAILED": f"exited with code {ended.exit_code}" + (f" (signal {sig})" if sig not in ("", "0") else ""),
        }
        reason = reasons.get(slurm_state, slurm_state.lower().replace("_", " "))
        if slurm_reason and slurm_state not in ("CANCELLED", "OUT_OF_MEMORY"):
            reason += f"; Slurm reason: {slurm_reason}"
        return reason

    def cancel(self, job_id: str) -> None:
        files = self._files(job_id)
        if self.status(job_id).state.is_final:
            return
        files.cancelled.touch()
        proc = self._run(["scancel", job_id], check=False)
        if proc.returncode != 0 and "Invalid job id" not in proc.stderr:
            raise SchedulerUnavailableError(f"scancel {job_id} failed: {proc.stderr.strip()}", field="job_id")

    # ---- helpers ----------------------------------------------------------------------------------------

    def _sbatch_argv(self, spec: JobSpec, files: JobFiles, workdir: Path, wrapper: Path) -> list[str]:
        argv = [
            "sbatch",
            "--parsable",
            f"--job-name={spec.key}",
            f"--output={files.scheduler_log}",
            f"--error={files.scheduler_log}",
            f"--chdir={workdir}",
            "--nodes=1",
            "--ntasks=1",
            f"--cpus-per-task={spec.cpus}",
            # Always: under CR_Core_Memory a job without --mem is given the whole node's memory (SLURM.md).
            f"--mem={spec.memory_mib}M",
            "--no-requeue",
        ]
        if spec.node:
            argv.append(f"--nodelist={spec.node}")
        if spec.features:
            argv.append("--constraint=" + "&".join(spec.features))
        gres = []
        if spec.gpus:
            gres.append(f"gpu:{spec.gpu_type}:{spec.gpus}" if spec.gpu_type else f"gpu:{spec.gpus}")
        if spec.shards:
            gres.append(f"shard:{spec.shards}")
        if gres:
            argv.append("--gres=" + ",".join(gres))
        if spec.time_limit_s is not None:
            minutes, seconds = divmod(spec.time_limit_s, 60)
            argv.append(f"--time={minutes}:{seconds:02d}")
        if self.partition:
            argv.append(f"--partition={self.partition}")
        argv.append(str(wrapper))
        return argv

    def _remember(self, files: JobFiles, job_id: str, spec: JobSpec | None) -> None:
        write_json_atomic(self.root / "ids" / f"{job_id}.json", {"key": files.key})
        write_record(files, job_id, spec)

    def _files(self, job_id: str) -> JobFiles:
        if not job_id.isdigit():
            raise InputError(f"Slurm job id {job_id!r} is not a number", field="job_id")
        index = read_json(self.root / "ids" / f"{job_id}.json")
        if index is not None:
            return JobFiles(self.root, str(index["key"]))
        job = self._show_job(job_id, None)
        if job is not None and (self.root / f"{job.get('JobName')}.sh").exists():
            files = JobFiles(self.root, str(job["JobName"]))
            self._remember(files, job_id, None)
            return files
        raise NotFoundError(
            f"job {job_id} was not submitted through this executor (state in {self.root})", field="job_id"
        )

    def _show_job(self, job_id: str, key: str | None) -> dict[str, str] | None:
        """Slurm's view of the job, or None when Slurm does not list it (or lists another job under the id)."""
        proc = self._run(["scontrol", "show", "job", "-o", job_id], check=False)
        if proc.returncode != 0:
            if "Invalid job id" in proc.stderr:
                return None
            raise SchedulerUnavailableError(f"scontrol show job {job_id} failed: {proc.stderr.strip()}")
        job = parse_key_values(proc.stdout.splitlines()[0]) if proc.stdout.strip() else {}
        if not job or (key is not None and job.get("JobName") != key):
            return None
        return job

    def _pending_reason(self, job: dict[str, str]) -> str:
        reason = _value(job.get("Reason")) or "waiting to be scheduled"
        requested = _value(job.get("ReqNodeList"))
        if requested:
            if self._nodes_snapshot is None:
                self._nodes_snapshot = self.nodes()
            nodes = self._nodes_snapshot
            unavailable = [n for n in nodes if n.name in requested.split(",") and n.state is not NodeState.UP]
            details = [
                f"node {n.name} is {n.state.value}" + (f" ({n.reason})" if n.reason else "") for n in unavailable
            ]
            if details:
                reason += ": " + "; ".join(details)
        return f"pending in Slurm: {reason}"

    def _check_feasible(self, spec: JobSpec, nodes: Sequence[ExecutorNode]) -> None:
        """Refuses, naming the field, what no node of the cluster could ever run (Slurm would queue it forever)."""
        by_name = {n.name: n for n in nodes}
        if spec.node is not None and spec.node not in by_name:
            raise InputError(f"Slurm has no node {spec.node!r}; nodes: {', '.join(sorted(by_name))}", field="node")
        candidates = [by_name[spec.node]] if spec.node else list(nodes)
        where = f"node {spec.node}" if spec.node else "any node"
        offered = sorted({f for n in candidates for f in n.features})
        unknown = [f for f in spec.features if f not in offered]
        if unknown:
            raise InfeasibleError(
                f"{where} offers no feature {', '.join(unknown)}; offered: {', '.join(offered) or 'none'}",
                field="features",
            )
        candidates = [n for n in candidates if set(spec.features) <= set(n.features)]
        if not candidates:
            raise InfeasibleError(f"no node has all of the features {', '.join(spec.features)}", field="features")
        if spec.features and not spec.node:
            where = f"the nodes with {' and '.join(spec.features)} ({', '.join(n.name for n in candidates)})"
        # Filter in turn, so a spec each of whose asks some node meets, but no node meets together, is refused too.
        for name, wanted, has in (
            ("cpus", spec.cpus, lambda n: n.cpus),
            ("memory_mib", spec.memory_mib, lambda n: n.memory_mib),
        ):
            fitting = [n for n in candidates if has(n) >= wanted]
            if not fitting:
                best = max(has(n) for n in candidates)
                raise InfeasibleError(f"{where} has at most {best} {name}; asked for {wanted}", field=name)
            candidates = fitting
            where = f"{where} with {wanted} {name}" if not spec.node else where
        if spec.gpus:
            typed = [n for n in candidates if spec.gpu_type in (None, n.gpu_type) and n.gpus]
            if not typed:
                types = sorted({n.gpu_type for n in candidates if n.gpu_type})
                raise InfeasibleError(
                    f"{where} has no {spec.gpu_type or ''} GPU; GPU types there: {', '.join(types) or 'none'}",
                    field="gpu_type" if spec.gpu_type else "gpus",
                )
            if all(n.gpus < spec.gpus for n in typed):
                best = max(n.gpus for n in typed)
                raise InfeasibleError(f"{where} has at most {best} such GPUs; asked for {spec.gpus}", field="gpus")
            candidates = [n for n in typed if n.gpus >= spec.gpus]
        if spec.shards:
            # A share is cut from one GPU: the node's shards split evenly over its GPUs (gres.conf(5), shard).
            per_gpu = [n.shards // n.gpus for n in candidates if n.gpus and n.shards]
            if not per_gpu or max(per_gpu) < spec.shards:
                best = max(per_gpu, default=0)
                raise InfeasibleError(
                    f"{where} offers at most {best} shards on one GPU; asked for {spec.shards}", field="shards"
                )

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        if shutil.which(argv[0], path=self._env.get("PATH")) is None:
            raise SchedulerUnavailableError(f"{argv[0]} is not installed; install Slurm with: {INSTALL_HINT}")
        try:
            proc = subprocess.run(
                argv, env=self._env, capture_output=True, text=True, timeout=self.command_timeout_s, cwd=self.root
            )
        except subprocess.TimeoutExpired:
            raise SchedulerUnavailableError(
                f"{argv[0]} did not answer within {self.command_timeout_s:.0f} s; is slurmctld running?"
            ) from None
        if check and proc.returncode != 0:
            raise SchedulerUnavailableError(f"{' '.join(argv[:3])} failed: {proc.stderr.strip()}")
        return proc


def parse_key_values(line: str) -> dict[str, str]:
    """Parses one line of ``scontrol show ... -o`` (``Key=value Key2=value with spaces ...``)."""
    return {m.group(1): m.group(2) for m in KEY_VALUE_RE.finditer(line.strip())}


def _value(text: str | None) -> str | None:
    return None if text in (None, "", "(null)", "None", "N/A", "Unknown") else text


def _slurm_time(text: str | None) -> float | None:
    value = _value(text)
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value).timestamp()  # local time, as slurmctld prints it
    except ValueError:
        return None


def _parse_node(fields: dict[str, str]) -> ExecutorNode:
    gpus, gpu_type, shards = 0, None, 0
    for gres in (_value(fields.get("Gres")) or "").split(","):
        parts = gres.split("(")[0].split(":")
        if parts[0] == "gpu" and len(parts) >= 2:
            gpus += int(parts[-1]) if parts[-1].isdigit() else 1
            gpu_type = parts[1] if len(parts) == 3 else gpu_type
        if parts[0] == "shard" and parts[-1].isdigit():
            shards += int(parts[-1])
    features = tuple(f for f in (_value(fields.get("AvailableFeatures")) or "").split(",") if f)
    flags = set(re.split(r"[+*~#$@%!^-]+", fields.get("State", "").upper()))
    if flags & {"DOWN", "NOT_RESPONDING", "FAIL", "INVAL", "UNKNOWN", "NO_RESPOND"}:
        state = NodeState.DOWN
    elif flags & {"DRAIN", "DRAINING", "DRAINED"}:
        state = NodeState.DRAIN
    else:
        state = NodeState.UP
    return ExecutorNode(
        name=fields["NodeName"],
        cpus=int(fields.get("CPUTot", "0")),
        memory_mib=int(fields.get("RealMemory", "0")),
        gpus=gpus,
        gpu_type=gpu_type,
        features=features,
        shards=shards,
        state=state,
        reason=_value(fields.get("Reason")) or "",
    )


def _sbatch_error(spec: JobSpec, stderr: str, partition: str | None = None) -> SuanwangError:
    text = stderr.strip().replace("sbatch: error: ", "")
    asked = {
        "features": list(spec.features),
        "node": spec.node,
        "memory_mib": spec.memory_mib,
        "cpus": spec.cpus,
        "gpus": spec.gpus,
        "gpu_type": spec.gpu_type,
        "shards": spec.shards,
        "time_limit_s": spec.time_limit_s,
        "partition": partition,
    }
    for needle, error, field in SBATCH_ERRORS:
        if field == "gres":
            field = "gpu_type" if spec.gpu_type else "gpus" if spec.gpus else "shards"
        if needle in text:
            return error(f"Slurm refused the job ({field}={asked[field]!r}): {text}", field=field)
    if "Unable to contact slurm controller" in text or "Connection refused" in text:
        return SchedulerUnavailableError(f"Slurm controller does not answer: {text}")
    return InfeasibleError(f"Slurm refused the job: {text}")
