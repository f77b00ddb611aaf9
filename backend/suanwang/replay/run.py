"""One call from a scenario file to a verified report: start Anvil (unless given a chain), deploy the
contracts with scripts/deploy.py (stage 1), replay, check against the chain, write the report."""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.types import RPCEndpoint

from suanwang.chain.deployment import Deployment
from suanwang.replay.chain import build_dir
from suanwang.replay.inputs import check_inputs
from suanwang.replay.report import write_report
from suanwang.replay.runner import Replay, ReplayResult
from suanwang.replay.scenario import Scenario
from suanwang.replay.verify import verify


@dataclass
class Outcome:
    result: ReplayResult
    verification: dict[str, Any]
    report: Path

    @property
    def ok(self) -> bool:
        return self.result.ok and bool(self.verification["ok"])


def replay_on_chain(
    scenario: Scenario, rpc_url: str, deployment: Deployment, out: Path, progress: bool = True
) -> Outcome:
    founder = next(a for a in deployment.accounts if a.address.lower() == deployment.deployer.lower())
    if not founder.private_key:
        raise ValueError("the deployment record has no key for the deployer (only on chain id 31337)")
    extra = {
        f"{a.name} (demo account)": a.address
        for a in deployment.accounts
        if a.address.lower() != deployment.deployer.lower()
    }
    # The chain id cached: web3 asks for it before every contract read, and the replay reads thousands.
    provider = Web3.HTTPProvider(
        rpc_url,
        request_kwargs={"timeout": 60},
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
    )
    w3 = Web3(provider)
    runner = Replay(
        scenario, w3, deployment, founder.private_key, out / "index.sqlite", extra_accounts=extra, progress=progress
    )
    result = runner.run()
    checked = verify(
        rpc_url,
        deployment.contracts,
        result.addresses,
        result.figures,
        result.start_block,
        result.end_block,
        build_dir(),
    )
    report = write_report(result, out, checked)
    return Outcome(result, checked, report)


def replay(
    scenario: Scenario,
    out: Path,
    rpc_url: str | None = None,
    deployment_file: Path | None = None,
    progress: bool = True,
) -> Outcome:
    """Replays on `rpc_url` (deploying there unless `deployment_file` names a live deployment), or on
    a fresh Anvil started for the run and stopped after."""
    from suanwang.devstack import Anvil, deploy_contracts, free_port

    check_inputs(scenario)  # a wrong topology, trace or router name fails here, before any chain is touched
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="suanwang-replay-")))
        if rpc_url is None:
            anvil = stack.enter_context(Anvil(free_port()))
            rpc_url, port = anvil.url, anvil.port
        else:
            port = int(rpc_url.rsplit(":", 1)[1].split("/")[0])
        if deployment_file is None:
            deployment_file = folder / "deployment.json"
            deployment = deploy_contracts(rpc_url, port, deployment_file, {"SUANWANG_STAGE": "1"})
        else:
            deployment = Deployment.load(deployment_file)
        return replay_on_chain(scenario, rpc_url, deployment, out, progress)
