"""The local stack's processes: an Anvil chain (optionally persisted with --state), the contracts
deployed by the brownie script, and the API. Used by `suanwang up` (`make up`) and by the tests, so
both run the same real parts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from suanwang.chain.deployment import Deployment
from suanwang.errors import SuanwangError
from suanwang.paths import REPO_ROOT

ANVIL_BIN = REPO_ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
BROWNIE_PYTHON = REPO_ROOT / ".venv-brownie" / "bin" / "python"
BROWNIE_RUNNER = REPO_ROOT / "tools" / "run_brownie.py"  # sets the chain port brownie uses
SOLCX_DIR = REPO_ROOT / ".toolchain" / "solcx"
DEV_MNEMONIC = "test test test test test test test test test test test junk"  # Anvil's default


class StackError(SuanwangError):
    """A local process could not be started or did not answer."""


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # As servers bind: a port whose last connections linger in TIME_WAIT is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(preferred: int = 0) -> int:
    """`preferred` when it is free, otherwise any free port the kernel hands out."""
    if preferred and port_is_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rpc(url: str, method: str, params: list[object] | None = None, timeout: float = 10.0) -> object:
    response = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}, timeout=timeout
    )
    body = response.json()
    if "error" in body:
        raise StackError(f"{method} failed: {body['error']}")
    return body["result"]


def wait_until(
    check: Callable[[], object], what: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise StackError(f"{what}: the process exited with code {process.returncode}")
        try:
            if check():
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.1)
    raise StackError(f"{what}: no answer within {timeout_s:.0f} s ({last})")


def genesis_time_file(state_file: Path) -> Path:
    """Where the genesis timestamp of a saved chain is kept, beside its Anvil state file."""
    return state_file.with_name(state_file.name + ".genesis-time")


@dataclass
class Anvil:
    """A local Anvil chain on `port`; with `state_file` its state survives restarts, with `load_state`
    it starts from a saved state (a test's pre-deployed chain) without writing back."""

    port: int
    state_file: Path | None = None
    load_state: Path | None = None
    block_time_s: float | None = None
    # In a session of its own, the terminal's Ctrl-C does not reach it: whoever started it stops it, in
    # order (`suanwang up`: the API first, then the chain it needs).
    own_session: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Anvil:
        if not ANVIL_BIN.exists():
            raise StackError(f"no Anvil at {ANVIL_BIN}: run `make setup` (npm ci installs @foundry-rs/anvil)")
        if not port_is_free(self.port):
            raise StackError(f"port {self.port} is taken; choose another (SUANWANG_CHAIN_PORT)")
        args = [
            str(ANVIL_BIN),
            "--port",
            str(self.port),
            "--host",
            "127.0.0.1",
            "--chain-id",
            "31337",
            "--base-fee",
            "0",
            "--mnemonic",
            DEV_MNEMONIC,
            "--accounts",
            "20",
            "--silent",
        ]
        saved = self.state_file if self.state_file is not None and self.state_file.exists() else self.load_state
        genesis_time = (
            genesis_time_file(saved).read_text().strip() if saved and genesis_time_file(saved).exists() else None
        )
        if genesis_time is not None:
            # Anvil 1.7.1 makes a new genesis block on every start and keeps both in the next dump;
            # from the second restart on, the new one can win and the chain's identity changes.
            # Starting with the original genesis timestamp makes the new genesis identical.
            args += ["--timestamp", genesis_time]
        if self.state_file is not None:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            # --state loads the file at start and writes it on exit; --state-interval also every 5 s,
            # so a crash loses at most a few seconds of blocks.
            args += ["--state", str(self.state_file), "--state-interval", "5"]
        if self.load_state is not None:
            args += ["--load-state", str(self.load_state)]  # read once, never written back
        if self.block_time_s:
            args += ["--block-time", str(self.block_time_s)]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=self.own_session)
        wait_until(lambda: rpc(self.url, "eth_chainId"), f"Anvil on port {self.port}", 20, self.process)
        if genesis_time is not None:
            # --timestamp also winds the clock back; bring chain time to the wall clock again.
            latest = rpc(self.url, "eth_getBlockByNumber", ["latest", False])
            assert isinstance(latest, dict)
            now = int(time.time())
            if now > int(latest["timestamp"], 16):
                rpc(self.url, "evm_setTime", [now])
        elif self.state_file is not None:
            genesis = rpc(self.url, "eth_getBlockByNumber", ["0x0", False])
            assert isinstance(genesis, dict)
            genesis_time_file(self.state_file).write_text(str(int(genesis["timestamp"], 16)))
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT: Anvil writes --state on the way out
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def brownie_env(port: int, deployment_file: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SUANWANG_CHAIN_PORT=str(port),
        SUANWANG_DEPLOYMENT_FILE=str(deployment_file),
        SOLCX_BINARY_PATH=str(SOLCX_DIR),
        PATH=f"{ANVIL_BIN.parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def deploy_contracts(
    anvil_url: str, port: int, deployment_file: Path, extra_env: dict[str, str] | None = None
) -> Deployment:
    """Runs `brownie run scripts/deploy.py` against the running chain and reads the record it writes."""
    env = brownie_env(port, deployment_file)
    env.update(extra_env or {})
    result = subprocess.run(
        [str(BROWNIE_PYTHON), str(BROWNIE_RUNNER), "run", "scripts/deploy.py", "--network", "development"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise StackError(f"deploy failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return Deployment.load(deployment_file)


def deployment_is_live(anvil_url: str, deployment_file: Path) -> bool:
    """True when the record exists and describes this chain: same genesis, code at every address."""
    try:
        deployment = Deployment.load(deployment_file)
    except SuanwangError:
        return False
    genesis = rpc(anvil_url, "eth_getBlockByNumber", ["0x0", False])
    if not isinstance(genesis, dict) or genesis.get("hash") != deployment.genesis_hash:
        return False
    return all(
        rpc(anvil_url, "eth_getCode", [address, "latest"]) not in ("0x", None)
        for address in deployment.contracts.values()
    )


def terminate(process: subprocess.Popen[bytes] | None, timeout_s: float = 10) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within `timeout_s`."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class ApiServer:
    """`suanwang serve` as a child process with the given settings."""

    port: int
    env: dict[str, str]
    own_session: bool = False  # as Anvil's
    process: subprocess.Popen[bytes] | None = None
    log_file: Path | None = None  # its output, else the terminal's

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        env = dict(os.environ)
        env.update(self.env)
        env["SUANWANG_PORT"] = str(self.port)
        log = self.log_file.open("ab") if self.log_file is not None else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "suanwang", "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT if log is not None else None,
            start_new_session=self.own_session,
        )
        if log is not None:
            log.close()
        wait_until(
            lambda: httpx.get(self.url + "/health", timeout=2).status_code == 200,
            f"API on port {self.port}",
            30,
            self.process,
        )
        return self

    def stop(self) -> None:
        terminate(self.process)
        self.process = None


@dataclass
class AgentProcess:
    """`suanwang agent <role>` as a child process. Its key goes in through the environment (never on the
    command line, which any user can read); its output goes to `log_file`."""

    role: str
    key: str
    args: list[str]
    env: dict[str, str]
    log_file: Path
    own_session: bool = False
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        env = dict(os.environ)
        env.update(self.env)
        env["SUANWANG_AGENT_KEY"] = self.key
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "suanwang", "agent", self.role, *self.args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.own_session,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        terminate(self.process)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: what a crash does (the fault campaign's agent kill)."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait()
        self.process = None
