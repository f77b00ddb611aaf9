"""One settings object for the whole service, read from ``SUANWANG_*`` environment variables.

A plain pydantic model rather than pydantic-settings: brownie's exact pin of python-dotenv
(0.16) rules pydantic-settings out of any environment that must also import this package.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from suanwang.errors import InputError
from suanwang.paths import REPO_ROOT

ENV_PREFIX = "SUANWANG_"
STATE_DIR = REPO_ROOT / ".state"


class Settings(BaseModel):
    """Every knob of the service. Each field ``x`` is read from ``SUANWANG_X``."""

    rpc_url: str = Field("http://127.0.0.1:8545", description="JSON-RPC URL of the chain (Anvil by default)")
    database_url: str = Field(f"sqlite:///{STATE_DIR / 'suanwang.db'}", description="SQLAlchemy URL; SQLite by default")
    deployment_file: Path = Field(
        STATE_DIR / "deployment.json", description="written by scripts/deploy.py, read by the backend"
    )
    build_dir: Path = Field(REPO_ROOT / "build" / "contracts", description="brownie build artifacts (ABIs)")
    frontend_dir: Path = Field(REPO_ROOT / "frontend" / "dist", description="the built web app, served at /")
    host: str = Field("127.0.0.1", description="address the API listens on")
    port: int = Field(8000, ge=0, le=65535, description="port the API listens on")
    confirmations: int = Field(0, ge=0, le=1000, description="blocks the indexer stays behind the head")
    poll_interval_s: float = Field(0.25, gt=0, le=60, description="how often the indexer asks for new blocks")
    rate_limit_per_s: float = Field(50.0, gt=0, le=100_000, description="API requests per second per client")
    rate_limit_burst: int = Field(100, ge=1, le=1_000_000, description="requests a client may burst above the rate")
    marketplace_file: Path = Field(
        REPO_ROOT / "backend" / "suanwang" / "lifecycle" / "marketplace.yaml",
        description="the market's network and transit accounts",
    )
    executor: Literal["local", "slurm"] = Field("local", description="where matched jobs run")
    executor_dir: Path = Field(STATE_DIR / "executor", description="job state and outputs the service owns")
    slurm_node_map: str = Field(
        "", description="chain node id -> Slurm node name, e.g. '1=n1,2=n2' (empty: any node with the resources)"
    )
    slurm_conf: Path | None = Field(None, description="slurm.conf of the cluster (default: Slurm's own lookup)")
    content_dir: Path = Field(STATE_DIR / "content", description="the local content-addressed store")
    ipfs_api_url: str | None = Field(None, description="a Kubo RPC API URL; content goes there instead")
    matcher_key: str | None = Field(None, description="the matcher's private key (default: the demo matcher)")
    service_keys: Literal["matcher", "development"] = Field(
        "development",
        description="the keys the service acts with: the matcher's only, or on the development chain the demo "
        "sellers' and buyers' too (one process runs the whole market; `suanwang up` runs agents instead)",
    )
    orchestrator: bool = Field(True, description="run the order lifecycle in this process")
    orchestrator_interval_s: float = Field(0.25, gt=0, le=60, description="pause between lifecycle passes")
    matching: Literal["online", "batch"] = Field(
        "online", description="place each order as it comes, or clear the waiting orders together"
    )
    clearing_interval_ms: int = Field(500, ge=10, le=600_000, description="batch clearing period")
    match_batch_size: int = Field(200, ge=1, le=1000, description="matches sent to the chain per transaction")
    auto_confirm: bool = Field(True, description="buyers whose keys the service holds confirm results at once")
    log_chunk_blocks: int = Field(2000, ge=1, le=100_000, description="blocks per eth_getLogs call")
    node_metrics_interval_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="how often a provider's agent reports its nodes' live figures; the matcher skips a node "
        "silent for more than two of these",
    )
    require_node_metrics: bool = Field(
        False,
        description="match only nodes with a fresh metrics report (off: the nodes of a provider that never "
        "reported stay eligible, so a market without provider agents still matches)",
    )
    node_services: str = Field(
        "",
        description="the CFN/CATS services a provider agent's nodes offer, with their idle service time in ms: "
        "'<node id>=<service id bytes32>:<ms>', comma-separated, e.g. '1=0x01...:5,2=0x01...:8'",
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {
            name: env[ENV_PREFIX + name.upper()] for name in cls.model_fields if ENV_PREFIX + name.upper() in env
        }
        values.update(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "settings"
            raise InputError(f"{ENV_PREFIX}{field.upper()}: {first['msg']}", field=field) from exc
