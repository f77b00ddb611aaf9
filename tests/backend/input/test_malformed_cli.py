"""The commands that read files (`suanwang route`, `replay`, `match-trace`) given malformed ones exit
non-zero with a one-line message naming the file, never a traceback; `replay` checks everything its
scenario refers to before it deploys anything, so a chain it is pointed at is left as it was.

Most cases run the command in-process (click's runner: an exception the command does not turn into
its one-line message shows as `result.exception`); two run `python -m suanwang` as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from suanwang.cli import cli
from suanwang.paths import shared_data_dir
from tests.backend.input.corpus import FILES, Malformed, scenario
from tests.backend.input.corpus import PODS as PODS_HEADER
from tests.support.stack import Chain

OPENB = shared_data_dir() / "openb"


def corpus(name: str) -> Malformed:
    return next(c for c in FILES if c.name == name)


def suanwang_process(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "suanwang", *args], capture_output=True, text=True, timeout=120, check=False
    )


def suanwang(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def assert_one_line_error(result: subprocess.CompletedProcess[str] | Result, *mentions: str) -> None:
    if isinstance(result, Result):
        assert isinstance(result.exception, SystemExit), result.exc_info  # not an exception escaping as such
        code = result.exit_code
    else:
        code = result.returncode
    assert code != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for mention in mentions:
        assert mention in lines[0], lines[0]


@pytest.mark.parametrize(
    "case", ["latitude-500.graphml", "binary.graphml", "capacity-words.yaml", "peering-syntax.yaml"]
)
def test_route_with_a_malformed_network_file(case: str, tmp_path: Path) -> None:
    malformed = corpus(case)
    path = tmp_path / malformed.name
    path.write_bytes(malformed.content)
    result = suanwang("route", "--topology", str(path), "--from", "Beijing", "--to", "Shanghai")
    assert_one_line_error(result, malformed.name, malformed.expect)


def test_route_between_routers_that_do_not_exist() -> None:
    result = suanwang_process("route", "--topology", "Abilene", "--from", "Atlantis", "--to", "Chicago")
    assert_one_line_error(result, "Atlantis")


@pytest.mark.parametrize("case", ["alias-bomb.yaml", "python-tag.yaml", "unknown-party.yaml", "latin-1.yaml"])
def test_replay_with_a_malformed_scenario(case: str, tmp_path: Path) -> None:
    malformed = corpus(case)
    path = tmp_path / malformed.name
    path.write_bytes(malformed.content)
    result = suanwang("replay", str(path), "--out", str(tmp_path / "report"), "--quiet")
    assert_one_line_error(result, malformed.name, malformed.expect)
    assert not (tmp_path / "report").exists()


def test_replay_of_a_scenario_nested_100000_deep(tmp_path: Path) -> None:
    """The CLI imports py_ecc too (which lifts the recursion limit): the YAML reader must still refuse."""
    path = tmp_path / "deep.yaml"
    path.write_bytes(scenario("notes: " + "[" * 100_000 + "]" * 100_000 + "\n"))
    assert_one_line_error(suanwang("replay", str(path), "--quiet"), "deep.yaml", "nested")


def test_replay_of_a_missing_scenario(tmp_path: Path) -> None:
    assert_one_line_error(suanwang("replay", str(tmp_path / "none.yaml")), "none.yaml", "cannot read")


def test_replay_refusing_a_scenario_leaves_the_chain_untouched(chain: Chain, tmp_path: Path) -> None:
    """A topology, a trace or a router the scenario names is wrong: nothing is deployed or sent."""
    path = tmp_path / "bad-reference.yaml"
    path.write_bytes(scenario(**{"topology: Cernet": "topology: Atlantis"}))
    block, nonce = chain.w3.eth.block_number, chain.w3.eth.get_transaction_count(chain.deployment.deployer)
    result = suanwang_process(
        "replay", str(path), "--rpc", chain.anvil.url, "--out", str(tmp_path / "report"), "--quiet"
    )
    assert_one_line_error(result, "bad-reference.yaml:4", "network.operators[0].topology", "Atlantis")
    assert chain.w3.eth.block_number == block
    assert chain.w3.eth.get_transaction_count(chain.deployment.deployer) == nonce
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("which", ["nodes", "pods"])
def test_match_trace_with_a_malformed_trace(which: str, tmp_path: Path) -> None:
    malformed = corpus("nodes-fraction.csv" if which == "nodes" else "pods-huge-cell.csv")
    path = tmp_path / malformed.name
    path.write_bytes(malformed.content)
    files = {"nodes": OPENB / "openb_node_list_all_node.csv", "pods": OPENB / "openb_pod_list_default.csv"}
    files[which] = path
    result = suanwang("match-trace", "--nodes", str(files["nodes"]), "--pods", str(files["pods"]))
    assert_one_line_error(result, malformed.name, malformed.expect)


@pytest.mark.parametrize("which", ["nodes", "pods"])
def test_match_trace_with_a_header_and_no_rows(which: str, tmp_path: Path) -> None:
    empty = {"nodes": "sn,cpu_milli,memory_mib,gpu,model\n", "pods": PODS_HEADER}
    path = tmp_path / f"{which}-header-only.csv"
    path.write_text(empty[which])
    files = {"nodes": OPENB / "openb_node_list_all_node.csv", "pods": OPENB / "openb_pod_list_default.csv"}
    files[which] = path
    result = suanwang("match-trace", "--nodes", str(files["nodes"]), "--pods", str(files["pods"]))
    assert_one_line_error(result, "no " if which == "nodes" else path.name)
