"""A scenario's inputs: the Topology Zoo networks and peerings it names, the OpenB rows its node groups and
order streams draw from, and a check that reads all of them before anything is deployed. An error in any
file is reported at the scenario line that names it."""

from __future__ import annotations

from dataclasses import replace

from suanwang.compute.catalog import Catalog, default_catalog
from suanwang.compute.openb import OpenbNode, OpenbPod, load_nodes, load_pods
from suanwang.errors import InputError, SuanwangError
from suanwang.network.config import resolve_topology
from suanwang.network.model import Network, Operator, Peering
from suanwang.network.topology import load_graphml
from suanwang.paths import shared_data_dir
from suanwang.replay.scenario import NodeGroup, OrderStream, Scenario


def at_line(scenario: Scenario, line: int, where: str, exc: SuanwangError) -> InputError:
    """An error from a file or name the scenario refers to, pointed at the scenario line naming it."""
    return InputError(f"{scenario.path}:{line}: {where}: {exc.message}", field=f"{scenario.path}:{line}:{where}")


def build_network(scenario: Scenario, failed_links: list[tuple[str, str]] | None = None) -> Network:
    """The scenario's operators' Topology Zoo networks and peerings, without `failed_links`."""
    failed = {frozenset(pair) for pair in failed_links or []}
    operators = []
    for i, op in enumerate(scenario.operators):
        try:
            topology = load_graphml(resolve_topology(op.topology), op.name)
        except SuanwangError as exc:
            raise at_line(scenario, op.line, f"network.operators[{i}].topology", exc) from None
        if failed:
            labels = [r.label for r in topology.routers]
            keep = [
                ln
                for ln in topology.links
                if frozenset((f"{op.name}/{labels[ln.a]}", f"{op.name}/{labels[ln.b]}")) not in failed
            ]
            topology = replace(topology, links=keep)
        operators.append(Operator(op.name, topology, op.transit_price_per_gbps_hour))
    peerings = [Peering(p.a, p.b, p.capacity_gbps) for p in scenario.peering if frozenset((p.a, p.b)) not in failed]
    try:
        return Network(operators, peerings)
    except SuanwangError as exc:
        raise at_line(scenario, scenario.operators[0].line, "network.peering", exc) from None


def openb_nodes(scenario: Scenario, group: NodeGroup, catalog: Catalog) -> list[OpenbNode]:
    """The OpenB node rows a node group draws from (its `gpu` filter applied); never empty."""
    assert group.openb is not None
    file = str(group.openb.get("file", "openb_node_list_all_node.csv"))
    gpu = group.openb.get("gpu", "any")
    try:
        table = load_nodes(shared_data_dir() / "openb" / file, catalog)
    except SuanwangError as exc:
        raise at_line(scenario, group.line, "nodes.openb.file", exc) from None
    table = [n for n in table if gpu == "any" or (gpu == "only") == (n.gpu_count > 0)]
    if not table:
        raise InputError(
            f"{scenario.path}:{group.line}: nodes.openb: {file} has no node with gpu: {gpu}",
            field=f"{scenario.path}:{group.line}:nodes.openb",
        )
    return table


def openb_pods(
    scenario: Scenario, stream: OrderStream, catalog: Catalog, cache: dict[str, list[OpenbPod]]
) -> list[OpenbPod]:
    """The OpenB pods an order stream draws from (its `gpu` and `max_gpus` filters applied); never empty.
    `cache` holds each trace file read once."""
    assert stream.openb is not None
    file = str(stream.openb.get("file", "openb_pod_list_default.csv"))
    gpu, max_gpus = stream.openb.get("gpu", "any"), int(stream.openb.get("max_gpus", 8))
    if file not in cache:
        try:
            cache[file] = load_pods(shared_data_dir() / "openb" / file, catalog)
        except SuanwangError as exc:
            raise at_line(scenario, stream.line, "orders.openb.file", exc) from None
    pods = [p for p in cache[file] if (gpu == "any" or (gpu == "only") == (p.num_gpu > 0)) and p.num_gpu <= max_gpus]
    if not pods:
        raise InputError(
            f"{scenario.path}:{stream.line}: orders.openb: {file} has no pod with gpu: {gpu} and at most "
            f"{max_gpus} GPUs",
            field=f"{scenario.path}:{stream.line}:orders.openb",
        )
    return pods


def check_inputs(scenario: Scenario) -> None:
    """Reads every file the scenario refers to and resolves every router it names, so that a mistake
    there is reported (at the scenario line naming it) before anything is deployed or sent to a chain."""
    network = build_network(scenario)
    catalog = default_catalog()
    pods_cache: dict[str, list[OpenbPod]] = {}
    for group in scenario.nodes:
        for router in group.routers:
            try:
                network.router_index(router)
            except SuanwangError as exc:
                raise at_line(scenario, group.line, "nodes.routers", exc) from None
        if group.openb is not None:
            openb_nodes(scenario, group, catalog)
    for stream in scenario.orders:
        for access_point in stream.access_points:
            try:
                network.router_index(access_point)
            except SuanwangError as exc:
                raise at_line(scenario, stream.line, "orders.access_points", exc) from None
        if stream.openb is not None:
            openb_pods(scenario, stream, catalog, pods_cache)
