"""Service-ID orders (CFN/CATS anycast) and live node state in the market engine: a service order goes
to the node offering the service with the least network + compute delay; nodes reported down, or silent
for more than two report intervals, take no order."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from suanwang.errors import InputError
from suanwang.lifecycle.market_view import LivenessRule, market_order
from suanwang.matching.market import MarketEngine, MarketNode, MarketOrder, MarketPlacement, NodeCondition, Unplaced
from suanwang.matching.model import StagePolicy

SERVICE = "0x" + "5e" * 32
OTHER_SERVICE = "0x" + "0f" * 32


class LineNetwork:
    """Routers on a line, 5 ms apart."""

    def latency_ms(self, access_point: int, routers: Any) -> Any:
        return 5.0 * np.abs(np.asarray(routers) - access_point)

    def bandwidth_gbps(self, access_point: int, routers: Any) -> Any:
        return np.full(len(routers), 100.0)


def node(node_id: int, router: int, price: int = 10**15) -> MarketNode:
    return MarketNode(node_id, "0xseller", "0xop", router, 64_000, 0, 0, 65_536, 0, 0, 1, price)


def order(service_id: str | None = SERVICE, order_id: str = "o1") -> MarketOrder:
    return MarketOrder(order_id, "0xbuyer", 1000, 0, 0, 1024, 0, 0, 0, 60, 10**18, 10**20, 0, 0.0, 0.0, service_id)


def offering(load: float, service_time_ms: float = 5.0, service: str = SERVICE) -> NodeCondition:
    return NodeCondition(load=load, services={service: service_time_ms})


def test_a_service_order_goes_to_the_least_network_plus_compute_delay() -> None:
    # Node 1: 5 ms away (10 ms there and back), 90% loaded: 10 + 5 / 0.1 = 60 ms.
    # Node 2: 10 ms away (20 ms round trip), idle: 20 + 5 = 25 ms, though dearer. Node 3: nearest, cheapest,
    # but offers another service. Node 4: nearest of all, but saturated.
    nodes = [node(1, 1, price=10**14), node(2, 2, price=10**15), node(3, 0, price=10**13), node(4, 0)]
    engine = MarketEngine(nodes, LineNetwork(), StagePolicy(3), platform_fee_bps=0)
    engine.set_conditions(
        {1: offering(0.9), 2: offering(0.0), 3: offering(0.0, service=OTHER_SERVICE), 4: offering(1.0)}
    )
    placed = engine.place(order())
    assert isinstance(placed, MarketPlacement) and placed.node_id == 2
    # Load moves the choice: with node 1 idle it is 10 + 5 = 15 ms, the nearest instance now.
    engine.release("o1")
    engine.set_conditions({1: offering(0.0), 2: offering(0.0)})
    placed = engine.place(order())
    assert isinstance(placed, MarketPlacement) and placed.node_id == 1
    # An order naming no service still goes by the profile's scores (node 3, the cheapest bill).
    plain = engine.place(order(None, "o2"))
    assert isinstance(plain, MarketPlacement) and plain.node_id == 3


def test_batch_clearing_places_a_service_order_on_its_nearest_instance() -> None:
    engine = MarketEngine([node(1, 1, price=10**13), node(2, 3)], LineNetwork(), StagePolicy(3), platform_fee_bps=0)
    engine.set_conditions({1: offering(0.95), 2: offering(0.0)})  # 10 + 100 ms against 30 + 5 ms
    result = engine.clear_batch([order()])
    assert [p.node_id for p in result.placements] == [2]


def test_a_service_nobody_offers_is_explained() -> None:
    engine = MarketEngine([node(1, 1), node(2, 2)], LineNetwork(), StagePolicy(3), platform_fee_bps=0)
    engine.set_conditions({1: offering(1.0)})
    unplaced = engine.place(order())
    assert isinstance(unplaced, Unplaced)
    assert f"1 node does not offer service {SERVICE}" in unplaced.explanation.sentences
    assert f"1 node is saturated or unreachable for service {SERVICE}" in unplaced.explanation.sentences


def test_a_malformed_service_id_names_the_field() -> None:
    with pytest.raises(InputError) as refused:
        MarketEngine([node(1, 1)], LineNetwork(), StagePolicy(3), platform_fee_bps=0).place(order("0x12"))
    assert refused.value.field == "o1:service_id"


def test_the_orders_service_id_is_read_from_the_signed_order() -> None:
    signed = {
        "buyer": "0xbuyer", "logicMcu": 1000, "parallelMcu": 0, "neuralMcu": 0, "memoryMib": 1024, "gpuModel": 0,
        "gpuCount": 0, "minTier": 0, "duration": 60, "maxPricePerCuHour": 1, "maxTotal": 1, "maxLatencyMs": 0,
        "minBandwidthMbps": 0, "serviceId": "0x" + "00" * 32,
    }  # fmt: skip
    record = SimpleNamespace(id="o1", order=signed)
    assert market_order(record, 0).service_id is None  # type: ignore[arg-type]
    record.order = {**signed, "serviceId": SERVICE.upper().replace("0X", "0x")}
    assert market_order(record, 0).service_id == SERVICE  # type: ignore[arg-type]


def report(sent_at: float, up: bool = True, received_at: float | None = None) -> Any:
    return SimpleNamespace(
        sent_at=int(sent_at),
        received_at=datetime.fromtimestamp(received_at or sent_at, UTC),
        up=up,
        cpus=8,
        free_cpus=8,
        load_1m=0.0,
        services=[{"service_id": SERVICE, "service_time_ms": 5.0}],
    )


def test_a_node_is_live_while_up_and_heard_from_within_two_intervals() -> None:
    rule, now = LivenessRule(interval_s=5), 1_000_000.0
    assert rule.condition(report(now - 9), True, now) == NodeCondition(services={SERVICE: 5.0}, cpus=8)
    assert rule.condition(report(now - 11), True, now).silent  # two intervals passed: silent
    assert rule.condition(report(now - 1, up=False), True, now).down
    # A report dated ahead of its receipt counts from its receipt.
    assert rule.condition(report(now + 30, received_at=now - 11), True, now).silent


def test_a_node_never_reported_is_live_only_while_its_provider_reports_nothing() -> None:
    now = 1_000_000.0
    assert not LivenessRule().condition(None, False, now).silent  # a market without metrics agents matches
    assert LivenessRule().condition(None, True, now).silent  # its agent reports, but not on this node
    assert LivenessRule(require_node_metrics=True).condition(None, False, now).silent


def test_down_and_silent_nodes_take_no_order_and_are_explained() -> None:
    engine = MarketEngine([node(1, 0), node(2, 1), node(3, 2)], LineNetwork(), StagePolicy(3), platform_fee_bps=0)
    engine.set_conditions({1: NodeCondition(down=True), 2: NodeCondition(silent=True)})
    placed = engine.place(order(None))
    assert isinstance(placed, MarketPlacement) and placed.node_id == 3
    engine.set_conditions({1: NodeCondition(down=True), 2: NodeCondition(silent=True), 3: NodeCondition(silent=True)})
    unplaced = engine.place(order(None, "o2"))
    assert isinstance(unplaced, Unplaced)
    assert list(unplaced.explanation.sentences[:2]) == [
        "1 node is reported down by its provider",
        "2 nodes have sent no live metrics lately",
    ]
