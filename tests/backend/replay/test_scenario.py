"""Scenario files: the shipped ones load (full and short); a malformed one is refused with an error
naming the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from suanwang.cli import cli
from suanwang.errors import InputError
from suanwang.paths import REPO_ROOT
from suanwang.replay.scenario import load_scenario

SCENARIOS = REPO_ROOT / "scripts" / "scenarios"
GOOD = """\
name: tiny
network:
  operators:
    - {topology: Cernet, paid_to: net}
parties:
  - {name: op, roles: [operator, matcher, arbiter], founder: true}
  - {name: net, roles: [operator]}
  - {name: cloud, roles: [cloud]}
  - {name: buyer, roles: [buyer]}
nodes:
  - owner: cloud
    routers: [Cernet/Beijing]
    price_per_cu_hour: "0.05"
    spec: {logic_mcu: 64000, memory_mib: 1024, tier: 0}
orders:
  - buyer: buyer
    count: 3
    window: [0, 1h]
    access_points: [Cernet/Beijing]
    shape: {logic_mcu: 1000, memory_mib: 512}
    duration: 10m
    max_price_per_cu_hour: "0.1"
expect:
  matched: ">= 1"
"""


def test_shipped_scenarios_load() -> None:
    for path in sorted(SCENARIOS.glob("*.yaml")):
        full, short = load_scenario(path), load_scenario(path, short=True)
        assert sum(o.count for o in short.orders) < sum(o.count for o in full.orders)
    stage3 = load_scenario(SCENARIOS / "stage3-federation.yaml")
    assert sum(g.count for g in stage3.nodes) >= 50
    assert sum(o.count for o in stage3.orders) >= 1000
    assert len(stage3.operators) >= 3


def test_the_good_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(GOOD)
    s = load_scenario(path)
    assert s.nodes[0].price_per_cu_hour == 5 * 10**16 and s.orders[0].duration == (600, 600)


@pytest.mark.parametrize(
    ("old", "new", "line", "field"),
    [
        ('price_per_cu_hour: "0.05"', 'price_per_cu_hour: "cheap"', 13, "nodes[0].price_per_cu_hour"),
        ("count: 3", "count: -3", 17, "orders[0].count"),
        ("owner: cloud", "owner: nobody", 11, "nodes[0].owner"),
        ("duration: 10m", "duration: ten minutes", 21, "orders[0].duration"),
        ("roles: [buyer]}", "roles: [shopper]}", 9, "parties[3].roles[0]"),
        ('matched: ">= 1"', 'matched: "lots"', 24, "expect.matched"),
        ("    shape: {logic_mcu: 1000", "    shapes: {logic_mcu: 1000", 20, "orders[0].shapes"),
        ("    count: 3\n", "    count: 3\n    count: 4\n", 18, "orders[0].count"),
        ("tier: 0}", "tier: 0", 15, "(syntax)"),
    ],
)
def test_malformed_scenario_names_file_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str
) -> None:
    assert old in GOOD
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(InputError) as error:
        load_scenario(path)
    assert error.value.message.startswith(f"{path}:{line}: {field}"), error.value.message


def test_the_command_reports_a_malformed_scenario(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("owner: cloud", "owner: nobody"))
    result = CliRunner().invoke(cli, ["replay", str(path), "--quiet"])
    assert result.exit_code == 1
    assert f"{path}:11: nodes[0].owner: no party named 'nobody'" in result.output
