"""The one typed seam to the deployed contracts: a method per contract function the code uses.

Reads return Python values; writes return an unsent call (`Call`) that a `TxSender` signs and sends
with its own key, so the seam holds no key. No code outside `suanwang.chain` touches web3's
`Contract.functions`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction

from suanwang.chain.deployment import Deployment, load_abi
from suanwang.chain.errors import ErrorDecoder
from suanwang.chain.order_type import ORDER_TYPE
from suanwang.roles import Role
from suanwang.states import DealCall, DealStatus

Call = ContractFunction  # an unsent contract call with its arguments: what TxSender.submit takes
BYTES32_ORDER_FIELDS = frozenset(f["name"] for f in ORDER_TYPE if f["type"] == "bytes32")


def _id(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else bytes.fromhex(value.removeprefix("0x"))


def _topic(contract: Contract, event: str) -> bytes:
    return bytes.fromhex(str(contract.events[event]().topic).removeprefix("0x"))


@dataclass(frozen=True)
class Unstaking:
    """Stake an account asked back (IEscrow.unstakingOf): claimable from `ready_at` (unix seconds)."""

    amount: int
    ready_at: int


@dataclass(frozen=True)
class Proposal:
    """An operator vote (IFederation.Proposal): admit `account` as an operator, or remove it."""

    id: int
    account: str
    admit: bool
    executed: bool
    yes: int
    needed: int
    roles: int
    deadline: int  # the last second votes are taken
    name: str

    def open_at(self, chain_time: int) -> bool:
        return not self.executed and chain_time <= self.deadline


class BoundContract:
    """One deployed contract: its typed methods call `_fns`, web3's functions of it."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self._fns = contract.functions

    @property
    def address(self) -> str:
        return str(self.contract.address)


class MarketContract(BoundContract):
    """Market.sol (with MarketExtension's functions, reached through Market's address)."""

    def __init__(self, contract: Contract) -> None:
        super().__init__(contract)
        self._match_failed = _topic(contract, "MatchFailed")
        self._matched = _topic(contract, "Matched")

    # -- reads
    def status_of(self, order_id: str | bytes) -> tuple[DealStatus, int]:
        """(status, deadline) of the deal or posted order `order_id` (NONE when the market has never seen it)."""
        status, deadline = self._fns.statusOf(_id(order_id)).call()
        return DealStatus.of(int(status)), int(deadline)

    def transit_tariff_of(self, operator: str) -> int:
        return int(self._fns.transitTariffOf(Web3.to_checksum_address(operator)).call())

    def transit_operators(self) -> list[str]:
        return [str(a) for a in self._fns.transitOperators().call()]

    def balance_of(self, account: str) -> int:
        """`account`'s unlocked escrow balance (what `withdraw` can take)."""
        return int(self._fns.balanceOf(Web3.to_checksum_address(account)).call())

    def nonce_floor_of(self, buyer: str) -> int:
        """The buyer's nonce floor: its signed orders with a lower nonce are void (IMarket.cancelAllOrders)."""
        return int(self._fns.nonceFloorOf(Web3.to_checksum_address(buyer)).call())

    def stake_of(self, account: str) -> int:
        """`account`'s unlocked stake: what backs new deals (open deals lock their compute fee of it)."""
        return int(self._fns.stakeOf(Web3.to_checksum_address(account)).call())

    def required_stake_of(self, account: str) -> int:
        """The stake `account`'s registered nodes require (the sum of their tiers' minimums)."""
        return int(self._fns.requiredStakeOf(Web3.to_checksum_address(account)).call())

    def unstaking_of(self, account: str) -> Unstaking:
        amount, ready_at = self._fns.unstakingOf(Web3.to_checksum_address(account)).call()
        return Unstaking(int(amount), int(ready_at))

    def platform_fees(self) -> int:
        """The platform fees the escrow holds for the fee recipient (not yet withdrawn)."""
        return int(self._fns.platformFees().call())

    def arbiter_of(self, deal_id: str | bytes, packed: bytes) -> str:
        """The arbiter drawn now for disputed deal `deal_id` (the zero address before the block after the
        dispute, or when no arbiter is eligible)."""
        return str(self._fns.arbiterOf(_id(deal_id), packed).call())

    # -- events of one id (what a buyer's or an arbiter's own client reads, with no index of its own)
    def matched_deal(self, deal_id: str | bytes, from_block: int) -> bytes | None:
        """The packed deal of `deal_id` as its Matched event carries it (every later deal call passes these
        bytes back), or None when the market never matched it."""
        logs = self.contract.events.Matched().get_logs(from_block=from_block, argument_filters={"id": _id(deal_id)})
        return bytes(logs[0]["args"]["deal"]) if logs else None

    def posted_order(self, order_id: str | bytes, from_block: int) -> tuple[dict[str, Any], int] | None:
        """(the order, the amount it locked) of an order posted on chain (OrderPosted), or None."""
        logs = self.contract.events.OrderPosted().get_logs(
            from_block=from_block, argument_filters={"id": _id(order_id)}
        )
        if not logs:
            return None
        args = logs[0]["args"]
        return dict(args["order"]), int(args["locked"])

    def disputed_ids(self, from_block: int) -> list[str]:
        """The ids of every deal ever disputed (Disputed events), oldest first, as 0x-hex."""
        logs = self.contract.events.Disputed().get_logs(from_block=from_block)
        return ["0x" + bytes(entry["args"]["id"]).hex() for entry in logs]

    # -- writes (unsent)
    def match_signed_batch(self, entries: bytes) -> Call:
        return self._fns.matchSignedBatch(entries)

    def deal_call(self, function: DealCall, deal_id: str | bytes, packed: bytes, *args: Any) -> Call:
        """One of the lifecycle calls that take (id, deal bytes, ...): `complete` takes the result CID too."""
        return cast(Call, getattr(self._fns, function.value)(_id(deal_id), packed, *args))

    def withdraw(self, amount: int) -> Call:
        return self._fns.withdraw(amount)

    def deposit(self, amount: int) -> Call:
        """Moves `amount` approved tokens from the caller's wallet into its escrow balance."""
        return self._fns.deposit(amount)

    def resolve(self, deal_id: str | bytes, packed: bytes, seller_wins: bool) -> Call:
        """The drawn arbiter's ruling on a disputed deal (MarketExtension.resolve)."""
        return self._fns.resolve(_id(deal_id), packed, seller_wins)

    def cancel_order(self, order: Mapping[str, Any], locked: int) -> Call:
        """Cancels the caller's unmatched order: a posted one (refunding `locked`, from OrderPosted) or a
        signed one never matched (`locked` 0), which no matcher can use afterwards."""
        struct = {name: _id(value) if name in BYTES32_ORDER_FIELDS else value for name, value in order.items()}
        return self._fns.cancelOrder(struct, locked)

    def cancel_all_orders(self) -> Call:
        """Raises the caller's nonce floor one step: every order it signed below it is void."""
        return self._fns.cancelAllOrders()

    def set_transit_tariff(self, per_gbps_hour: int) -> Call:
        return self._fns.setTransitTariff(per_gbps_hour)

    def stake(self, amount: int) -> Call:
        """Moves `amount` of the caller's escrow balance into its stake (what backs its nodes and open deals)."""
        return self._fns.stake(amount)

    # -- receipts
    def match_failures(self, receipt: Mapping[str, Any]) -> dict[str, bytes]:
        """Order id -> the revert data of each MatchFailed log in a matchSignedBatch receipt (only those logs
        are decoded: a batch's receipt carries hundreds)."""
        event = self.contract.events.MatchFailed()
        out = {}
        for entry in receipt["logs"]:
            if entry["topics"] and bytes(entry["topics"][0]) == self._match_failed:
                args = event.process_log(entry)["args"]
                out["0x" + bytes(args["id"]).hex()] = bytes(args["reason"])
        return out

    def matched_deals(self, receipt: Mapping[str, Any], ids: Iterable[str]) -> list[tuple[str, bytes]]:
        """(deal id, packed deal) of each Matched log in `receipt` whose id is one of `ids`."""
        wanted = set(ids)
        event = self.contract.events.Matched()
        out = []
        for entry in receipt["logs"]:
            topics = entry["topics"]
            if len(topics) < 2 or bytes(topics[0]) != self._matched or "0x" + bytes(topics[1]).hex() not in wanted:
                continue
            args = event.process_log(entry)["args"]
            out.append(("0x" + bytes(args["id"]).hex(), bytes(args["deal"])))
        return out


class FederationContract(BoundContract):
    """Federation.sol: the stage, the members and their roles, the operators' votes."""

    def stage(self) -> int:
        return int(self._fns.stage().call())

    def seller_roles(self, stage: int) -> int:
        """The role bits that may sell in `stage`."""
        return int(self._fns.sellerRoles(stage).call())

    def founder(self) -> str:
        return str(self._fns.founder().call())

    def platform_fee_bps(self) -> int:
        return int(self._fns.platformFeeBps().call())

    def roles_of(self, account: str) -> int:
        return int(self._fns.rolesOf(Web3.to_checksum_address(account)).call())

    def epoch(self) -> int:
        """The value epoch: a signed order matches only in the epoch it names (a stage or fee change moves it)."""
        return int(self._fns.epoch().call())

    def has_role(self, account: str, role: Role) -> bool:
        """Whether `account` is an active member holding `role`."""
        return bool(self._fns.hasRole(Web3.to_checksum_address(account), int(role)).call())

    def proposal_count(self) -> int:
        return int(self._fns.proposalCount().call())

    def proposal(self, proposal_id: int) -> Proposal:
        """Proposal `proposal_id` (the call reverts with UnknownProposal when there is none)."""
        account, admit, executed, yes, needed, roles, deadline, name = self._fns.getProposal(proposal_id).call()
        return Proposal(
            proposal_id,
            str(account),
            bool(admit),
            bool(executed),
            int(yes),
            int(needed),
            int(roles),
            int(deadline),
            name,
        )

    def has_voted(self, proposal_id: int, voter: str) -> bool:
        return bool(self._fns.hasVoted(proposal_id, Web3.to_checksum_address(voter)).call())

    # -- writes (unsent): governance's (the founder's until stage 3), and the operators' votes
    def admit(self, account: str, roles: int, name: str) -> Call:
        return self._fns.admit(Web3.to_checksum_address(account), roles, name)

    def set_roles(self, account: str, roles: int) -> Call:
        return self._fns.setRoles(Web3.to_checksum_address(account), roles)

    def remove(self, account: str) -> Call:
        return self._fns.remove(Web3.to_checksum_address(account))

    def advance_stage(self, stage: int) -> Call:
        return self._fns.advanceStage(stage)

    def propose_operator(self, account: str, name: str) -> Call:
        """Proposes admitting `account` as an operator (an operator's call); its id is `proposal_count()` before."""
        return self._fns.proposeOperator(Web3.to_checksum_address(account), name)

    def vote(self, proposal_id: int) -> Call:
        return self._fns.vote(proposal_id)


class TokenContract(BoundContract):
    """The settlement token (an ERC-20)."""

    def balance_of(self, account: str) -> int:
        return int(self._fns.balanceOf(Web3.to_checksum_address(account)).call())

    def allowance(self, owner: str, spender: str) -> int:
        """What `spender` may still pull from `owner`'s wallet."""
        return int(self._fns.allowance(Web3.to_checksum_address(owner), Web3.to_checksum_address(spender)).call())

    def approve(self, spender: str, amount: int) -> Call:
        return self._fns.approve(Web3.to_checksum_address(spender), amount)

    def total_supply(self) -> int:
        return int(self._fns.totalSupply().call())

    def mint(self, to: str, amount: int) -> Call:
        """New tokens to `to` (the development token's owner only)."""
        return self._fns.mint(Web3.to_checksum_address(to), amount)


@dataclass(frozen=True)
class NodeSpec:
    """What a node offers (INodeRegistry.NodeSpec), in the struct's field order."""

    logic_mcu: int
    parallel_mcu: int
    neural_mcu: int
    memory_mib: int
    gpu_model: int
    gpu_count: int
    tier: int
    price_per_cu_hour: int
    operator: str
    router: bytes  # keccak256("<operator>/<router label>")
    locator: bytes  # the attachment router's SRv6 locator prefix (16 bytes)
    locator_length: int
    encryption_key: bytes = bytes(32)  # none

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.logic_mcu,
            self.parallel_mcu,
            self.neural_mcu,
            self.memory_mib,
            self.gpu_model,
            self.gpu_count,
            self.tier,
            self.price_per_cu_hour,
            Web3.to_checksum_address(self.operator),
            self.router,
            self.locator,
            self.locator_length,
            self.encryption_key,
        )


class RegistryContract(BoundContract):
    """NodeRegistry.sol: the nodes sellers offer."""

    def __init__(self, contract: Contract) -> None:
        super().__init__(contract)
        self._registered = _topic(contract, "NodeRegistered")

    def min_stake(self, tier: int) -> int:
        """The stake one node of `tier` requires of its owner."""
        return int(self._fns.minStake(tier).call())

    def register_node(self, spec: NodeSpec) -> Call:
        return self._fns.registerNode(spec.as_tuple())

    def encryption_key(self, node_id: int) -> bytes:
        """The X25519 key node `node_id` is registered with (32 zero bytes: none)."""
        spec, _owner, _status = self._fns.getNode(node_id).call()
        return bytes(spec[-1])

    def registered_ids(self, receipt: Mapping[str, Any]) -> list[int]:
        """The ids of the nodes a receipt's NodeRegistered logs announce, in log order."""
        return [
            int.from_bytes(bytes(entry["topics"][1]), "big")
            for entry in receipt["logs"]
            if len(entry["topics"]) > 1 and bytes(entry["topics"][0]) == self._registered
        ]


@dataclass(frozen=True)
class ChainGateway:
    """The deployment's contracts, typed; `decoder` turns revert data from any of them into a ChainRevert."""

    w3: Web3
    market: MarketContract
    federation: FederationContract
    raw: dict[str, Contract]  # every bound contract by name, for the indexer's log decoding
    decoder: ErrorDecoder

    @cached_property
    def token(self) -> TokenContract:
        return TokenContract(self.raw["SettlementToken"])

    @cached_property
    def registry(self) -> RegistryContract:
        return RegistryContract(self.raw["NodeRegistry"])

    def head_time(self) -> int:
        """The latest block's timestamp: the chain's time, which expiries and deadlines are measured against."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    @classmethod
    def bind(cls, w3: Web3, deployment: Deployment, build_dir: Any) -> ChainGateway:
        """Bindings for every contract of the deployment whose build artifact is in `build_dir`."""
        raw: dict[str, Contract] = {}
        for name, address in deployment.contracts.items():
            if (build_dir / f"{name}.json").exists():
                raw[name] = w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_abi(build_dir, name))
        decoder = ErrorDecoder([cast(list[dict[str, Any]], list(c.abi)) for c in raw.values()])
        return cls(w3, MarketContract(raw["Market"]), FederationContract(raw["Federation"]), raw, decoder)
