"""Replay a rollout scenario on the connected chain. A brownie script:

    SUANWANG_CHAIN_PORT=P .venv-brownie/bin/python tools/run_brownie.py run scripts/replay.py main \
        scripts/scenarios/stage3-federation.yaml --network development

Deploys the contracts with scripts/deploy.py (stage 1) on the chain brownie is connected to, then
hands over to the suanwang.replay package (web3.py on the same RPC URL), which replays the scenario
and writes reports/replay/<scenario>/report.md. Environment: SUANWANG_REPLAY_SHORT=1 for the short
form, SUANWANG_REPLAY_SEED to override the seed, SUANWANG_REPLAY_OUT for the report folder.

The brownie environment must import the package and its numeric dependencies (docs/replay.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(scenario: str = "scripts/scenarios/stage1-cernet.yaml") -> None:
    sys.path.insert(0, str(ROOT / "backend"))  # the package from this checkout, installed or not
    sys.path.insert(0, str(ROOT / "scripts"))
    from brownie import web3
    from deploy import deploy

    from suanwang.chain.deployment import Deployment
    from suanwang.replay.run import replay_on_chain
    from suanwang.replay.scenario import load_scenario

    short = os.environ.get("SUANWANG_REPLAY_SHORT", "") not in ("", "0")
    seed = os.environ.get("SUANWANG_REPLAY_SEED")
    loaded = load_scenario(scenario, short=short, seed=int(seed) if seed else None)
    out = Path(
        os.environ.get("SUANWANG_REPLAY_OUT")
        or ROOT / "reports" / "replay" / (loaded.name + ("-short" if short else "") + "-brownie")
    )
    out.mkdir(parents=True, exist_ok=True)
    deployment_file = out / "deployment.json"
    deploy(stage=1, out=deployment_file, quiet=True)
    outcome = replay_on_chain(loaded, web3.provider.endpoint_uri, Deployment.load(deployment_file), out)
    for text, where, actual, ok in outcome.result.outcomes:
        print(f"{'ok  ' if ok else 'FAIL'} {text} (actual {actual}; {where})")
    print(f"{'ok  ' if outcome.result.conservation['ok'] else 'FAIL'} conservation")
    print(f"{'ok  ' if outcome.verification['ok'] else 'FAIL'} report agrees with the chain")
    print(f"report: {outcome.report}")
    if not outcome.ok:
        raise SystemExit(1)
