"""A market for the buyer's and the arbiter's command line: a stage-3 chain with a staked node, the service
holding the matcher's key alone, and the seller's own provider agent, so deals run to completion while the
buyer acts only through `suanwang order` with its own key. A fresh account is admitted as an arbiter (the
demo arbiter is the matcher too, and so never drawn for the deals it matched)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from suanwang.cli import cli
from suanwang.devstack import rpc
from tests.backend.lifecycle.conftest import prepare_market
from tests.support.agents import admit_arbiter, matcher_service, provider_agent
from tests.support.stack import Chain, Deployments

# An Anvil development key no demo member uses (Foundry's mnemonic, account 8).
ARBITER_KEY = "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97"
ORDER_ID = re.compile(r"0x[0-9a-f]{64}")
# A small CPU order from the provider's own network (transit by CERNET's operators only), in tokens.
ORDER_OPTIONS = (
    "--access-point", "Cernet/Shanghai", "--logic-mcu", "2000", "--memory-mib", "256", "--duration", "600",
    "--max-price", "2", "--max-total", "100", "--min-bandwidth-mbps", "10",
)  # fmt: skip
JOB = ("--", "sh", "-c", "echo delivered")  # the job's command, after `--`
ORDER_ARGS = (*ORDER_OPTIONS, *JOB)


@dataclass
class CliMarket:
    chain: Chain
    service_url: str
    provider: Any
    buyer: Any
    arbiter: Any
    buyer_key_file: Path
    env: dict[str, str | None]  # what every CLI run sees: the chain, the deployment, the service, no keys
    processes: tuple[Any, ...]

    def run(self, *args: str, **env: str | None) -> Result:
        """`suanwang <args>` in this process, with `env` added to the market's."""
        return CliRunner().invoke(cli, list(args), env={**self.env, **env})

    def ok(self, *args: str, **env: str | None) -> str:
        result = self.run(*args, **env)
        assert result.exit_code == 0, (result.output, result.exc_info)
        return result.output

    def order(self, order_id: str) -> dict[str, Any]:
        return httpx.get(f"{self.service_url}/api/orders/{order_id}", timeout=30).json()  # type: ignore[no-any-return]

    def wait_for(self, order_id: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        found: dict[str, Any] = {}
        while time.monotonic() < deadline:
            found = self.order(order_id)
            if done(found):
                return found
            for p in self.processes:
                assert p.alive(), f"{p.role} agent exited: {p.log_file.read_text()[-3000:]}"
            time.sleep(0.2)
        raise AssertionError(f"order {order_id} did not get there in {timeout_s} s: {found}")

    def place(self) -> str:
        """An order placed from the command line with the buyer's key file; its id."""
        output = self.ok("order", "place", "--key-file", str(self.buyer_key_file), *ORDER_ARGS)
        found = ORDER_ID.search(output)
        assert found is not None, output
        return found.group(0)

    def completed(self) -> tuple[str, dict[str, Any]]:
        """An order placed from the command line and completed by the provider's agent."""
        order_id = self.place()
        return order_id, self.wait_for(order_id, lambda o: bool(o["deal"]) and o["deal"]["status"] == "completed")

    def holdings(self, address: str) -> int:
        """Tokens in the wallet and in the market's escrow (agents withdraw what they earn)."""
        token, market = self.chain.contract("SettlementToken"), self.chain.contract("Market")
        return int(token.functions.balanceOf(address).call()) + int(market.functions.balanceOf(address).call())

    def escrow(self, address: str) -> int:
        return int(self.chain.contract("Market").functions.balanceOf(address).call())

    def mine(self, blocks: int) -> None:
        for _ in range(blocks):
            rpc(self.chain.anvil.url, "evm_mine")


@pytest.fixture(scope="module")
def cli_market(deployments: Deployments, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliMarket]:
    tmp_path = tmp_path_factory.mktemp("cli-market")
    with deployments.chain(3) as chain:
        provider, buyer, _transit, _node_id, marketplace = prepare_market(chain, tmp_path)
        arbiter = admit_arbiter(chain, ARBITER_KEY)
        service = matcher_service(chain, tmp_path, marketplace)
        agent = provider_agent(chain, tmp_path, provider)
        key_file = tmp_path / "buyer.key"
        key_file.write_text(buyer.key.hex() + "\n")
        service.start()
        try:
            agent.start()
            yield CliMarket(
                chain,
                service.url,
                provider,
                buyer,
                arbiter,
                key_file,
                {
                    "SUANWANG_RPC_URL": chain.anvil.url,
                    "SUANWANG_DEPLOYMENT_FILE": str(chain.deployment_file),
                    "SUANWANG_SERVICE_URL": service.url,
                    "SUANWANG_BUYER_KEY": None,
                    "SUANWANG_ARBITER_KEY": None,
                },
                (agent,),
            )
        finally:
            agent.stop()
            service.stop()
