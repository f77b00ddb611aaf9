"""The marketplace's configuration (marketplace.yaml) turned into a network, a routing function for the
engine, and the mapping from topology operators to the chain accounts paid for transit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from suanwang.chain.deployment import Deployment
from suanwang.errors import ConfigurationError, InfeasibleError, InputError
from suanwang.network.config import load_peering_file
from suanwang.network.model import Network

DEFAULT_MARKETPLACE = Path(__file__).with_name("marketplace.yaml")


@dataclass(frozen=True)
class Marketplace:
    network: Network
    transit_accounts: dict[str, str]  # topology operator -> chain address
    lease_bandwidth_gbps: float
    router_by_id: dict[str, int]  # "0x<keccak256("<operator>/<label>")>" -> router index

    def transit_payees(self, path_operators: Sequence[str], prices: Mapping[str, int], node_operator: str) -> list[str]:
        """The accounts a bill pays transit, in path order, each once: the account of every topology operator
        the path crosses (one whose network price is 0 carries it unpaid and may have none), then the node's
        own network operator (NodeSpec.operator), which the market requires on every bill."""
        payees: list[str] = []
        for operator in path_operators:
            address = self.transit_accounts.get(operator)
            if address is None:
                if prices.get(operator, 0) == 0:
                    continue
                raise InfeasibleError(
                    f"the path crosses {operator}, which has no account to be paid transit "
                    "(marketplace.yaml transit_accounts)",
                    field="access_point",
                )
            if address.lower() not in {p.lower() for p in payees}:
                payees.append(address)
        if node_operator.lower() not in {p.lower() for p in payees}:
            payees.append(node_operator)
        return payees


def load_marketplace(path: Path, deployment: Deployment) -> Marketplace:
    """The service's marketplace file and the network it names. A mistake in either is the operator's,
    not a client's: it is raised as a ConfigurationError (the API answers 503 naming the file)."""
    try:
        return _load_marketplace(path, deployment)
    except InputError as exc:
        raise ConfigurationError(f"the service's marketplace configuration is wrong: {exc.message}") from None


def _load_marketplace(path: Path, deployment: Deployment) -> Marketplace:
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())  # YAML errors span lines
        raise InputError(f"{path}: cannot read the marketplace configuration ({reason})", field="marketplace") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("transit_accounts") or {}, dict):
        raise InputError(
            f"{path}: expected a mapping with `network`, `transit_accounts` (a mapping) and `lease_bandwidth_gbps`",
            field="marketplace",
        )
    lease = raw.get("lease_bandwidth_gbps", 0.01)
    if isinstance(lease, bool) or not isinstance(lease, int | float) or not lease > 0:
        raise InputError(f"{path}: lease_bandwidth_gbps is {lease!r}, expected a positive number", field="marketplace")
    network_file = raw.get("network")
    if not isinstance(network_file, str):
        raise InputError(f"{path}: `network` must name a network file (peering format)", field="network")
    network = load_peering_file(path.parent / network_file)
    by_name = {a.name: a.address for a in deployment.accounts}
    transit_accounts = {}
    for operator, account in (raw.get("transit_accounts") or {}).items():
        if account not in by_name:
            raise InputError(
                f"{path}: transit_accounts.{operator} names {account!r}, which the deployment "
                f"does not have; it has {', '.join(sorted(by_name))}",
                field=f"transit_accounts.{operator}",
            )
        transit_accounts[str(operator)] = by_name[account]
    return Marketplace(
        network=network,
        transit_accounts=transit_accounts,
        lease_bandwidth_gbps=float(lease),
        router_by_id={"0x" + r.router_id.hex(): r.index for r in network.routers},
    )


class RoutedCost:
    """The engine's routing function over the network: latency of the shortest path from an access
    point, and the free bandwidth at its bottleneck (computed for the routers asked about)."""

    def __init__(self, network: Network) -> None:
        self.network = network

    def latency_ms(self, access_point: int, routers: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        return np.asarray(self.network.latency_from(access_point)[routers], dtype=np.float64)

    def bandwidth_gbps(self, access_point: int, routers: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        latency = self.network.latency_from(access_point)
        out = np.zeros(len(routers), dtype=np.float64)
        for i, router in enumerate(routers.tolist()):
            if router == access_point:
                out[i] = np.inf
            elif np.isfinite(latency[router]):
                out[i] = self.network.path(access_point, router, srv6=False).bandwidth_gbps
        return out
