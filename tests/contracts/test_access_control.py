"""Access control: every state-changing function x every role x every stage (issue 9).

Each row of TABLE prepares, on the real Anvil chain, a call that succeeds for its intended callers and
names who they are; every other caller must revert with the named custom error and exactly its arguments
(compared byte for byte with the revert data). The state-changing functions come from the compiled ABIs:
one missing from the table fails test_every_state_changing_function_is_in_the_table, so a new function
cannot escape it. A cell is an eth_call from the caller's address against the state its row prepared: the
same EVM execution a transaction gets, and nothing is sent, so all callers of a row see the same state.
The batch match reports failures as events rather than reverts, so its cells are real transactions.

Roles are held by separate accounts (conftest's accounts, regranted below): the founder (governance and
the permanent operator), an operator (the network team), the cloud team (owner of the node, the seller of
every deal here), a second cloud, a provider (admissible from stage 3 only), the buyer of every deal here, a
second buyer, a matcher, an arbiter and an outsider with no role; the market's sync functions are also
called from the Federation's and the registry's addresses. `SUANWANG_RECORD_RELIABILITY=1` (set by
`make reliability-contracts`) records the cell counts in bench/results/reliability.json.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from brownie import web3
from conftest import (
    ARBITER,
    BUYER,
    CLOUD,
    DISPUTE_WINDOW,
    MATCHER,
    MIN_STAKE,
    NODE_PRICE,
    OPERATOR,
    PROVIDER,
    SPARE_STAKE,
    START_WINDOW,
    TERMS,
    UNSTAKE_DELAY,
    deal_arg,
    deal_of,
    entry,
    key_of,
    make_bill,
    make_order,
    make_spec,
    packed_bill,
    sign_order,
    transit_for,
)
from deploy import ORDER_FIELDS
from revert_data import describe, encode_error, error_types, eth_call

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.support.report import record

ZERO = "0x" + "00" * 20
ZERO_ID = "0x" + "00" * 32
CID = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
STAGES = (1, 2, 3)
ACCOUNT_OF = {"founder": 0, "cloud": 1, "operator": 2, "buyer": 3, "cloud2": 4, "matcher": 5, "provider": 6,
              "buyer2": 7, "arbiter": 8, "outsider": 9}
ROLES_OF = {"founder": OPERATOR, "operator": OPERATOR, "cloud": CLOUD, "cloud2": CLOUD, "provider": PROVIDER,
            "buyer": BUYER, "buyer2": BUYER, "matcher": MATCHER, "arbiter": ARBITER, "outsider": 0}
PEOPLE = tuple(ACCOUNT_OF)
CONTRACT_CALLERS = ("federation", "registry")
STATE_CHANGING = ("nonpayable", "payable")
EXPIRY = ORDER_FIELDS.index("expiry")
DEFAULTS = dict(zip(ORDER_FIELDS, make_order(ZERO, expiry=0), strict=True))  # the world's orders' terms
SLA_BOUND_US = 1000 * DEFAULTS["maxLatencyMs"]  # their latency bound, in the microseconds reports carry


def callers_at(stage: int, row: Row) -> tuple[str, ...]:
    """A provider can only exist from stage 3 (test_no_provider_before_stage_three), so its cells start there."""
    people = PEOPLE if stage >= 3 else tuple(p for p in PEOPLE if p != "provider")
    return people + (CONTRACT_CALLERS if row.contract_callers else ())


# ------------------------------------------------------------------------------------ the world


@dataclass
class World:
    """The deployment every row starts from (stage 1), with one account per role."""

    federation: Any
    registry: Any
    market: Any
    token: Any
    node_id: int
    accounts: Any
    chain: Any
    containers: dict
    nonce: int = 0

    def acct(self, role: str):
        return self.accounts[ACCOUNT_OF[role]]

    def address(self, role: str) -> str:
        if role == "federation":
            return self.federation.address
        if role == "registry":
            return self.registry.address
        return self.acct(role).address

    def enter(self, stage: int) -> None:
        for s in range(2, stage + 1):
            self.federation.advanceStage(s, {"from": self.acct("founder")})
        if stage >= 3:
            self.federation.admit(self.acct("provider"), PROVIDER, "idle-GPU lab", {"from": self.acct("founder")})

    def order(self, buyer: str | None = None, **fields) -> tuple:
        self.nonce += 1
        fields.setdefault("expiry", self.now() + 86400)
        fields.setdefault("epoch", int(self.federation.epoch()))
        return make_order(buyer or self.address("buyer"), nonce=self.nonce, **fields)

    def signature(self, order: tuple) -> bytes:
        return sign_order(self.market, order, key_of(self.acct("buyer"), self.accounts))

    def bill(self, order: tuple) -> tuple:
        """The exact bill: transit through the node's network operator (the founder) and the network team."""
        transit = transit_for(self.market, order, self.address("founder"), self.address("operator"))
        return make_bill(order, self.node_id, NODE_PRICE, self.federation.platformFeeBps(), transit)

    def posted(self, **fields) -> tuple[tuple, int]:
        order = self.order(**fields)
        tx = self.market.postOrder(order, {"from": self.acct("buyer")})
        return order, int(tx.events["OrderPosted"]["locked"])

    def deal(self, status: str, auto_accept: bool = True) -> tuple:
        """A deal between the buyer and the cloud team, moved to `status` by its parties."""
        order = self.order(autoAccept=auto_accept)
        signed = entry(self.market, order, self.signature(order), self.bill(order))
        tx = self.market.matchSigned(signed, {"from": self.acct("matcher")})
        deal = deal_of(tx)
        seller, buyer = {"from": self.acct("cloud")}, {"from": self.acct("buyer")}
        steps = {
            "Started": lambda: self.market.start(*deal_arg(deal), seller),
            "Completed": lambda: self.market.complete(*deal_arg(deal), CID, seller),
            "Disputed": lambda: self.market.dispute(*deal_arg(deal), buyer),
        }
        for step in ("Started", "Completed", "Disputed"):
            if status in ("Proposed", "Accepted"):
                break
            steps[step]()
            if step == status:
                break
        return deal

    def deadline(self, deal: tuple) -> int:
        return int(self.market.statusOf(deal[0])[1])

    def now(self) -> int:
        """The chain's time: the latest block's (brownie's chain.time() can trail it after reverts)."""
        return int(web3.eth.get_block("latest")["timestamp"])

    def sleep(self, seconds: int) -> None:
        self.chain.sleep(seconds + 5)
        self.chain.mine()


@pytest.fixture(scope="module")
def world(federation, registry, market, token, node_id, accounts, chain, founder, Federation, NodeRegistry, Market,
          SettlementToken):
    fed = federation
    fed.setRoles(founder, OPERATOR, {"from": founder})  # conftest's founder also matches and arbitrates
    for role in ("cloud2", "matcher", "buyer2"):  # conftest admitted the arbiter
        fed.admit(accounts[ACCOUNT_OF[role]], ROLES_OF[role], role, {"from": founder})
    token.mint(accounts[ACCOUNT_OF["outsider"]], 1_000_000 * 10**18, {"from": founder})
    for role in PEOPLE:
        a = accounts[ACCOUNT_OF[role]]
        token.approve(market, 2**256 - 1, {"from": a})
        market.deposit(10 * 10**18, {"from": a})
        market.stake(10**18, {"from": a})  # a stake above what its nodes require: anyone may unstake 1
    cloud = accounts[ACCOUNT_OF["cloud"]]  # its node's minimum, and room for each deal's lock from stage 2
    market.deposit(MIN_STAKE[1] + SPARE_STAKE, {"from": cloud})
    market.stake(MIN_STAKE[1] + SPARE_STAKE, {"from": cloud})
    market.deposit(1_000 * 10**18, {"from": accounts[ACCOUNT_OF["buyer"]]})
    containers = {"Federation": Federation, "NodeRegistry": NodeRegistry, "Market": Market,
                  "SettlementToken": SettlementToken}
    return World(fed, registry, market, token, node_id, accounts, chain, containers)


# ------------------------------------------------------------------------------------ the table


@dataclass
class Cell:
    role: str
    caller: str
    stage: int
    values: dict

    @property
    def held(self) -> int:
        return ROLES_OF.get(self.role, 0)


@dataclass
class Prepared:
    """A call against the prepared state: `data` is calldata, or calldata built for each caller."""

    to: str
    data: str | Callable[[str], str]
    values: dict = field(default_factory=dict)

    def calldata(self, caller: str) -> str:
        return self.data(caller) if callable(self.data) else self.data


Expect = Callable[[Cell], "tuple | None"]


@dataclass
class Row:
    contract: str
    function: str
    case: str
    prepare: Callable[[World, int], Prepared]
    expect: Expect
    contract_callers: bool = False
    batch: bool = False

    @property
    def id(self) -> str:
        return f"{self.contract}.{self.function}[{self.case}]"


def only(allowed, refused: Callable[[Cell], tuple]) -> Expect:
    allowed = set(allowed)
    return lambda cell: None if cell.role in allowed else refused(cell)


def anyone(cell: Cell) -> None:
    return None


def missing_role(role: int) -> Callable[[Cell], tuple]:
    return lambda c: ("MissingRole", c.caller, role, c.held)


def not_governance(c):
    return ("NotGovernance", c.caller)


def unauthorized(expected_role: str) -> Callable[[Cell], tuple]:
    return lambda c: ("Unauthorized", c.values["id"], c.caller, c.values[expected_role])


def by_stage(early: Expect, stage3: Expect) -> Expect:
    return lambda c: stage3(c) if c.stage >= 3 else early(c)


FRESH = "0x" + "5e" * 20  # an account never admitted


def _fed(w, fn, *args):
    return Prepared(w.federation.address, getattr(w.federation, fn).encode_input(*args))


def _reg(w, fn, *args):
    return Prepared(w.registry.address, getattr(w.registry, fn).encode_input(*args))


def _mkt(w, fn, *args, **values):
    return Prepared(w.market.address, getattr(w.market, fn).encode_input(*args), values)


def _tok(w, fn, *args):
    return Prepared(w.token.address, getattr(w.token, fn).encode_input(*args))


def _fresh_federation(w: World, stage: int) -> Prepared:
    founder = {"from": w.acct("founder")}
    fed = w.containers["Federation"].deploy("another founder", 250, founder)
    for s in range(2, stage + 1):
        fed.advanceStage(s, founder)
    market = w.containers["Market"].deploy(fed, w.registry, w.token, TERMS, founder)
    return Prepared(fed.address, fed.setMarket.encode_input(market))


def _fresh_registry(w: World, stage: int) -> Prepared:
    registry = w.containers["NodeRegistry"].deploy(w.federation, MIN_STAKE, {"from": w.acct("founder")})
    return Prepared(registry.address, registry.setMarket.encode_input(w.market))


ADMISSIBLE = {1: BUYER, 2: CLOUD, 3: PROVIDER}  # a new member's roles the founder may grant at each stage


def _vote(w: World, stage: int) -> Prepared:
    if stage >= 3:
        w.federation.proposeOperator(FRESH, "new operator", {"from": w.acct("founder")})
    return _fed(w, "vote", 0)


def _spec(w):
    return make_spec(w.address("founder"), price=NODE_PRICE)


def _owned_node(fn: str, *args):
    def prepare(w: World, stage: int) -> Prepared:
        values = [_spec(w) if a == "spec" else a for a in args]
        call = _reg(w, fn, w.node_id, *values)
        call.values.update(node=w.node_id, owner=w.address("cloud"))
        return call

    return prepare


def _lifecycle(fn: str, status: str, *extra, auto_accept=True, after: int = 0, arbiters=False):
    def prepare(w: World, stage: int) -> Prepared:
        deal = w.deal(status, auto_accept)
        if arbiters:  # both parties are arbiters too: a party must still not rule on its own deal
            w.federation.setRoles(w.acct("buyer"), BUYER | ARBITER, {"from": w.acct("founder")})
            w.federation.setRoles(w.acct("cloud"), CLOUD | ARBITER, {"from": w.acct("founder")})
        if status == "Disputed":
            w.chain.mine(2)  # the deal's arbiter is drawn from the hash of the block after the dispute's
        if after:
            w.sleep(after)
        return _mkt(w, fn, *deal_arg(deal), *extra, id=deal[0], buyer=w.address("buyer"), seller=w.address("cloud"),
                    arbiter=w.address("arbiter"), deadline=w.deadline(deal))

    return prepare


def _match_signed(w, stage):
    order = w.order()
    return _mkt(w, "matchSigned", entry(w.market, order, w.signature(order), w.bill(order)))


def _match_posted(w, stage):
    order, locked = w.posted()
    return _mkt(w, "matchPosted", order, locked, packed_bill(w.market, w.bill(order)))


def _match_batch(w, stage):
    order = w.order()
    entries = entry(w.market, order, w.signature(order), w.bill(order))
    return _mkt(w, "matchSignedBatch", entries, entries=entries)


def _post_own(w, stage):
    return Prepared(w.market.address, lambda caller: w.market.postOrder.encode_input(w.order(buyer=caller)))


def _post_others(w, stage):
    return _mkt(w, "postOrder", w.order(), id=ZERO_ID, buyer=w.address("buyer"))


def _cancel_signed(w, stage):
    order = w.order()
    return _mkt(w, "cancelOrder", order, 0, id=w.market.orderId(order), buyer=w.address("buyer"))


def _cancel_posted(w, stage):
    order, locked = w.posted()
    return _mkt(w, "cancelOrder", order, locked, id=w.market.orderId(order), buyer=w.address("buyer"))


def _expire(after: bool):
    def prepare(w, stage):
        order, locked = w.posted(expiry=w.now() + 600)
        if after:
            w.sleep(600)
            assert w.now() > order[EXPIRY]
        return _mkt(w, "expireOrder", order, locked, id=w.market.orderId(order), expiry=order[EXPIRY])

    return prepare


def _permit(w: World, owner: str, spender: str, amount: int) -> tuple:
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    deadline = w.chain.time() + 3600
    owner_address = w.address(owner)
    typed = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"},
                             {"name": "verifyingContract", "type": "address"}],
            "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                       {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                       {"name": "deadline", "type": "uint256"}],
        },
        "primaryType": "Permit",
        "domain": {"name": w.token.name(), "version": "1", "chainId": w.chain.id,
                   "verifyingContract": w.token.address},
        "message": {"owner": owner_address, "spender": spender, "value": amount,
                    "nonce": int(w.token.nonces(owner_address)), "deadline": deadline},
    }
    signed = Account.sign_message(encode_typed_data(full_message=typed), key_of(w.acct(owner), w.accounts))
    r, s = signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")
    return owner_address, spender, amount, deadline, signed.v, r, s


def _deposit_with_permit(valid: bool):
    def prepare(w, stage):
        if valid:
            owner, _, *rest = _permit(w, "buyer", w.market.address, 5)
            args = (owner, *rest)
        else:  # a permit that fails: only the owner itself may go on with its allowance
            args = (w.address("buyer"), 5, w.chain.time() + 60, 27, b"\x00" * 32, b"\x00" * 32)
        return _mkt(w, "depositWithPermit", *args, buyer=w.address("buyer"))

    return prepare


def _claim_unstake(w, stage):
    w.market.requestUnstake(10**18, {"from": w.acct("buyer")})
    w.sleep(UNSTAKE_DELAY)
    return _mkt(w, "claimUnstake")


def _withdraw_fees(w, stage):
    if stage >= 2:  # fees accrue only when value moves
        deal = w.deal("Started")
        w.chain.sleep(DEFAULTS["duration"])  # the platform fee is prorated to the time used: use all of it
        w.market.complete(*deal_arg(deal), CID, {"from": w.acct("cloud")})
        w.market.settle(*deal_arg(deal), {"from": w.acct("buyer")})
    return _mkt(w, "withdrawFees")


def _transfer_from(w, stage):
    w.token.approve(w.acct("matcher"), 1, {"from": w.acct("buyer")})
    return Prepared(w.token.address, lambda caller: w.token.transferFrom.encode_input(w.address("buyer"), caller, 1))


SELLERS_EARLY = ("cloud", "cloud2")
SELLERS_STAGE3 = ("founder", "operator", "cloud", "cloud2", "provider")
OPERATORS = ("founder", "operator")

TABLE: list[Row] = [
    # ---- Federation: the founder governs; stage-3 operators vote
    Row("Federation", "setMarket", "once, on a fresh federation", _fresh_federation, only({"founder"}, not_governance)),
    Row("Federation", "admit", "a member the stage admits", lambda w, s: _fed(w, "admit", FRESH, ADMISSIBLE[s], "n"),
        only({"founder"}, not_governance)),
    Row("Federation", "setRoles", "second buyer becomes arbiter too",
        lambda w, s: _fed(w, "setRoles", w.address("buyer2"), BUYER | ARBITER), only({"founder"}, not_governance)),
    Row("Federation", "remove", "second buyer", lambda w, s: _fed(w, "remove", w.address("buyer2")),
        only({"founder"}, not_governance)),
    Row("Federation", "advanceStage", "to the next stage", lambda w, s: _fed(w, "advanceStage", s + 1),
        by_stage(only({"founder"}, not_governance),
                 lambda c: ("InvalidStageTransition", 3, 4) if c.role == "founder" else not_governance(c))),
    Row("Federation", "setPlatformFee", "300 bps", lambda w, s: _fed(w, "setPlatformFee", 300),
        only({"founder"}, not_governance)),
    Row("Federation", "proposeOperator", "a new operator",
        lambda w, s: _fed(w, "proposeOperator", FRESH, "n"),
        by_stage(lambda c: ("VotingNotOpen", c.stage), only(OPERATORS, missing_role(OPERATOR)))),
    Row("Federation", "proposeOperatorRemoval", "the network team",
        lambda w, s: _fed(w, "proposeOperatorRemoval", w.address("operator")),
        by_stage(lambda c: ("VotingNotOpen", c.stage), only(OPERATORS, missing_role(OPERATOR)))),
    Row("Federation", "vote", "on the founder's proposal (stage 3; none can exist before)", _vote,
        by_stage(lambda c: ("UnknownProposal", 0),
                 lambda c: ("AlreadyVoted", 0, c.caller) if c.role == "founder"
                 else only({"operator"}, missing_role(OPERATOR))(c))),
    # ---- NodeRegistry: sellers of the stage register; owners manage their nodes
    Row("NodeRegistry", "setMarket", "once, on a fresh registry", _fresh_registry,
        only({"founder"}, lambda c: ("NotFounder", c.caller))),
    Row("NodeRegistry", "registerNode", "a medium node", lambda w, s: _reg(w, "registerNode", _spec(w)),
        by_stage(only(SELLERS_EARLY, lambda c: ("NotSeller", c.caller, c.held, c.stage)),
                 only(SELLERS_STAGE3, lambda c: ("NotSeller", c.caller, c.held, c.stage)))),
    *[Row("NodeRegistry", fn, "the cloud team's node", _owned_node(fn, *args),
          only({"cloud"}, lambda c: ("NotNodeOwner", c.values["node"], c.caller, c.values["owner"])))
      for fn, args in (("updateNode", ("spec",)), ("setPaused", (True,)), ("retireNode", ()))],
    # ---- Market: state pushed by the Federation and the registry only
    Row("Market", "syncRoles", "outsider becomes buyer", lambda w, s: _mkt(w, "syncRoles", FRESH, BUYER),
        only({"federation"}, lambda c: ("NotFederation", c.caller)), contract_callers=True),
    Row("Market", "syncParams", "fee 300 bps", lambda w, s: _mkt(w, "syncParams", s, 300, 1),
        only({"federation"}, lambda c: ("NotFederation", c.caller)), contract_callers=True),
    Row("Market", "syncNode", "the node, unchanged",
        lambda w, s: _mkt(w, "syncNode", w.node_id, w.address("cloud"), _spec(w), 1),
        only({"registry"}, lambda c: ("NotRegistry", c.caller)), contract_callers=True),
    Row("Market", "syncNodeStatus", "paused", lambda w, s: _mkt(w, "syncNodeStatus", w.node_id, 2),
        only({"registry"}, lambda c: ("NotRegistry", c.caller)), contract_callers=True),
    Row("Market", "syncRequiredStake", "the cloud team's",
        lambda w, s: _mkt(w, "syncRequiredStake", w.address("cloud"), 1),
        only({"registry"}, lambda c: ("NotRegistry", c.caller)), contract_callers=True),
    # ---- Market: orders
    Row("Market", "postOrder", "the caller's own order", _post_own,
        only({"buyer", "buyer2"}, missing_role(BUYER))),
    Row("Market", "postOrder", "the buyer's order", _post_others, only({"buyer"}, unauthorized("buyer"))),
    Row("Market", "cancelOrder", "a signed order never submitted", _cancel_signed,
        only({"buyer"}, unauthorized("buyer"))),
    Row("Market", "cancelOrder", "a posted order", _cancel_posted, only({"buyer"}, unauthorized("buyer"))),
    Row("Market", "expireOrder", "before its expiry", _expire(after=False),
        lambda c: ("DeadlineNotReached", c.values["id"], c.values["expiry"])),
    Row("Market", "expireOrder", "after its expiry", _expire(after=True), anyone),
    Row("Market", "matchSigned", "a valid signed order and bill", _match_signed,
        only({"matcher"}, missing_role(MATCHER))),
    Row("Market", "matchPosted", "a posted order and a valid bill", _match_posted,
        only({"matcher"}, missing_role(MATCHER))),
    Row("Market", "matchSignedBatch", "one valid entry (failures are MatchFailed events)", _match_batch,
        only({"matcher"}, missing_role(MATCHER)), batch=True),
    # ---- Market: the deal's lifecycle (the buyer and the cloud team are its parties)
    Row("Market", "accept", "a proposed deal", _lifecycle("accept", "Proposed", auto_accept=False),
        only({"buyer"}, unauthorized("buyer"))),
    Row("Market", "reject", "a proposed deal", _lifecycle("reject", "Proposed", auto_accept=False),
        only({"buyer"}, unauthorized("buyer"))),
    Row("Market", "decline", "an accepted deal", _lifecycle("decline", "Accepted"),
        only({"cloud"}, unauthorized("seller"))),
    Row("Market", "decline", "after the start deadline (only timeout, which slashes, is left)",
        _lifecycle("decline", "Accepted", after=START_WINDOW),
        lambda c: ("DeadlinePassed", c.values["id"], c.values["deadline"]) if c.role == "cloud"
        else unauthorized("seller")(c)),
    Row("Market", "start", "an accepted deal", _lifecycle("start", "Accepted"),
        only({"cloud"}, unauthorized("seller"))),
    Row("Market", "complete", "a started deal", _lifecycle("complete", "Started", CID),
        only({"cloud"}, unauthorized("seller"))),
    Row("Market", "settle", "within the dispute window", _lifecycle("settle", "Completed"),
        only({"buyer"}, lambda c: ("DeadlineNotReached", c.values["id"], c.values["deadline"]))),
    Row("Market", "settle", "after the dispute window", _lifecycle("settle", "Completed", after=DISPUTE_WINDOW),
        anyone),
    Row("Market", "dispute", "a completed deal", _lifecycle("dispute", "Completed"),
        only({"buyer"}, unauthorized("buyer"))),
    Row("Market", "resolve", "a disputed deal whose parties are arbiters too: only the drawn arbiter",
        _lifecycle("resolve", "Disputed", True, arbiters=True),
        only({"arbiter"}, lambda c: ("NotDrawnArbiter", c.values["id"], c.caller, c.values["arbiter"]))),
    Row("Market", "reportSlaBreach", "a started deal's latency above its bound: its transit operators",
        _lifecycle("reportSlaBreach", "Started", SLA_BOUND_US + 1),
        only(OPERATORS, lambda c: ("Unauthorized", c.values["id"], c.caller, ZERO))),
    Row("Market", "timeout", "before the start deadline", _lifecycle("timeout", "Accepted"),
        lambda c: ("DeadlineNotReached", c.values["id"], c.values["deadline"])),
    Row("Market", "timeout", "after the start deadline", _lifecycle("timeout", "Accepted", after=START_WINDOW), anyone),
    # ---- Market: escrow (each caller moves only its own funds; fees go to the founder)
    Row("Market", "deposit", "1 token", lambda w, s: _mkt(w, "deposit", 10**18), anyone),
    Row("Market", "depositWithPermit", "the buyer's valid permit", _deposit_with_permit(valid=True), anyone),
    Row("Market", "depositWithPermit", "a failed permit, the buyer's allowance", _deposit_with_permit(valid=False),
        only({"buyer"}, lambda c: ("PermitFailed", c.values["buyer"], c.caller))),
    Row("Market", "withdraw", "1 token", lambda w, s: _mkt(w, "withdraw", 10**18), anyone),
    Row("Market", "stake", "1 token", lambda w, s: _mkt(w, "stake", 10**18), anyone),
    Row("Market", "requestUnstake", "1 token above what the caller's nodes require",
        lambda w, s: _mkt(w, "requestUnstake", 10**18), anyone),
    Row("Market", "claimUnstake", "the buyer's, after the delay", _claim_unstake,
        only({"buyer"}, lambda c: ("UnstakeNotReady", c.caller, 0, 0))),
    Row("Market", "setTransitTariff", "a tariff per Gbps-hour", lambda w, s: _mkt(w, "setTransitTariff", 10**15),
        only(OPERATORS, lambda c: ("NotSeatedOperator", c.caller, c.held))),
    Row("Market", "cancelAllOrders", "the caller's own signed orders", lambda w, s: _mkt(w, "cancelAllOrders"), anyone),
    Row("Market", "withdrawFees", "after a settlement (stage 1 moves no value)", _withdraw_fees,
        lambda c: ("NotFeeRecipient", c.caller) if c.role != "founder"
        else (("ZeroAmount",) if c.stage == 1 else None)),
    # ---- SettlementToken: the deployer mints; the rest is ERC-20 / ERC-2612 on one's own tokens
    Row("SettlementToken", "mint", "1 unit to the outsider", lambda w, s: _tok(w, "mint", w.address("outsider"), 1),
        only({"founder"}, lambda c: ("NotMinter", c.caller))),
    Row("SettlementToken", "transfer", "1 unit", lambda w, s: _tok(w, "transfer", w.address("outsider"), 1), anyone),
    Row("SettlementToken", "approve", "1 unit", lambda w, s: _tok(w, "approve", w.address("matcher"), 1), anyone),
    Row("SettlementToken", "transferFrom", "the buyer's unit, allowed to the matcher", _transfer_from,
        only({"matcher"}, lambda c: ("ERC20InsufficientAllowance", c.caller, 0, 1))),
    Row("SettlementToken", "permit", "the buyer's valid permit to the matcher",
        lambda w, s: _tok(w, "permit", *_permit(w, "buyer", w.address("matcher"), 1)), anyone),
]


# ------------------------------------------------------------------------------------ running the cells


TALLY: Counter = Counter()
CONTRACTS_SEEN: dict[str, set[str]] = {}


@pytest.fixture(scope="module", autouse=True)
def recorded():
    """After the module: the cells checked, in bench/results/reliability.json when asked to record."""
    yield
    if os.environ.get("SUANWANG_RECORD_RELIABILITY") == "1" and TALLY["cells"]:
        record("reliability", "access_control", {
            "command": "make reliability-contracts",
            "cells_checked": TALLY["cells"],
            "cells_allowed": TALLY["allowed"],
            "cells_refused_with_the_expected_error": TALLY["refused"],
            "cells_wrong": TALLY["wrong"],
            "rows": TALLY["rows"],
            "stages": list(STAGES),
            "roles": list(PEOPLE) + list(CONTRACT_CALLERS),
            "state_changing_functions": {name: sorted(fns) for name, fns in sorted(CONTRACTS_SEEN.items())},
            "functions_total": sum(len(fns) for fns in CONTRACTS_SEEN.values()),
        })


def run_batch_cells(w: World, row: Row, call: Prepared, cells: list[Cell], types) -> list[str]:
    """The batch match never reverts for a failed entry: each refused caller's transaction must match
    nothing and emit MatchFailed with the expected error; the allowed caller's (sent last) matches one."""
    wrong = []
    entries = call.values["entries"]
    for cell in sorted(cells, key=lambda c: row.expect(c) is None):
        expected = row.expect(cell)
        tx = w.market.matchSignedBatch(entries, {"from": cell.caller})
        failures = tx.events["MatchFailed"] if "MatchFailed" in tx.events else []  # noqa: SIM401 (not a dict)
        if expected is None:
            good = int(tx.return_value) == 1 and not failures
        else:
            reason = failures[0]["reason"] if failures else "0x"
            reason = bytes.fromhex(reason[2:]) if isinstance(reason, str) else bytes(reason)
            good = int(tx.return_value) == 0 and len(failures) == 1 and reason == encode_error(types, *expected)
        if not good:
            wrong.append(f"{row.id} stage {cell.stage} {cell.role}: expected {expected}, got "
                         f"{int(tx.return_value)} matched, {len(failures)} MatchFailed")
        _count(expected, good)
    return wrong


def _count(expected, good: bool) -> None:
    TALLY["cells"] += 1
    if not good:
        TALLY["wrong"] += 1
    elif expected is None:
        TALLY["allowed"] += 1
    else:
        TALLY["refused"] += 1


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("row", TABLE, ids=lambda r: r.id)
def test_only_the_intended_callers_succeed(world, row, stage):
    w = world
    types = error_types(w.containers.values())
    w.enter(stage)
    call = row.prepare(w, stage)
    cells = [Cell(role, w.address(role), stage, call.values) for role in callers_at(stage, row)]
    TALLY["rows"] += 1
    CONTRACTS_SEEN.setdefault(row.contract, set()).add(row.function)
    if row.batch:
        wrong = run_batch_cells(w, row, call, cells, types)
    else:
        wrong = []
        for cell in cells:
            expected = row.expect(cell)
            ok, data = eth_call(cell.caller, call.to, call.calldata(cell.caller))
            good = ok if expected is None else (not ok and data == encode_error(types, *expected))
            if not good:
                wrong.append(f"{row.id} stage {stage} {cell.role}: expected "
                             f"{'success' if expected is None else expected}, got {describe(types, (ok, data))}")
            _count(expected, good)
    assert not wrong, "\n".join(wrong)


def test_every_state_changing_function_is_in_the_table(Federation, NodeRegistry, Market, SettlementToken):
    compiled = {(c._name, f["name"]) for c in (Federation, NodeRegistry, Market, SettlementToken) for f in c.abi
                if f["type"] == "function" and f["stateMutability"] in STATE_CHANGING}
    tabled = {(row.contract, row.function) for row in TABLE}
    assert not compiled - tabled, f"state-changing functions missing from the table: {sorted(compiled - tabled)}"
    assert not tabled - compiled, f"rows for functions the compiled contracts do not have: {sorted(tabled - compiled)}"


def test_no_provider_before_stage_three(world):
    w = world
    types = error_types(w.containers.values())
    admit = w.federation.admit.encode_input(w.address("provider"), PROVIDER, "idle-GPU lab")
    for stage in (1, 2):
        w.enter(stage) if stage == 2 else None
        ok, data = eth_call(w.address("founder"), w.federation.address, admit)
        assert not ok and data == encode_error(types, "RoleNotAllowedInStage", PROVIDER, stage)
