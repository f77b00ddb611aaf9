"""`suanwang up` (what `make up` runs): the whole stack on one machine, stopped with Ctrl-C."""

from __future__ import annotations

import os
import signal
import time

import click

from suanwang.chain.deployment import Deployment
from suanwang.config import STATE_DIR, Settings
from suanwang.devstack import AgentProcess, Anvil, ApiServer, deploy_contracts, deployment_is_live, free_port
from suanwang.roles import Role

AGENTS_DIR = STATE_DIR / "agents"


def demo_agents(deployment: Deployment, env: dict[str, str], service_url: str) -> list[AgentProcess]:
    """One agent per demo party, each a process with that party's development key: a provider agent per
    seller (cloud or provider), an operator agent per operator, a buyer agent per buyer. The service holds
    the matcher's key; an account whose key it holds runs no agent (two processes would race for its
    nonces)."""
    matcher = next((a.address for a in deployment.accounts if a.roles & Role.MATCHER and a.private_key), None)
    agents = []
    for account in deployment.accounts:
        if not account.private_key or account.address == matcher:
            continue
        slug = account.address[2:10].lower()
        roles = [
            ("provider", Role.CLOUD | Role.PROVIDER, ["--executor-dir", str(AGENTS_DIR / f"provider-{slug}-executor")]),
            ("operator", Role.OPERATOR, []),
            ("buyer", Role.BUYER, []),
        ]
        for role, bits, extra in roles:
            if account.roles & bits:
                store = AGENTS_DIR / f"{role}-{slug}.db"
                args = ["--store", str(store), "--interval", "0.25", "--service-url", service_url, *extra]
                agents.append(
                    AgentProcess(role, account.private_key, args, env, store.with_suffix(".log"), own_session=True)
                )
    return agents


@click.command()
@click.option("--chain-port", type=int, default=None, help="Anvil port (default 8545 if free, else a free one)")
@click.option("--port", type=int, default=None, help="API and web app port (default SUANWANG_PORT, 8000 if free)")
def up(chain_port: int | None, port: int | None) -> None:
    """Start Anvil (state kept in .state/), deploy the contracts if this chain has none, serve the API and app."""
    settings = Settings.from_env()
    chain_port = chain_port or free_port(int(os.environ.get("SUANWANG_CHAIN_PORT", 8545)))
    api_port = port or free_port(settings.port)
    stopping = False

    def _stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)

    anvil = Anvil(chain_port, state_file=STATE_DIR / "anvil" / "state.json", own_session=True)
    api: ApiServer | None = None
    agents: list[AgentProcess] = []
    try:
        click.echo(f"chain:    starting Anvil on {anvil.url} (state in {anvil.state_file})")
        anvil.start()
        if deployment_is_live(anvil.url, settings.deployment_file):
            click.echo(f"deploy:   reusing the deployment in {settings.deployment_file}")
        else:
            click.echo("deploy:   compiling and deploying the contracts (brownie run scripts/deploy.py)")
            deployment = deploy_contracts(anvil.url, chain_port, settings.deployment_file)
            click.echo(f"deploy:   {', '.join(f'{k} {v}' for k, v in deployment.contracts.items())}")
        chain_env = {"SUANWANG_RPC_URL": anvil.url, "SUANWANG_DEPLOYMENT_FILE": str(settings.deployment_file)}
        api = ApiServer(api_port, {**chain_env, "SUANWANG_SERVICE_KEYS": "matcher"}, own_session=True)
        api.start()
        agents = demo_agents(Deployment.load(settings.deployment_file), chain_env, api.url)
        for agent in agents:
            agent.start()
        click.echo(f"agents:   {', '.join(f'{a.role} {a.log_file.stem}' for a in agents)} (logs in {AGENTS_DIR})")
        click.echo("")
        click.echo(f"  web app   {api.url}/")
        click.echo(f"  API docs  {api.url}/docs")
        click.echo(f"  health    {api.url}/health")
        click.echo(f"  chain     {anvil.url} (chain id 31337)")
        click.echo("\nCtrl-C stops everything.")
        while not stopping:
            if anvil.process is None or anvil.process.poll() is not None:
                raise click.ClickException("Anvil exited; stopping")
            if api.process is None or api.process.poll() is not None:
                raise click.ClickException("the API server exited; stopping")
            for agent in agents:
                if not agent.alive():
                    raise click.ClickException(f"the {agent.role} agent exited (see {agent.log_file}); stopping")
            time.sleep(0.5)
    finally:
        click.echo("stopping: agents, API, then Anvil (writing its state)")
        for agent in agents:
            agent.stop()
        if api is not None:
            api.stop()
        anvil.stop()
