"""`suanwang up` (what `make up` runs): the whole stack on one machine, stopped with Ctrl-C."""

from __future__ import annotations

import os
import signal
import time

import click

from suanwang.config import STATE_DIR, Settings
from suanwang.devstack import Anvil, ApiServer, deploy_contracts, deployment_is_live, free_port


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
    try:
        click.echo(f"chain:    starting Anvil on {anvil.url} (state in {anvil.state_file})")
        anvil.start()
        if deployment_is_live(anvil.url, settings.deployment_file):
            click.echo(f"deploy:   reusing the deployment in {settings.deployment_file}")
        else:
            click.echo("deploy:   compiling and deploying the contracts (brownie run scripts/deploy.py)")
            deployment = deploy_contracts(anvil.url, chain_port, settings.deployment_file)
            click.echo(f"deploy:   {', '.join(f'{k} {v}' for k, v in deployment.contracts.items())}")
        api = ApiServer(
            api_port,
            {"SUANWANG_RPC_URL": anvil.url, "SUANWANG_DEPLOYMENT_FILE": str(settings.deployment_file)},
            own_session=True,
        )
        api.start()
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
            time.sleep(0.5)
    finally:
        click.echo("stopping: API, then Anvil (writing its state)")
        if api is not None:
            api.stop()
        anvil.stop()
