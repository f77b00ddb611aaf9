import brownie
from conftest import BUYER, CLOUD, MIN_STAKE, PROVIDER, err, make_spec, plain


def test_cloud_team_registers_node(registry, cloud_team, spec):
    tx = registry.registerNode(spec, {"from": cloud_team})
    assert tx.return_value == 1
    ev = tx.events["NodeRegistered"]
    assert ev["nodeId"] == 1 and ev["owner"] == cloud_team
    assert tuple(ev["spec"]) == spec
    got_spec, owner, status = registry.getNode(1)
    assert tuple(got_spec) == spec and owner == cloud_team and status == 1
    assert registry.nodeCount() == 1
    assert registry.requiredStake(cloud_team) == MIN_STAKE[1]


def test_owner_updates_node(registry, cloud_team, spec, founder):
    registry.registerNode(spec, {"from": cloud_team})
    new = make_spec(founder.address, logic=9000, tier=2, price=5)
    tx = registry.updateNode(1, new, {"from": cloud_team})
    assert tuple(tx.events["NodeUpdated"]["spec"]) == new
    assert tuple(registry.getNode(1)[0]) == new
    assert registry.requiredStake(cloud_team) == MIN_STAKE[2]


def test_owner_pauses_resumes_and_retires(registry, cloud_team, spec):
    registry.registerNode(spec, {"from": cloud_team})
    tx = registry.setPaused(1, True, {"from": cloud_team})
    assert plain(tx.events["NodePauseChanged"].values()) == plain((1, True))
    assert registry.getNode(1)[2] == 2
    with brownie.reverts(err("InvalidNodeStatus", 1, 2)):
        registry.setPaused(1, True, {"from": cloud_team})
    registry.setPaused(1, False, {"from": cloud_team})
    assert registry.getNode(1)[2] == 1
    tx = registry.retireNode(1, {"from": cloud_team})
    assert tx.events["NodeRetired"]["nodeId"] == 1
    assert registry.getNode(1)[2] == 3
    assert registry.requiredStake(cloud_team) == 0
    with brownie.reverts(err("InvalidNodeStatus", 1, 3)):
        registry.retireNode(1, {"from": cloud_team})
    with brownie.reverts(err("InvalidNodeStatus", 1, 3)):
        registry.updateNode(1, registry.getNode(1)[0], {"from": cloud_team})
    with brownie.reverts(err("InvalidNodeStatus", 1, 3)):
        registry.setPaused(1, False, {"from": cloud_team})


def test_zero_capacity_rejected(registry, cloud_team, founder):
    with brownie.reverts(err("ZeroCapacity")):
        registry.registerNode(make_spec(founder.address, logic=0, parallel=0, neural=0), {"from": cloud_team})


def test_bad_tier_gpu_locator_and_price_rejected(registry, cloud_team, founder):
    with brownie.reverts(err("InvalidTier", 4)):
        registry.registerNode(make_spec(founder.address, tier=4), {"from": cloud_team})
    with brownie.reverts(err("InvalidGpu", 0, 2)):
        registry.registerNode(make_spec(founder.address, gpu_model=0, gpu_count=2), {"from": cloud_team})
    with brownie.reverts(err("InvalidLocatorLength", 0)):
        registry.registerNode(make_spec(founder.address, locator_length=0), {"from": cloud_team})
    with brownie.reverts(err("InvalidLocatorLength", 129)):
        registry.registerNode(make_spec(founder.address, locator_length=129), {"from": cloud_team})
    with brownie.reverts(err("PriceTooHigh", 2**96, 2**96 - 1)):
        registry.registerNode(make_spec(founder.address, price=2**96), {"from": cloud_team})


def test_attachment_operator_must_be_operator(registry, cloud_team, buyer):
    with brownie.reverts(err("NotAnOperator", buyer.address)):
        registry.registerNode(make_spec(buyer.address), {"from": cloud_team})


def test_non_member_cannot_register(registry, outsider, spec):
    with brownie.reverts(err("NotSeller", outsider.address, 0, 1)):
        registry.registerNode(spec, {"from": outsider})


def test_buyer_cannot_register_in_stage_one(registry, buyer, spec):
    with brownie.reverts(err("NotSeller", buyer.address, BUYER, 1)):
        registry.registerNode(spec, {"from": buyer})


def test_provider_registers_only_in_stage_three(registry, federation, founder, accounts, spec):
    federation.advanceStage(2, {"from": founder})
    federation.advanceStage(3, {"from": founder})
    federation.admit(accounts[6], PROVIDER, "idle servers", {"from": founder})
    registry.registerNode(spec, {"from": accounts[6]})
    assert registry.getNode(1)[1] == accounts[6]


def test_third_party_cloud_registers_in_stage_two(registry, federation, founder, accounts, spec):
    federation.advanceStage(2, {"from": founder})
    federation.admit(accounts[6], CLOUD, "Aliyun", {"from": founder})
    registry.registerNode(spec, {"from": accounts[6]})
    assert registry.getNode(1)[1] == accounts[6]


def test_someone_elses_node_rejected(registry, cloud_team, founder, spec):
    registry.registerNode(spec, {"from": cloud_team})
    with brownie.reverts(err("NotNodeOwner", 1, founder.address, cloud_team.address)):
        registry.updateNode(1, spec, {"from": founder})
    with brownie.reverts(err("NotNodeOwner", 1, founder.address, cloud_team.address)):
        registry.setPaused(1, True, {"from": founder})
    with brownie.reverts(err("NotNodeOwner", 1, founder.address, cloud_team.address)):
        registry.retireNode(1, {"from": founder})


def test_unknown_node_rejected(registry, cloud_team, spec):
    with brownie.reverts(err("UnknownNode", 7)):
        registry.updateNode(7, spec, {"from": cloud_team})
    with brownie.reverts(err("UnknownNode", 7)):
        registry.getNode(7)


def test_founder_wires_the_market_once_and_only_the_registry_pushes_nodes(registry, founder, cloud_team, spec,
                                                                         Market, federation, token):
    from deploy import TERMS

    registry.registerNode(spec, {"from": cloud_team})
    m = Market.deploy(federation, registry, token, TERMS, {"from": founder})
    with brownie.reverts(err("NotFounder", cloud_team.address)):
        registry.setMarket(m, {"from": cloud_team})
    # Node 1's network operator has no seat in a market the Federation has not pushed its members to yet:
    # the push is refused rather than leave a node no bill could match.
    with brownie.reverts(err("NotSeatedOperator", founder.address, 0)):
        registry.setMarket(m, {"from": founder})
    federation.setMarket(m, {"from": founder})
    registry.setMarket(m, {"from": founder})  # pushes node 1 registered before
    with brownie.reverts(err("MarketAlreadySet", m.address)):
        registry.setMarket(cloud_team, {"from": founder})
    with brownie.reverts(err("NotRegistry", founder.address)):
        m.syncNodeStatus(1, 1, {"from": founder})
    with brownie.reverts(err("NotRegistry", founder.address)):
        m.syncRequiredStake(founder, 0, {"from": founder})
    with brownie.reverts(err("NotFederation", founder.address)):
        m.syncRoles(founder, 63, {"from": founder})
    with brownie.reverts(err("NotFederation", founder.address)):
        m.syncParams(3, 0, 1, {"from": founder})
    assert m.requiredStakeOf(cloud_team) == MIN_STAKE[1]
    assert plain(registry.reservedOf(1)) == (0, 0, 0)


def test_capacity_too_large_rejected(registry, cloud_team, founder):
    with brownie.reverts(err("CapacityTooLarge", 1, 2**48, 2**48 - 1)):
        registry.registerNode(make_spec(founder.address, parallel=2**48), {"from": cloud_team})


def test_cloud_role_holder_removed_cannot_register(registry, federation, founder, cloud_team, spec):
    federation.setRoles(cloud_team, BUYER, {"from": founder})
    with brownie.reverts(err("NotSeller", cloud_team.address, BUYER, 1)):
        registry.registerNode(spec, {"from": cloud_team})
    assert CLOUD & federation.rolesOf(cloud_team) == 0
