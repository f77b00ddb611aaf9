"""Read-only views the web app needs: an account's balances, a provider's nodes and earnings, the
operators' view (stage, members, votes, transit revenue, link load) and the market's history.

Everything comes from the indexed tables and, where the index has no projection of it (balances and
stake, the federation's stage, fee, epoch and proposals), from the chain through the typed gateway.
Wei amounts are decimal strings."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from web3 import Web3

from suanwang.api.deps import GatewayDep, RuntimeDep, SessionDep
from suanwang.api.schemas import ADDRESS_PATTERN, MemberOut, NodeOut
from suanwang.errors import NotFoundError
from suanwang.fees import price_of
from suanwang.live_events import event_payload
from suanwang.roles import Role
from suanwang.runtime import Runtime
from suanwang.states import DealStatus, RoleName, role_names_of
from suanwang.storage.models import Event
from suanwang.storage.read_models import ReadModels
from suanwang.storage.repositories import Repositories

router = APIRouter(prefix="/api/views", tags=["views"])

AddressPath = Annotated[str, Path(pattern=ADDRESS_PATTERN, description="an account address (0x + 40 hex digits)")]


def _deal_fields(deal: dict[str, Any]) -> dict[str, Any]:
    """The Deal struct whether the event nests it (`deal`) or carries its fields flat."""
    inner = deal.get("deal")
    return inner if isinstance(inner, dict) else deal


def _mcu(deal: dict[str, Any]) -> tuple[int, int, int]:
    d = _deal_fields(deal)
    return int(d.get("logicMcu", 0)), int(d.get("parallelMcu", 0)), int(d.get("neuralMcu", 0))


# -- balances ---------------------------------------------------------------------------------------


class BalancesOut(BaseModel):
    address: str
    token: str = Field(description="settlement tokens in the wallet")
    allowance: str = Field(description="tokens the Market may pull from the wallet")
    escrow: str = Field(description="free balance held by the Market (withdrawable)")
    stake: str = Field(description="unlocked stake: what backs new deals (open deals lock their compute fee of it)")
    required_stake: str = Field(description="stake its registered nodes require (sum of tier minimums)")
    unstaking: str = Field("0", description="stake requested back, claimable from unstake_ready_at")
    unstake_ready_at: int = Field(0, description="unix time from which the unstaking amount can be claimed")
    roles: int = Field(description="role bits, as indexed (0 for an account that is not a member)")
    role_names: list[RoleName]


@router.get("/balances/{address}", response_model=BalancesOut, summary="An account's token, escrow and stake")
def balances(address: AddressPath, chain: GatewayDep, session: SessionDep) -> BalancesOut:
    account = Web3.to_checksum_address(address)
    member = ReadModels(session).members.by_address(account)
    roles = member.roles if member is not None and member.active else 0
    # Balances, stake and allowance from the chain: the index keeps no projection of token or escrow
    # balances (it would have to follow every Transfer of the token).
    unstaking = chain.market.unstaking_of(account)
    return BalancesOut(
        address=account,
        token=str(chain.token.balance_of(account)),
        allowance=str(chain.token.allowance(account, chain.market.address)),
        escrow=str(chain.market.balance_of(account)),
        stake=str(chain.market.stake_of(account)),
        required_stake=str(chain.market.required_stake_of(account)),
        unstaking=str(unstaking.amount),
        unstake_ready_at=unstaking.ready_at,
        roles=roles,
        role_names=role_names_of(roles),
    )


# -- provider ---------------------------------------------------------------------------------------


class ProviderNodeOut(BaseModel):
    node: NodeOut
    reserved_mcu: int = Field(description="mCU held by live deals (proposed, accepted, started)")
    capacity_mcu: int
    utilisation: float = Field(description="reserved / capacity, 0 to 1")
    live_deals: int
    settled_deals: int
    earned: str = Field(description="compute fees settled to this node")


class ProviderDealOut(BaseModel):
    id: str
    node_id: int
    status: DealStatus
    compute_fee: str
    result_cid: str | None
    matched_block: int


class NotChosenOut(BaseModel):
    order_id: str
    buyer: str
    access_point: str
    reason: str | None
    explanation: list[str]


class ProviderOut(BaseModel):
    address: str
    nodes: list[ProviderNodeOut]
    earnings: str = Field(description="sum of settled compute fees")
    deals: list[ProviderDealOut]
    not_chosen: list[NotChosenOut] = Field(description="recent orders no node of the market took, and why")


@router.get("/providers/{address}", response_model=ProviderOut, summary="A seller's nodes, load, earnings")
def provider(
    address: AddressPath,
    session: SessionDep,
    recent: Annotated[int, Query(ge=1, le=200, description="how many recent unmatched orders to explain")] = 10,
) -> ProviderOut:
    reads = ReadModels(session)
    nodes = reads.nodes.owned_by(address)
    deals = reads.deals.of_seller(address)
    settlements = reads.settlements.by_deal([d.id for d in deals])
    per_node: dict[int, dict[str, int]] = defaultdict(lambda: {"reserved": 0, "live": 0, "settled": 0, "earned": 0})
    for deal in deals:
        stats = per_node[deal.node_id]
        if DealStatus(deal.status).holds_capacity:
            stats["reserved"] += sum(_mcu(deal.deal))
            stats["live"] += 1
        s = settlements.get(deal.id)
        if s is not None and s.outcome == "settled":
            stats["settled"] += 1
            stats["earned"] += int(s.compute_fee)
    out_nodes = []
    for n in nodes:
        stats = per_node[n.node_id]
        capacity = n.logic_mcu + n.parallel_mcu + n.neural_mcu
        out_nodes.append(
            ProviderNodeOut(
                node=NodeOut.model_validate(n, from_attributes=True),
                reserved_mcu=stats["reserved"],
                capacity_mcu=capacity,
                utilisation=min(1.0, stats["reserved"] / capacity) if capacity else 0.0,
                live_deals=stats["live"],
                settled_deals=stats["settled"],
                earned=str(stats["earned"]),
            )
        )
    unmatched = reads.orders.latest_unmatched(recent)
    return ProviderOut(
        address=Web3.to_checksum_address(address),
        nodes=out_nodes,
        earnings=str(sum(s["earned"] for s in per_node.values())),
        deals=[
            ProviderDealOut(
                id=d.id,
                node_id=d.node_id,
                status=DealStatus(d.status),
                compute_fee=str(int(_deal_fields(d.deal).get("computeFee", 0))),
                result_cid=d.result_cid,
                matched_block=d.matched_block,
            )
            for d in deals[:50]
        ],
        not_chosen=[
            NotChosenOut(
                order_id=r.id,
                buyer=r.buyer,
                access_point=r.access_point,
                reason=r.reason,
                explanation=list(r.explanation or ([r.reason] if r.reason else [])),
            )
            for r in unmatched
        ],
    )


# -- operators ----------------------------------------------------------------------------------------


class ProposalOut(BaseModel):
    id: int
    account: str
    name: str
    admit: bool = Field(description="true: admit as operator; false: remove")
    roles: int
    role_names: list[RoleName]
    yes: int
    needed: int
    deadline: int
    executed: bool
    open: bool = Field(description="not executed and before its deadline")
    voters: list[str] = Field(description="operators that voted yes (as indexed)")


class TransitRevenueOut(BaseModel):
    operator: str
    name: str | None
    earned: str = Field(description="transit fees of settled deals")
    deals: int


class TransitTariffOut(BaseModel):
    operator: str
    name: str | None
    per_gbps_hour: str = Field(
        description="the tariff it published on chain (Market.setTransitTariff, as indexed), token base units per "
        "Gbps-hour; bills charge exactly it x the order's bandwidth x hours"
    )


class OperatorLoadOut(BaseModel):
    operator: str = Field(description="topology operator (network domain)")
    links: int
    capacity_gbps: float
    used_gbps: float
    utilisation: float


class OperatorViewOut(BaseModel):
    stage: int
    founder: str
    platform_fee_bps: int
    epoch: int = Field(description="the value epoch signed orders must name (Federation.epoch)")
    operator_count: int
    chain_time: int
    members: list[MemberOut]
    proposals: list[ProposalOut]
    transit_revenue: list[TransitRevenueOut]
    platform_fees: str = Field(description="platform fees of settled deals")
    transit_tariffs: list[TransitTariffOut] = Field(description="each operator's published transit tariff")
    network_load: list[OperatorLoadOut]


@router.get("/operators", response_model=OperatorViewOut, summary="Stage, members, votes, transit revenue")
def operators(runtime: RuntimeDep, chain: GatewayDep, session: SessionDep) -> OperatorViewOut:
    reads = ReadModels(session)
    members = reads.members.in_joining_order()
    names = {m.address.lower(): m.name for m in members}
    operator_addresses = [m.address for m in members if m.active and m.roles & Role.OPERATOR]
    chain_time = chain.head_time()
    voters: dict[int, list[str]] = defaultdict(list)
    for vote in reads.events.named(["OperatorVoted"]):
        voters[int(vote.args["proposalId"])].append(vote.args["voter"])
    proposals = []
    # Proposals from the chain: the index keeps their votes (OperatorVoted) but not all of their fields.
    for p in map(chain.federation.proposal, range(chain.federation.proposal_count())):
        proposals.append(
            ProposalOut(
                id=p.id,
                account=p.account,
                name=p.name or names.get(p.account.lower(), ""),
                admit=p.admit,
                roles=p.roles,
                role_names=role_names_of(p.roles),
                yes=p.yes,
                needed=p.needed,
                deadline=p.deadline,
                executed=p.executed,
                open=p.open_at(chain_time),
                voters=voters[p.id],
            )
        )
    revenue: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    platform = 0
    for deal, settlement in reads.deals.with_settlement():
        if settlement.outcome != "settled":
            continue
        platform += int(settlement.platform_fee)
        fields = _deal_fields(deal.deal)
        for op, fee in zip(fields.get("transitOperators", []), fields.get("transitFees", []), strict=False):
            revenue[op][0] += int(fee)
            revenue[op][1] += 1
    tariffs = reads.tariffs.per_operator()
    load: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    network = runtime.marketplace().network
    free = network.free_gbps()
    for link in network.links:
        entry = load[link.operator or "peering"]
        entry[0] += 1
        entry[1] += link.capacity_gbps
        entry[2] += link.capacity_gbps - float(free[link.index])
    # The stage, founder, fee and epoch from the chain: the index has no projection of them.
    return OperatorViewOut(
        stage=chain.federation.stage(),
        founder=chain.federation.founder(),
        platform_fee_bps=chain.federation.platform_fee_bps(),
        epoch=chain.federation.epoch(),
        operator_count=len(operator_addresses),
        chain_time=chain_time,
        members=[MemberOut.of(m) for m in members],
        proposals=proposals,
        transit_revenue=[
            TransitRevenueOut(operator=op, name=names.get(op.lower()), earned=str(v[0]), deals=v[1])
            for op, v in sorted(revenue.items(), key=lambda kv: -kv[1][0])
        ],
        platform_fees=str(platform),
        transit_tariffs=[
            TransitTariffOut(operator=op, name=names.get(op.lower()), per_gbps_hour=tariffs.get(op.lower(), "0"))
            for op in operator_addresses
        ],
        network_load=[
            OperatorLoadOut(
                operator=op,
                links=int(v[0]),
                capacity_gbps=v[1],
                used_gbps=v[2],
                utilisation=v[2] / v[1] if v[1] else 0.0,
            )
            for op, v in sorted(load.items())
        ],
    )


# -- market history -------------------------------------------------------------------------------------


class MarketPointOut(BaseModel):
    event_id: int
    block: int
    time: int = Field(description="block timestamp, unix seconds")
    kind: str = Field(description="the event that moved the market: Matched, DealStatusChanged, NodeRegistered...")
    price_per_cu_hour: str | None = Field(description="the matched deal's effective compute price (Matched only)")
    reserved_mcu: int
    capacity_mcu: int
    utilisation: float


class MarketHistoryOut(BaseModel):
    points: list[MarketPointOut]
    matched: int
    settled: int
    volume: str = Field(description="compute fees of every match so far")


_TIMESTAMPS: dict[tuple[str, int], int] = {}
_TIMESTAMPS_LOCK = threading.Lock()


def _block_time(runtime: Runtime, block: int) -> int:
    key = (runtime.settings.rpc_url, block)
    with _TIMESTAMPS_LOCK:
        if key in _TIMESTAMPS:
            return _TIMESTAMPS[key]
    stamp = int(runtime.w3.eth.get_block(block)["timestamp"])
    with _TIMESTAMPS_LOCK:
        if len(_TIMESTAMPS) > 100_000:
            _TIMESTAMPS.clear()
        _TIMESTAMPS[key] = stamp
    return stamp


# Completed and Settled move a deal's status too (the market emits no DealStatusChanged for them).
HISTORY_EVENTS = (
    "Matched",
    "DealStatusChanged",
    "Completed",
    "Settled",
    "NodeRegistered",
    "NodeUpdated",
    "NodeRetired",
    "NodePauseChanged",
)
STATUS_OF_EVENT = {"Completed": DealStatus.COMPLETED, "Settled": DealStatus.SETTLED}


@router.get("/market", response_model=MarketHistoryOut, summary="Price and utilisation over time")
def market_history(
    runtime: RuntimeDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=2000, description="at most this many of the latest points")] = 200,
) -> MarketHistoryOut:
    reads = ReadModels(session)
    events = reads.events.named(HISTORY_EVENTS)
    deals = reads.deals.fields_by_id()
    capacity: dict[int, int] = {}  # node id -> mCU while active
    spec_capacity: dict[int, int] = {}
    live: dict[str, int] = {}  # deal id -> mCU held
    points: list[tuple[Event, str | None, int, int]] = []
    matched = settled = volume = 0
    for event in events:
        args = event.args
        price: str | None = None
        if event.name in ("NodeRegistered", "NodeUpdated"):
            spec = args["spec"]
            total = int(spec["logicMcu"]) + int(spec["parallelMcu"]) + int(spec["neuralMcu"])
            node_id = int(args["nodeId"])
            spec_capacity[node_id] = total
            if event.name == "NodeRegistered" or node_id in capacity:
                capacity[node_id] = total
        elif event.name == "NodeRetired" or event.name == "NodePauseChanged":
            node_id = int(args["nodeId"])
            if event.name == "NodePauseChanged" and not args["paused"]:
                capacity[node_id] = spec_capacity.get(node_id, 0)
            else:
                capacity.pop(node_id, None)
        elif event.name == "Matched":
            fields = _deal_fields(deals.get(args["id"], args))
            mcu = sum(_mcu(fields))
            fee, duration = int(fields.get("computeFee", 0)), int(fields.get("duration", 0))
            live[args["id"]] = mcu
            matched += 1
            volume += fee
            if mcu and duration:
                price = str(price_of(fee, mcu, duration))
        elif event.name in ("DealStatusChanged", "Completed", "Settled"):
            status = STATUS_OF_EVENT.get(event.name) or DealStatus.of(int(args["status"]))
            if not status.holds_capacity:
                live.pop(args["id"], None)
            if status == DealStatus.SETTLED:
                settled += 1
        points.append((event, price, sum(live.values()), sum(capacity.values())))
    return MarketHistoryOut(
        points=[
            MarketPointOut(
                event_id=e.id,
                block=e.block_number,
                time=_block_time(runtime, e.block_number),
                kind=e.name,
                price_per_cu_hour=price,
                reserved_mcu=reserved,
                capacity_mcu=cap,
                utilisation=min(1.0, reserved / cap) if cap else 0.0,
            )
            for e, price, reserved, cap in points[-limit:]
        ],
        matched=matched,
        settled=settled,
        volume=str(volume),
    )


# -- deals and the event log ------------------------------------------------------------------------------


class DealStructOut(BaseModel):
    id: str
    status: DealStatus
    buyer: str
    seller: str
    struct: dict[str, Any] = Field(description="the deal's fields by name, unpacked from its Matched event")
    packed: str = Field(
        description="the deal's Matched bytes (0x-hex): every Market lifecycle call takes (id, packed), e.g. accept"
    )


@router.get(
    "/deals/{deal_id}",
    response_model=DealStructOut,
    summary="A deal's fields and its packed bytes (to pass back to the Market)",
    responses={404: {"description": "no such deal"}},
)
def deal_struct(deal_id: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")], session: SessionDep) -> DealStructOut:
    deal = Repositories(session).deals.get(deal_id.lower())
    if deal is None:
        raise NotFoundError(f"no deal {deal_id} is indexed", field="deal_id")
    fields = dict(_deal_fields(deal.deal))
    fields.setdefault("id", deal.id)
    packed = str(fields.pop("packed", ""))
    return DealStructOut(
        id=deal.id,
        status=DealStatus(deal.status),
        buyer=deal.buyer,
        seller=deal.seller,
        struct={k: _decimal_strings(v) for k, v in fields.items()},
        packed=packed,
    )


def _decimal_strings(value: Any) -> Any:
    """Integers (wei amounts beyond JavaScript's 2^53 among them) as decimal strings, in lists too."""
    if isinstance(value, list):
        return [_decimal_strings(v) for v in value]
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class EventOut(BaseModel):
    id: int
    name: str
    contract: str
    block_number: int
    tx_hash: str
    args: dict[str, Any]


@router.get(
    "/events",
    response_model=list[EventOut],
    summary="The latest chain events, newest first (a match with its deal's fields)",
)
def recent_events(
    session: SessionDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    names: Annotated[str | None, Query(max_length=1000, pattern=r"^[A-Za-z,]*$")] = None,
) -> list[EventOut]:
    wanted = [n for n in (names or "").split(",") if n]
    out = [event_payload(e, runtime.bus.wide) for e in ReadModels(session).events.latest(limit, wanted)]
    deals = Repositories(session).deals
    for payload in out:
        if payload["name"] == "Matched":  # the event packs the deal; the projection has it by field
            deal = deals.get(payload["args"]["id"])
            if deal is not None:
                fields = {k: _decimal_strings(v) for k, v in _deal_fields(deal.deal).items() if k != "packed"}
                payload["args"] = {**fields, **{k: v for k, v in payload["args"].items() if k != "deal"}}
    return [EventOut.model_validate(p) for p in out]
