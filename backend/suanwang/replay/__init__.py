"""Scenario replay: a rollout plan (YAML) replayed against Anvil with the real contracts, the market
engine and the network model, with a report (markdown + PNG plots) and an independent check of the
report's figures against the chain.

    from suanwang.replay import load_scenario, replay
    scenario = load_scenario("scripts/scenarios/stage3-federation.yaml", short=True)
    result = replay(scenario, rpc_url, deployment, out_dir)     # ReplayResult (figures, report path)

Format: docs/replay.md. Command line: ``suanwang replay <scenario>``; brownie:
``brownie run scripts/replay.py main <scenario>``.
"""

from suanwang.replay.scenario import Scenario, load_scenario

__all__ = ["Scenario", "load_scenario"]
