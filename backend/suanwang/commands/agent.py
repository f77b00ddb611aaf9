"""`suanwang agent provider|operator|buyer`: one party's own agent, with its own key and its own store.

An agent needs only the chain's RPC URL, the deployment record, its key, and (a provider) its executor's
settings and the content store the buyers' specifications are in; never the service's database."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import click

from suanwang.agents.base import AgentRuntime, read_key, run_agent
from suanwang.config import STATE_DIR, Settings
from suanwang.errors import SuanwangError
from suanwang.lifecycle.keys import address_of

KEY_ENV = "SUANWANG_AGENT_KEY"


@dataclass(frozen=True)
class AgentOptions:
    """The options every agent takes."""

    key_file: Path | None
    rpc_url: str | None
    deployment_file: Path | None
    store: Path | None
    service_url: str | None
    interval: float
    no_withdraw: bool
    once: bool


def _common(function: Callable[..., None]) -> Any:
    """Adds the common options to a command, and hands them to it as one AgentOptions (its first argument)."""

    @functools.wraps(function)
    def command(**kwargs: Any) -> None:
        common = AgentOptions(**{f.name: kwargs.pop(f.name) for f in fields(AgentOptions)})
        function(common, **kwargs)

    options = [
        click.option(
            "--key-file",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            default=None,
            help=f"a file whose first line is the agent's private key (default: ${KEY_ENV})",
        ),
        click.option("--rpc-url", default=None, help="the chain's JSON-RPC URL (default SUANWANG_RPC_URL)"),
        click.option(
            "--deployment-file",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="the deployment record (default SUANWANG_DEPLOYMENT_FILE)",
        ),
        click.option(
            "--store",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="the agent's own SQLite file (default .state/agents/<role>-<address>.db)",
        ),
        click.option(
            "--service-url",
            default=None,
            help="the matcher service to send signed heartbeats to (default: none, only the heartbeat file)",
        ),
        click.option("--interval", type=float, default=0.1, show_default=True, help="seconds between passes"),
        click.option("--no-withdraw", is_flag=True, help="leave earnings in the market's escrow"),
        click.option("--once", is_flag=True, help="one pass, then exit (for scripts and checks)"),
    ]
    wrapped: Any = command
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped


def _run(
    role: str, common: AgentOptions, settings: Settings, make_steps: Callable[[AgentRuntime], list[Callable[[], None]]]
) -> None:
    """Builds the agent (its key, store and index) and its steps, and runs them until stopped; a mistake in
    the options or the environment is one line naming it."""
    try:
        key = read_key(common.key_file, KEY_ENV)
        runtime = AgentRuntime(
            role=role,
            rpc_url=common.rpc_url or settings.rpc_url,
            deployment_file=common.deployment_file or settings.deployment_file,
            build_dir=settings.build_dir,
            store=common.store or STATE_DIR / "agents" / f"{role}-{address_of(key)[2:10].lower()}.db",
            key=key,
            service_url=common.service_url,
        )
        steps = make_steps(runtime)
    except SuanwangError as exc:
        raise click.ClickException(exc.message) from None
    run_agent(runtime, steps, common.interval, common.once)


@click.group()
def agent() -> None:
    """Run one party's own agent (its key never leaves this process)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


@agent.command()
@_common
@click.option(
    "--executor", type=click.Choice(["local", "slurm"]), default=None, help="where jobs run (default SUANWANG_EXECUTOR)"
)
@click.option(
    "--executor-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="job state and outputs (default SUANWANG_EXECUTOR_DIR)",
)
@click.option("--slurm-node-map", default=None, help="chain node id -> Slurm node, e.g. '1=n1,2=n2'")
@click.option(
    "--content-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="the content store's directory (default SUANWANG_CONTENT_DIR)",
)
@click.option("--ipfs-api-url", default=None, help="a Kubo RPC API URL for content instead of a directory")
@click.option(
    "--node-services",
    default=None,
    help="the CFN/CATS services each node offers, '<node id>=<service id>:<service time ms>,...' "
    "(default SUANWANG_NODE_SERVICES)",
)
@click.option(
    "--metrics-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="seconds between signed node-metrics reports to --service-url (default SUANWANG_NODE_METRICS_INTERVAL_S)",
)
def provider(
    common: AgentOptions,
    executor: str | None,
    executor_dir: Path | None,
    slurm_node_map: str | None,
    content_dir: Path | None,
    ipfs_api_url: str | None,
    node_services: str | None,
    metrics_interval: float | None,
) -> None:
    """A seller's agent: runs, starts, completes and settles the deals on its nodes, and withdraws."""
    from suanwang.agents.provider import provider_steps
    from suanwang.content import content_store_from_url
    from suanwang.runtime import Runtime, parse_node_map

    overrides = {
        "executor": executor,
        "executor_dir": executor_dir,
        "slurm_node_map": slurm_node_map,
        "content_dir": content_dir,
        "ipfs_api_url": ipfs_api_url,
        "node_services": node_services,
        "node_metrics_interval_s": metrics_interval,
    }
    try:
        settings = Settings.from_env(None, **{k: v for k, v in overrides.items() if v is not None})
    except SuanwangError as exc:
        raise click.ClickException(exc.message) from None

    def steps(runtime: AgentRuntime) -> list[Callable[[], None]]:
        node_map = parse_node_map(settings.slurm_node_map)
        content = content_store_from_url(settings.ipfs_api_url, settings.content_dir)
        executor_nodes = lambda node: node_map.get(node.node_id)  # noqa: E731
        executor = Runtime.executor_for(settings)
        return provider_steps(runtime, executor, content, executor_nodes, not common.no_withdraw, settings)

    _run("provider", common, settings, steps)


@agent.command()
@_common
@click.option(
    "--tariff",
    type=click.IntRange(0, 2**96 - 1),
    default=None,
    help="the transit tariff to publish, token base units per Gbps-hour (default: keep the published one)",
)
def operator(common: AgentOptions, tariff: int | None) -> None:
    """A network operator's agent: publishes its tariff, keeps the leases that pay it, and withdraws."""
    from suanwang.agents.operator import operator_steps

    _run(
        "operator", common, Settings.from_env(), lambda runtime: operator_steps(runtime, tariff, not common.no_withdraw)
    )


@agent.command()
@_common
def buyer(common: AgentOptions) -> None:
    """A buyer's agent: confirms (settles) each delivered result of its deals at once."""
    from suanwang.agents.buyer import buyer_steps

    _run("buyer", common, Settings.from_env(), buyer_steps)
