"""The scenario's timed events in a replay: stage changes, admissions and votes, node failures, link
failures (the network is rebuilt without the link and the leases crossing it re-routed) and disputes
the buyers will raise."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from suanwang.errors import InfeasibleError
from suanwang.lifecycle.marketplace import RoutedCost
from suanwang.replay.chain import ReplayError
from suanwang.replay.deals import node_name
from suanwang.replay.inputs import build_network
from suanwang.replay.matching import billing
from suanwang.replay.members import admit, publish_tariffs, vote
from suanwang.replay.records import FINAL

if TYPE_CHECKING:
    from suanwang.replay.runner import Replay


def apply_event(r: Replay, kind: str, args: dict[str, Any]) -> None:
    fed = r.chain.federation
    if kind == "stage":
        r.tx(r.founder.name, "advanceStage", fed.advance_stage(args["stage"]))
        r.stage = args["stage"]
        r.epoch = fed.epoch()  # orders signed from now on name the new epoch
        r.note(f"the federation moved to stage {r.stage}")
        r.refresh_engine()
    elif kind == "admit":
        admit(r, args["party"])
        publish_tariffs(r)
    elif kind == "vote":
        vote(r, args["candidate"], args["proposer"], args["voters"])
        publish_tariffs(r)
    elif kind == "node_failure":
        mine = [n for n in r.nodes if n.owner == args["owner"] and n.registered and not n.failed]
        if not mine:
            raise ReplayError(f"node_failure: {args['owner']} has no registered working node")
        busy = Counter(d.node.label for d in r.deals.values() if d.status not in FINAL)
        node = (
            mine[args["index"]]
            if args["index"] < len(mine) and args["index"]
            else max(mine, key=lambda n: (busy[n.label], -n.node_id))
        )
        node.failed = True
        r.engine.remove_node(node.node_id)
        r.deal_steps.executor.fail_node(node_name(node.node_id))
        r.counts["failed_nodes"] += 1
        r.note(
            f"node {node.label} (id {node.node_id}) of {node.owner} failed with {busy[node.label]} open "
            "deal(s); its jobs are lost, so they will time out and the seller is slashed"
        )
    elif kind == "link_failure":
        fail_link(r, args["a"], args["b"])
    elif kind == "dispute":
        for _ in range(args["count"]):
            r.pending_disputes[args["buyer"]].append((args["arbiter"], args["seller_wins"], r.now))


def fail_link(r: Replay, a: str, b: str) -> None:
    ia, ib = r.network.router_index(a), r.network.router_index(b)
    names = (r.network.routers[ia].name, r.network.routers[ib].name)
    if not any({ln.a, ln.b} == {ia, ib} for ln in r.network.links):
        raise ReplayError(f"link_failure: no link between {names[0]} and {names[1]}")
    live = [d for d in r.deals.values() if d.reservation is not None]
    for d in live:
        r.network.release(d.reservation)  # type: ignore[arg-type]
        d.reservation = None
    r.failed_links.append(names)
    r.network = build_network(r.s, r.failed_links)
    r.engine.network = RoutedCost(r.network)
    r.engine.network_changed()
    r.transit_cache.clear()
    r.biller.marketplace = billing(r)
    rerouted = 0
    for d in live:
        crosses = any({d.path[i], d.path[i + 1]} == {ia, ib} for i in range(len(d.path) - 1))
        if crosses:
            try:
                path = r.network.path(d.path[0], d.path[-1], min_bandwidth_gbps=d.gbps, srv6=False)
            except InfeasibleError:
                r.counts["lease_lost"] += 1
                continue
            before = d.latency_ms
            d.path, d.latency_ms, d.rerouted = list(path.router_indices), float(path.latency_ms), True
            bound = float(d.plan.order["maxLatencyMs"])
            d.sla_met = None if not bound else d.latency_ms <= bound
            rerouted += 1
            if rerouted <= 3:
                r.note(
                    f"lease of {d.id[:10]} re-routed: {before:.1f} -> {d.latency_ms:.1f} ms over "
                    f"{' > '.join(r.network.routers[i].name for i in d.path)}"
                )
        else:
            path = r.network.make_path(d.path, srv6=False)
        try:
            d.reservation = r.network.reserve(path, d.gbps)
        except InfeasibleError:
            r.counts["lease_lost"] += 1
    r.counts["rerouted"] += rerouted
    r.note(
        f"link {names[0]} - {names[1]} failed; {rerouted} lease(s) re-routed, {len(live) - rerouted} kept their path"
    )
