"""The shipped scenarios, short forms, replayed on a fresh Anvil with the stage-1 deployment of
scripts/deploy.py: every expected outcome, the conservation check and the independent check of the
report against the chain (raw eth_getLogs and balanceOf) must hold; a replay is deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from suanwang.paths import REPO_ROOT
from suanwang.replay.run import replay_on_chain
from suanwang.replay.scenario import load_scenario
from tests.support.stack import Deployments

SCENARIOS = REPO_ROOT / "scripts" / "scenarios"
SHIPPED = ["stage1-cernet.yaml", "stage2-cernet-aliyun.yaml", "stage3-federation.yaml"]


@pytest.mark.parametrize("name", SHIPPED)
def test_short_replay_meets_its_expectations(name: str, deployments: Deployments, tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / name, short=True)
    with deployments.chain(1) as chain:
        outcome = replay_on_chain(scenario, chain.anvil.url, chain.deployment, tmp_path, progress=False)
    result = outcome.result
    failed = [(text, where, actual) for text, where, actual, ok in result.outcomes if not ok]
    assert not failed, f"expected outcomes missed: {failed}"
    assert result.conservation["ok"], result.conservation["checks"]
    disagree = [row for row in outcome.verification["rows"] if not row[3]]
    assert not disagree, f"report and chain disagree: {disagree}"
    assert result.figures["open_deals"] == 0
    report = outcome.report.read_text()
    for png in ("balances.png", "gas.png", "match_utilisation.png", "sla.png", "transit.png"):
        assert (tmp_path / png).stat().st_size > 1000
        assert png in report
    assert json.loads((tmp_path / "figures.json").read_text())["figures"]["conservation"] is True


def test_stage_rules_show_in_the_figures(deployments: Deployments, tmp_path: Path) -> None:
    """Stage 1 moves no value; stage 2 pays the operator's network team transit on its own cloud's deals."""
    with deployments.chain(1) as chain:
        one = replay_on_chain(
            load_scenario(SCENARIOS / SHIPPED[0], short=True),
            chain.anvil.url,
            chain.deployment,
            tmp_path / "one",
            progress=False,
        ).result
    assert one.figures["valued_deals"] == 0 and one.figures["value_moved"] == 0
    assert all(one.before[n] == one.after[n] for n in one.before)
    with deployments.chain(1) as chain:
        two = replay_on_chain(
            load_scenario(SCENARIOS / SHIPPED[1], short=True),
            chain.anvil.url,
            chain.deployment,
            tmp_path / "two",
            progress=False,
        ).result
    assert int(two.figures["transit_revenue"]["cernet-network"]) > 0
    assert two.after["cernet-cloud"] > two.before["cernet-cloud"]


def test_replay_is_deterministic_for_a_seed(deployments: Deployments, tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / SHIPPED[1], short=True)
    runs = []
    for k in range(2):
        with deployments.chain(1) as chain:
            result = replay_on_chain(
                scenario, chain.anvil.url, chain.deployment, tmp_path / str(k), progress=False
            ).result
        runs.append(result)
    a, b = runs
    assert [p.id for p in a.plans] == [p.id for p in b.plans]
    assert [(d.id, d.node.node_id, d.status, d.total) for d in a.deals] == [
        (d.id, d.node.node_id, d.status, d.total) for d in b.deals
    ]
    assert a.figures == b.figures
    other = load_scenario(SCENARIOS / SHIPPED[1], short=True, seed=scenario.seed + 1)
    with deployments.chain(1) as chain:
        c = replay_on_chain(other, chain.anvil.url, chain.deployment, tmp_path / "c", progress=False).result
    assert [p.id for p in c.plans] != [p.id for p in a.plans]
