"""`suanwang route` end to end through click."""

from __future__ import annotations

import json

from click.testing import CliRunner

from suanwang.cli import cli


def test_route_json_prints_path_latency_segments_operators_and_fee():
    res = CliRunner().invoke(cli, ["route", "--topology", "global-research-and-transit.yaml", "--from", "Beijing",
                                   "--to", "Abilene/Chicago", "--max-latency-ms", "100", "--min-bandwidth-gbps",
                                   "5", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["path"][0] == "Cernet/Beijing" and out["path"][-1] == "Abilene/Chicago"
    assert out["latency_ms"] <= 100 and out["bandwidth_gbps"] >= 5
    assert out["segments"] and out["operators"][0] == "Cernet"
    assert all(isinstance(v, str) for v in out["transit_fee_per_gbps_hour"].values())


def test_route_errors_say_what_exists():
    res = CliRunner().invoke(cli, ["route", "--topology", "Abilene", "--from", "Nowhere", "--to", "Denver"])
    assert res.exit_code != 0 and "no router 'Nowhere'" in res.output
    res = CliRunner().invoke(cli, ["route", "--topology", "Abilene", "--from", "Seattle", "--to", "Atlanta",
                                   "--max-latency-ms", "2"])
    assert res.exit_code != 0 and "the shortest takes" in res.output
