#!/usr/bin/env python3
"""Start, inspect and stop a real one-host Slurm cluster of emulated nodes (see docs/scheduling.md).

Everything the cluster owns (slurm.conf, gres.conf, cgroup.conf, emulated GPU devices, the accounting
database, state, spool, logs, pid files) lives under one directory given with ``--dir``; ports come from
``--base-port`` (slurmctld on the base port, node i on base+1+i, then slurmdbd and MariaDB). Client
commands find the cluster through ``SLURM_CONF=<dir>/slurm.conf``.

One thing is shared between clusters: munged on its default socket ``/run/munge/munge.socket.2`` with
``/etc/munge/munge.key``, because slurmctld's connection to slurmdbd ignores ``AuthInfo=socket=``
(../shared/docs/SLURM.md). The first cluster starts it, each registers under ``/run/munge``, and the
last one to stop stops it (if it was started here).

    python tools/slurm/cluster.py start --dir D --nodes n1:cpus=2,mem=2000 n2:cpus=2,mem=2000,gpu=a100:2,shards=8
    python tools/slurm/cluster.py status --dir D
    python tools/slurm/cluster.py stop --dir D

Node spec: ``NAME:key=value,...`` with keys ``cpus``, ``mem`` (MiB), ``gpu`` (``TYPE:COUNT``), ``shards``
(GPU shares, split evenly over the node's GPUs) and ``features`` (``+``-separated). A GPU node gets the
features ``gpu`` and ``gpu_<type>``.

The script installs nothing: when a binary is missing it says which package provides it
(``apt-get install -y slurm-wlm munge slurmdbd mariadb-server``) and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, also when loaded by path

import accountingdb
import confinement
import sharedmunge

REQUIRED_BINARIES = {
    "munged": "munge",
    "munge": "munge",
    "unmunge": "munge",
    "slurmctld": "slurm-wlm",
    "slurmd": "slurm-wlm",
    "sbatch": "slurm-wlm",
    "squeue": "slurm-wlm",
    "scontrol": "slurm-wlm",
    "sinfo": "slurm-wlm",
    "scancel": "slurm-wlm",
    "sacct": "slurm-wlm",
    "sacctmgr": "slurm-wlm",
    "slurmdbd": "slurmdbd",
    "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server",
    "mariadb": "mariadb-server",
}
INSTALL_HINT = "apt-get install -y slurm-wlm munge slurmdbd mariadb-server"
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,30}$")
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 5.0
GATHER_FREQUENCY_S = 2
GPU_MAJOR = 195  # the NVIDIA driver's character major (Documentation/admin-guide/devices.txt)
MAX_JOB_ID = 0x03FFFFFF  # Slurm's default MaxJobId (slurm.conf(5))


class ClusterError(Exception):
    """A cluster could not be started, found or stopped; the message says why and what to do."""


@dataclass(frozen=True)
class NodeSpec:
    name: str
    cpus: int = 1
    memory_mib: int = 1000
    gpu_type: str | None = None
    gpus: int = 0
    features: tuple[str, ...] = ()
    shards: int = 0

    def all_features(self) -> tuple[str, ...]:
        extra = ("gpu", f"gpu_{self.gpu_type}") if self.gpus else ()
        return tuple(dict.fromkeys((*extra, *self.features)))


@dataclass
class ClusterInfo:
    """What ``start`` writes to ``<dir>/cluster.json``: enough for ``stop``, ``status`` and the tests."""

    dir: str
    cluster_name: str
    base_port: int
    slurm_conf: str
    munge_socket: str
    min_job_age_s: int
    nodes: list[NodeSpec] = field(default_factory=list)
    first_job_id: int = 1
    confinement: str | None = None
    """The cgroup plugin in use (``cgroup/v1``, ``cgroup/v2``), or None: task/none plus setrlimit."""
    confinement_detail: str = ""

    @property
    def dbd_port(self) -> int:
        return self.base_port + len(self.nodes) + 1

    @property
    def db_port(self) -> int:
        return self.base_port + len(self.nodes) + 2

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": self.slurm_conf}


def parse_node(text: str) -> NodeSpec:
    """Parses ``n2:cpus=2,mem=4000,gpu=a100:2,shards=8,features=ssd+fast``."""
    name, _, rest = text.partition(":")
    if not NAME_RE.match(name):
        raise ClusterError(f"node name {name!r} in {text!r} must be lower-case letters and digits, e.g. n1")
    values: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in {"cpus", "mem", "gpu", "shards", "features"}:
            raise ClusterError(
                f"node {name}: {item!r} is not one of cpus=N, mem=MiB, gpu=TYPE:N, shards=N, features=a+b"
            )
        values[key] = value
    try:
        cpus = int(values.get("cpus", "1"))
        memory = int(values.get("mem", "1000"))
        gpu_type, gpus = None, 0
        if "gpu" in values:
            gpu_type, _, count = values["gpu"].partition(":")
            gpus = int(count or "1")
        shards = int(values.get("shards", "0"))
    except ValueError as exc:
        raise ClusterError(f"node {name}: {exc} in {text!r}") from None
    if cpus < 1 or memory < 1 or gpus < 0 or (gpu_type is not None and not NAME_RE.match(gpu_type)):
        raise ClusterError(f"node {name}: cpus and mem must be positive, gpu like a100:2 (got {text!r})")
    if shards < 0 or (shards and (not gpus or shards % gpus)):
        raise ClusterError(f"node {name}: shards must split evenly over the node's GPUs (got {text!r})")
    features = tuple(f for f in values.get("features", "").split("+") if f)
    return NodeSpec(name, cpus, memory, gpu_type, gpus, features, shards)


def missing_binaries() -> list[str]:
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
    return [b for b in REQUIRED_BINARIES if shutil.which(b, path=path) is None]


def binary(name: str) -> str:
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
    found = shutil.which(name, path=path)
    if found is None:
        raise ClusterError(f"{name} is not installed; install it with: {INSTALL_HINT}")
    return found


def check_prerequisites() -> None:
    missing = missing_binaries()
    if missing:
        packages = sorted({REQUIRED_BINARIES[b] for b in missing})
        raise ClusterError(
            f"missing {', '.join(missing)} (packages {', '.join(packages)}); install with: {INSTALL_HINT}"
        )
    if os.geteuid() != 0:
        raise ClusterError("the emulated cluster runs slurmd as root (one per node); run this as root")


def default_dir() -> Path:
    return Path(f"/tmp/suanwang-slurm-{os.getuid()}")


def port_is_free(port: int) -> bool:
    # Binds like the daemons do (SO_REUSEADDR), so ports of a just-stopped cluster in TIME_WAIT count as free.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def render_slurm_conf(info: ClusterInfo, host: str) -> str:
    d = info.dir
    lines = [
        f"ClusterName={info.cluster_name}",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={info.base_port}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        # Job ids start at a random point so that two clusters on this host do not give the same job the
        # same cgroup path (cgroup/v1 names it after node and job id: slurm_<node>/uid_<uid>/job_<id>).
        f"FirstJobId={info.first_job_id}",
        f"StateSaveLocation={d}/state",
        f"SlurmdSpoolDir={d}/spool/%n",
        f"SlurmctldPidFile={d}/run/slurmctld.pid",
        f"SlurmdPidFile={d}/run/slurmd-%n.pid",
        f"SlurmctldLogFile={d}/log/slurmctld.log",
        f"SlurmdLogFile={d}/log/slurmd-%n.log",
        "SelectType=select/cons_tres",
        # Cores and memory are both consumable: a job gets the memory it asks for (--mem), not the node's.
        "SelectTypeParameters=CR_Core_Memory",
        *confinement.Confinement(info.confinement, "").slurm_conf_lines,
        "MpiDefault=none",
        *accountingdb.accounting_conf_lines(host, info.dbd_port, GATHER_FREQUENCY_S),
        "ReturnToService=1",  # an administrator's DOWN stays down until resumed
        "GresTypes=gpu,shard",
        f"MinJobAge={info.min_job_age_s}",
        "KillWait=5",
        "SlurmdTimeout=30",
        "InactiveLimit=0",
        "SchedulerType=sched/backfill",
        # Schedule a batch job when it is submitted: by default Slurm may put that off for up to 3 s
        # (batch_sched_delay, slurm.conf(5)) to spare the controller under floods of sbatch; a
        # marketplace wants a matched job running now. Measured here at 10 jobs/s on 8 emulated nodes:
        # p50 submit -> running 1.67 s with the default, 0.33 s with 0.
        "SchedulerParameters=batch_sched_delay=0",
    ]
    for i, node in enumerate(info.nodes):
        parts = [
            f"NodeName={node.name}",
            f"NodeHostname={host}",
            "NodeAddr=127.0.0.1",
            f"Port={info.base_port + 1 + i}",
            f"CPUs={node.cpus}",
            f"RealMemory={node.memory_mib}",
            "State=UNKNOWN",
        ]
        if node.all_features():
            parts.append("Feature=" + ",".join(node.all_features()))
        if node.gpus:
            parts.append(f"Gres=gpu:{node.gpu_type}:{node.gpus}" + (f",shard:{node.shards}" if node.shards else ""))
        lines.append(" ".join(parts))
    names = ",".join(n.name for n in info.nodes)
    lines.append(f"PartitionName=main Nodes={names} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO")
    return "\n".join(lines) + "\n"


def gpu_minors(info: ClusterInfo) -> dict[str, range]:
    """Each GPU node's device minors, distinct across nodes, so no two emulated GPUs are the same device."""
    minors, first = {}, 0
    for node in info.nodes:
        if node.gpus:
            minors[node.name] = range(first, first + node.gpus)
            first += node.gpus
    return minors


def render_gres_conf(info: ClusterInfo) -> str:
    lines = []
    for name, minors in gpu_minors(info).items():
        node = next(n for n in info.nodes if n.name == name)
        devices = Path(info.dir) / "dev" / name
        lines.append(f"NodeName={name} Name=gpu Type={node.gpu_type} File={devices}/nvidia[{minors[0]}-{minors[-1]}]")
        if node.shards:
            lines.append(f"NodeName={name} Name=shard Count={node.shards}")
    return "\n".join(lines) + "\n"


def make_gpu_devices(info: ClusterInfo) -> None:
    """Character devices 195:N (no driver behind them), so the device cgroup has something real to deny.

    Empty files would not do: the device cgroup filters device numbers. Opening an allowed one fails with
    ENXIO (no driver); a nodev mount fails it with EACCES, which is reported here instead of in a test.
    """
    for name, minors in gpu_minors(info).items():
        devices = Path(info.dir) / "dev" / name
        devices.mkdir(parents=True)
        for minor in minors:
            path = devices / f"nvidia{minor}"
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(GPU_MAJOR, minor))
            path.chmod(0o666)
            try:
                os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise ClusterError(
                        f"opening the emulated GPU {path} failed with {errno.errorcode.get(exc.errno or 0)} "
                        "instead of ENXIO: is the file system mounted nodev? Choose a --dir elsewhere"
                    ) from None


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def run(argv: list[str], env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise ClusterError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout}")
    return proc


def load_info(directory: Path) -> ClusterInfo | None:
    try:
        raw = json.loads((directory / "cluster.json").read_text())
    except (OSError, ValueError):
        return None
    raw["nodes"] = [NodeSpec(**{**n, "features": tuple(n["features"])}) for n in raw["nodes"]]
    return ClusterInfo(**raw)


def start(directory: Path, nodes: list[NodeSpec], base_port: int, min_job_age_s: int) -> ClusterInfo:
    check_prerequisites()
    if not nodes:
        raise ClusterError("give at least one node, e.g. --nodes n1:cpus=2,mem=2000")
    if len({n.name for n in nodes}) != len(nodes):
        raise ClusterError(f"node names repeat: {[n.name for n in nodes]}")
    directory = directory.resolve()
    if load_info(directory) is not None and cluster_processes(directory):
        raise ClusterError(f"a cluster already runs in {directory}; stop it first: cluster.py stop --dir {directory}")
    ports = [base_port + i for i in range(len(nodes) + 3)]  # slurmctld, the slurmds, slurmdbd, MariaDB
    busy = [p for p in ports if not port_is_free(p)]
    if busy:
        raise ClusterError(f"ports {busy} are in use; choose another --base-port (needs {len(ports)} free ports)")
    for sub in ("state", "spool", "run", "log", "munge", "dev", "db"):
        shutil.rmtree(directory / sub, ignore_errors=True)
        (directory / sub).mkdir(parents=True)
    host = socket.gethostname().split(".")[0]
    confined = confinement.probe()
    info = ClusterInfo(
        dir=str(directory),
        cluster_name="sw" + secrets.token_hex(3),
        base_port=base_port,
        slurm_conf=str(directory / "slurm.conf"),
        munge_socket=str(sharedmunge.MUNGE_SOCKET),
        min_job_age_s=min_job_age_s,
        nodes=nodes,
        first_job_id=1000 + secrets.randbelow(MAX_JOB_ID // 2),
        confinement=confined.plugin,
        confinement_detail=confined.detail,
    )
    for node in nodes:
        (directory / "spool" / node.name).mkdir()
    make_gpu_devices(info)
    (directory / "slurm.conf").write_text(render_slurm_conf(info, host))
    (directory / "gres.conf").write_text(render_gres_conf(info))
    cgroup_conf = confined.cgroup_conf()
    with contextlib.suppress(FileNotFoundError):
        (directory / "cgroup.conf").unlink()
    if cgroup_conf is not None:
        (directory / "cgroup.conf").write_text(cgroup_conf)
    (directory / "cluster.json").write_text(json.dumps(asdict(info), indent=2) + "\n")
    try:
        sharedmunge.start(directory, binary, run)
        password = accountingdb.start_database(directory, info.db_port, binary, run)
        dbd_conf = directory / "slurmdbd.conf"
        dbd_conf.touch(mode=0o600)
        dbd_conf.chmod(0o600)  # slurmdbd refuses a slurmdbd.conf others can read (it holds the DB password)
        dbd_conf.write_text(accountingdb.render_slurmdbd_conf(directory, host, info.dbd_port, info.db_port, password))
        accountingdb.start_slurmdbd(directory, info.cluster_name, info.env, binary, run)
        run([binary("slurmctld"), "-i", "-f", info.slurm_conf], env=info.env)
        for node in nodes:
            run([binary("slurmd"), "-N", node.name, "-f", info.slurm_conf], env=info.env)
        wait_ready(info)
    except (accountingdb.AccountingError, sharedmunge.MungeError) as exc:
        stop(directory)
        raise ClusterError(str(exc)) from None
    except BaseException:
        stop(directory)
        raise
    return info


def node_states(info: ClusterInfo) -> dict[str, str]:
    proc = run([binary("sinfo"), "-N", "-h", "-o", "%N %T"], env=info.env, check=False)
    if proc.returncode != 0:
        return {}
    return dict(line.split(None, 1) for line in proc.stdout.splitlines() if line.strip())


def wait_ready(info: ClusterInfo) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = node_states(info)
        if len(states) == len(info.nodes) and all(s.startswith("idle") for s in states.values()):
            return
        time.sleep(0.3)
    logs = Path(info.dir) / "log"
    raise ClusterError(f"nodes did not become idle within {READY_TIMEOUT_S:.0f} s: {states or 'no answer'}; see {logs}")


def cluster_processes(directory: Path) -> list[int]:
    """Every live process that belongs to this cluster: its daemons, job step daemons and job processes.

    Daemons are found by their pid files; slurmstepd by being a Slurm process with a file or working
    directory under the cluster directory; job processes by carrying both SLURM_JOB_ID and this cluster's
    SLURM_CONF in their environment. This process and its ancestors (a shell that exported SLURM_CONF)
    are never included.
    """
    directory = directory.resolve()
    conf_marker = f"SLURM_CONF={directory}/slurm.conf".encode()
    prefix = str(directory) + "/"
    found: set[int] = set()
    for pidfile in (directory / "run").glob("*.pid"):
        pid = read_pid(pidfile)
        if pid is not None and pid_alive(pid):
            found.add(pid)
    spared = ancestors(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in spared:
            continue
        pid = int(entry.name)
        with contextlib.suppress(OSError):
            environ = (entry / "environ").read_bytes().split(b"\0")
            if conf_marker in environ and any(v.startswith(b"SLURM_JOB_ID=") for v in environ):
                found.add(pid)
                continue
        if is_slurm_process(entry) and holds_path_under(entry, prefix):
            found.add(pid)
    return sorted(p for p in found if pid_alive(p) and p not in spared)


def ancestors(pid: int) -> set[int]:
    chain = {pid}
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        chain.add(pid)
    return chain


def holds_path_under(entry: Path, prefix: str) -> bool:
    with contextlib.suppress(OSError):
        if os.readlink(entry / "cwd").startswith(prefix):
            return True
    with contextlib.suppress(OSError):
        for fd in (entry / "fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd).startswith(prefix):
                    return True
    return False


def is_slurm_process(entry: Path) -> bool:
    try:
        cmdline = (entry / "cmdline").read_bytes()
    except OSError:
        return False
    return any(name in cmdline for name in (b"slurm", b"munge", b"mariadb"))


def stop(directory: Path) -> list[int]:
    """Cancels the jobs, stops the daemons and kills whatever of the cluster is left. Returns killed pids."""
    directory = directory.resolve()
    info = load_info(directory)
    if info is not None and shutil.which("scancel"):
        run(["scancel", "--full", "--quiet", "--user", str(os.getuid())], env=info.env, check=False)
    pids = cluster_processes(directory)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    for _ in range(3):
        left = cluster_processes(directory)
        if not left:
            break
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    sharedmunge.release(directory, lambda other: bool(cluster_processes(other)))
    return pids


def status(directory: Path) -> dict[str, object]:
    info = load_info(directory.resolve())
    if info is None:
        return {"dir": str(directory), "running": False, "nodes": {}}
    return {
        "dir": info.dir,
        "running": bool(cluster_processes(Path(info.dir))),
        "slurm_conf": info.slurm_conf,
        "nodes": node_states(info),
        "accounting": f"slurmdbd on port {info.dbd_port}, MariaDB on port {info.db_port}",
        "confinement": info.confinement or "none: task/none, memory limited by setrlimit (RLIMIT_AS) in the job",
        "confinement_detail": info.confinement_detail,
    }


def node_argument(text: str) -> NodeSpec:
    try:
        return parse_node(text)
    except ClusterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("start", "stop", "status"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--dir", type=Path, default=default_dir(), help="all cluster files (default %(default)s)")
    start_cmd = sub.choices["start"]
    start_cmd.add_argument("--nodes", nargs="+", required=True, type=node_argument, help="NAME:cpus=N,mem=MiB,gpu=T:N")
    start_cmd.add_argument("--base-port", type=int, default=17100, help="slurmctld port; node i gets base+1+i")
    start_cmd.add_argument("--min-job-age", type=int, default=300, help="seconds Slurm keeps finished jobs")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            info = start(args.dir, args.nodes, args.base_port, args.min_job_age)
            print(json.dumps(status(Path(info.dir))))
            if info.confinement is None:
                print(f"cluster.py: no cgroup confinement ({info.confinement_detail}); task/none", file=sys.stderr)
        elif args.command == "stop":
            print(json.dumps({"dir": str(args.dir), "stopped_pids": stop(args.dir)}))
        else:
            print(json.dumps(status(args.dir)))
    except ClusterError as exc:
        print(f"cluster.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
