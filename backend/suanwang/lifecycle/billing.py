"""The bill of a match as the market checks it: the compute and platform fees, and a transit line for
each operator on the path and for the node's network operator, each at the tariff it published on chain
(Market.transitTariffOf) for the order's bandwidth over its whole duration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from suanwang.chain.bill import Bill, make_bill, priced_transit, transit_fee
from suanwang.chain.contracts import MarketContract
from suanwang.errors import InfeasibleError, SuanwangError
from suanwang.lifecycle.marketplace import Marketplace
from suanwang.matching.market import MarketNode, MarketOrder
from suanwang.storage.models import Node

# What the engine is told a path it cannot price costs: more than any maxTotal, so the node is refused.
UNPRICEABLE = 2**200


@dataclass
class Biller:
    market: MarketContract
    marketplace: Marketplace
    # Transit tariffs per Gbps-hour by operator address, read at the head once per new block (`forget_tariffs`).
    _tariffs: dict[str, int] = field(default_factory=dict)

    def forget_tariffs(self) -> None:
        self._tariffs = {}

    def tariff(self, operator: str) -> int:
        """`operator`'s published transit tariff per Gbps-hour, as the chain holds it now."""
        key = operator.lower()
        if key not in self._tariffs:
            self._tariffs[key] = self.market.transit_tariff_of(operator)
        return self._tariffs[key]

    def _payees(
        self, access_point: int, router: int, node_operator: str, mbps: int, max_latency_ms: float
    ) -> list[str]:
        gbps = mbps / 1000 or self.marketplace.lease_bandwidth_gbps
        path = self.marketplace.network.path(
            access_point, router, max_latency_ms=max_latency_ms or None, min_bandwidth_gbps=gbps, srv6=False
        )
        return self.marketplace.transit_payees(path.operators, path.transit_fee_per_gbps_hour, node_operator)

    def transit_of(self, order: MarketOrder, node: MarketNode) -> int:
        """The transit `order` would pay on `node`'s path: the engine's TransitFee, so it ranks nodes by the
        whole bill and refuses a node whose bill is over maxTotal."""
        mbps = round(order.min_bandwidth_gbps * 1000)
        try:
            payees = self._payees(order.access_point, node.router, node.operator, mbps, order.max_latency_ms)
        except SuanwangError:
            return UNPRICEABLE  # no path within the order's bounds: the network filter says why
        return sum(transit_fee(self.tariff(p), mbps, order.duration_s) for p in payees)

    def bill_for(
        self, node: Node, order: dict[str, Any], access_point: str, fee_bps: int
    ) -> tuple[Bill, dict[str, Any]]:
        """The bill and route of `order` on `node`. InfeasibleError (naming the field) when over the order's
        transit or total limit."""
        gbps = int(order["minBandwidthMbps"]) / 1000 or self.marketplace.lease_bandwidth_gbps
        path = self.marketplace.network.path(
            access_point,
            self.marketplace.router_by_id[node.router],
            max_latency_ms=float(order["maxLatencyMs"]) or None,
            min_bandwidth_gbps=gbps,
        )
        payees = self.marketplace.transit_payees(path.operators, path.transit_fee_per_gbps_hour, node.operator)
        transit = priced_transit(order, [(payee, self.tariff(payee)) for payee in payees])
        bill = make_bill(order, node.node_id, int(node.price_per_cu_hour), fee_bps, transit)
        if sum(bill.transit_fees) > int(order["maxTransit"]):
            raise InfeasibleError(
                f"the path's transit is {sum(bill.transit_fees)} ("
                + ", ".join(f"{a}: {f}" for a, f in transit)
                + f"), over your transit limit of {order['maxTransit']}",
                field="maxTransit",
            )
        if bill.total > int(order["maxTotal"]):
            raise InfeasibleError(
                f"the best node's bill is {bill.total} (compute {bill.compute_fee}, transit "
                f"{sum(bill.transit_fees)}, platform {bill.platform_fee}), over your limit of "
                f"{order['maxTotal']}",
                field="maxTotal",
            )
        return bill, {**path.to_json(), "bandwidth_reserved_gbps": gbps}


def bill_json(bill: Bill) -> dict[str, Any]:
    return {
        "node_id": bill.node_id,
        "compute_fee": str(bill.compute_fee),
        "platform_fee": str(bill.platform_fee),
        "transit": [
            {"operator": a, "fee": str(f)} for a, f in zip(bill.transit_operators, bill.transit_fees, strict=True)
        ],
        "total": str(bill.total),
    }
