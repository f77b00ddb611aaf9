"""CFN / CATS service routing: flooding convergence, the service table, instance choice, flow affinity."""

from __future__ import annotations

import networkx as nx
import pytest

from suanwang.errors import NotFoundError
from suanwang.network.cfn import CfnDomain


@pytest.fixture
def domain(networks):
    d = CfnDomain(networks["Cogentco"])
    d.register("svc:infer", "fd20::1", "Chicago", 0.2)
    d.register("svc:infer", "fd20::2", "London", 0.1)
    d.register("svc:infer", "fd20::3", "New York", 0.5)
    d.register("svc:db", "fd20::9", "Paris", 0.3)
    d.converge()
    return d


def test_every_router_learns_every_instance(domain):
    assert domain.consistent()
    for ingress in ["Boston", "Madrid", "Seattle"]:
        table = domain.table(ingress)
        assert {i.address for i, _ in table["svc:infer"]} == {"fd20::1", "fd20::2", "fd20::3"}


def test_one_update_costs_one_flood(domain, networks):
    net = networks["Cogentco"]
    domain.update_load("fd20::1", 0.7)
    conv = domain.converge()
    # Each router relays once to every neighbour but the sender: 2|E| - (n - 1) on a connected graph.
    assert conv.messages == 2 * len(net.links) - (len(net.routers) - 1)
    chicago = net.router_index("Chicago")
    # Flooding moves one hop per round: it takes the origin's eccentricity in hops.
    g = nx.Graph((ln.a, ln.b) for ln in net.links)
    assert conv.rounds == nx.eccentricity(g, chicago)
    assert domain.consistent()


def test_ingress_picks_by_network_and_compute_together(domain, networks):
    net = networks["Cogentco"]
    choice = domain.select("Boston", "svc:infer")
    lat = net.latency_from("Boston")
    totals = {i.address: 2 * lat[i.site] + i.compute_delay_ms() for i, _ in domain.table("Boston")["svc:infer"]}
    assert choice.instance.address == min(totals, key=totals.get)
    # Load the nearby instance heavily: the choice moves elsewhere once the news has spread.
    domain.update_load(choice.instance.address, 0.99)
    domain.converge()
    assert domain.select("Boston", "svc:infer").instance.address != choice.instance.address


def test_a_flow_stays_with_its_instance_until_withdrawn(domain):
    first = domain.select("Boston", "svc:infer", flow_id="flow-1")
    domain.update_load(first.instance.address, 0.99)
    domain.converge()
    again = domain.select("Boston", "svc:infer", flow_id="flow-1")
    assert again.sticky and again.instance.address == first.instance.address
    domain.withdraw(first.instance.address)
    domain.converge()
    moved = domain.select("Boston", "svc:infer", flow_id="flow-1")
    assert not moved.sticky and moved.instance.address != first.instance.address


def test_unknown_service_lists_known_ones(domain):
    with pytest.raises(NotFoundError, match="svc:db, svc:infer"):
        domain.select("Boston", "svc:video")
