// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {IMarketTypes} from "./interfaces/IMarketTypes.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {Escrow} from "./Escrow.sol";
import {Federation} from "./Federation.sol";
import {NodeRegistry} from "./NodeRegistry.sol";
import {Roles} from "./libraries/Roles.sol";
import {Splits} from "./libraries/Splits.sol";

/// @title MarketBase
/// @notice What the market (Market) and its extension (MarketExtension) share: the storage layout, the
///  terms, the packed layouts and the deal internals. The extension runs by delegatecall on the market's
///  storage, so both must see exactly this layout: neither declares storage of its own.
abstract contract MarketBase is IMarketTypes, Escrow {
    /// @notice The windows of the lifecycle (seconds), the unstake delay and the dispute bond. Each is
    ///  non-zero (a zero window would let a deadline pass in the block that set it).
    struct Terms {
        uint32 acceptWindow; // Proposed -> buyer must accept
        uint32 startWindow; // Accepted -> seller must start (or decline)
        uint32 deliveryGrace; // Started -> seller must complete within duration + this
        uint32 disputeWindow; // Completed -> buyer may dispute
        uint32 arbitrationPeriod; // Disputed -> the drawn arbiter must rule
        uint32 unstakeDelay; // requestUnstake -> claimUnstake
        uint16 disputeBondBps; // the buyer's dispute bond, in basis points of the deal's total (1..10000)
    }

    bytes32 public constant ORDER_TYPEHASH = keccak256(
        "Order(address buyer,address matcher,uint64 logicMcu,uint64 parallelMcu,uint64 neuralMcu,uint32 memoryMib,uint16 gpuModel,uint16 gpuCount,uint16 gpuMilli,uint8 minTier,uint32 duration,uint32 minRunSeconds,uint128 maxPricePerCuHour,uint128 maxTotal,uint128 maxTransit,uint32 maxLatencyMs,uint32 minBandwidthMbps,bool autoAccept,uint40 expiry,uint64 nonce,uint32 epoch,bytes32 specDigest,bytes32 serviceId,uint64 apnId,uint8 apnSlaClass)"
    );
    /// @notice At most this many transit operators per bill.
    uint256 public constant MAX_TRANSIT = 8;
    /// @notice The gas an ERC-1271 buyer wallet may spend checking a signature: a hostile wallet that burns
    ///  all it is given fails its own match and no other (a batch keeps 63/64 of the rest, EIP-150).
    uint256 public constant ERC1271_GAS = 50_000;
    /// @dev A GPU share is at most one whole GPU.
    uint256 internal constant MILLI_GPU = 1000;
    /// @dev Megabit-seconds per Gbps-hour: a transit fee is tariff * Mbps * seconds / this.
    uint256 internal constant MBPS_SECONDS_PER_GBPS_HOUR = 1000 * 3600;

    /// @dev A deal's slot: status (bits 0-7) | deadline (bits 8-47) | seconds used (bits 48-79, from
    ///  completion) | SLA breached (bit 80) | top 168 bits of its hash (bits 88-255). A second preimage of
    ///  168 bits is out of reach, so the deal bytes passed back are the ones recorded.
    uint256 internal constant HASH_MASK = ~uint256(0) << 88;
    uint256 internal constant USED_SHIFT = 48;
    uint256 internal constant SLA_BREACHED = 1 << 80;
    uint256 internal constant KEPT_MASK = ~uint256(0) << 48;

    /// @dev A node's hot word (read and rewritten once per match, rewritten once at release):
    ///  free logic mCU 48 | free parallel 48 | free neural 48 | memoryMib 32 | gpuModel 16 | gpuCount 16 |
    ///  tier 8 | status 8 | network operator's seat 8 (bits 0-47, 48-95, 96-143, 144-175, 176-191, 192-207,
    ///  208-215, 216-223, 224-231; a node is pushed only once its operator holds a seat).
    ///  Free capacity never exceeds the node's capacity, which the registry keeps below 2**48 per class.
    uint256 internal constant FREE_MASK = (1 << 48) - 1;
    /// @dev The lowest bit of each free field after the first, and the bit after the last.
    uint256 internal constant FIELD_CARRIES = (1 << 48) | (1 << 96) | (1 << 144);
    /// @dev Packed sizes (IMarket): an order; a bill without its transit lists; a deal without them.
    uint256 internal constant ORDER_BYTES = 230;
    uint256 internal constant ORDER_WORDS_BYTES = 25 * 32;
    uint256 internal constant BILL_HEAD_BYTES = 65;
    uint256 internal constant DEAL_HEAD_BYTES = 168;
    /// @dev Byte offsets in a deal (IMarket.Matched).
    uint256 internal constant D_NODE = 60;
    uint256 internal constant D_DURATION = 116;
    uint256 internal constant D_MIN_RUN = 120;
    uint256 internal constant D_MAX_LATENCY = 124;
    uint256 internal constant D_VALUELESS = 128;
    uint256 internal constant D_COMPUTE_FEE = 129;
    uint256 internal constant D_PLATFORM_FEE = 145;
    uint256 internal constant D_TRANSIT_COUNT = 167;
    /// @dev Packed bytes per transit operator, in a bill and in a deal: its seat 1 | its fee 16.
    uint256 internal constant TRANSIT_BYTES = 17;
    /// @dev A node's terms word (read once per match): owner 160 | pricePerCuHour 96.
    /// @dev A node's capacity word (read at release and on updates): logic 64 | parallel 64 | neural 64.
    struct NodeWords {
        uint256 state;
        uint256 terms;
        uint256 capacity;
    }

    /// @dev What a match reads once per transaction (once per batch): the matcher's roles, stage, fee, epoch.
    struct Ctx {
        address matcher;
        uint8 matcherRoles;
        uint8 stage;
        uint16 feeBps;
        uint96 activeSeats;
        uint32 epoch;
    }

    /// @dev How a paid-out deal splits: as billed (prorated to the time used), or the compute and platform
    ///  fees halved between seller and buyer (no arbiter ruled).
    enum Payout {
        Full,
        Halved
    }

    Federation public immutable federation;
    NodeRegistry public immutable registry;
    uint32 public immutable acceptWindow;
    uint32 public immutable startWindow;
    uint32 public immutable deliveryGrace;
    uint32 public immutable disputeWindow;
    uint32 public immutable arbitrationPeriod;
    uint16 public immutable disputeBondBps;

    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant NAME_HASH = keccak256("Suanwang Market");
    bytes32 internal constant VERSION_HASH = keccak256("1");
    /// @dev The market (this contract, or the market an extension runs inside): the EIP-712 verifying contract.
    address internal immutable _market;
    uint256 internal immutable _cachedChainId;
    bytes32 internal immutable _cachedDomainSeparator;

    mapping(bytes32 id => uint256) internal _slots;
    mapping(uint256 nodeId => NodeWords) internal _nodes;
    /// @dev A disputed deal: the buyer's bond (bits 0-127) and the dispute's block number (bits 128-191).
    mapping(bytes32 id => uint256) internal _disputes;
    /// @dev The ARBITER members (mirrored from the Federation), for the draw; index + 1 by member.
    address[] internal _arbiters;
    mapping(address arbiter => uint256) internal _arbiterIndex;

    /// @param market the market whose storage this code runs on: the market itself, or, for its extension
    ///  (which runs by delegatecall), the market that deploys it. The EIP-712 domain names it.
    constructor(Federation federation_, NodeRegistry registry_, IERC20 token_, Terms memory terms, address market)
        Escrow(token_, federation_.founder(), terms.unstakeDelay)
    {
        if (terms.acceptWindow == 0) revert InvalidTerms(0);
        if (terms.startWindow == 0) revert InvalidTerms(1);
        if (terms.deliveryGrace == 0) revert InvalidTerms(2);
        if (terms.disputeWindow == 0) revert InvalidTerms(3);
        if (terms.arbitrationPeriod == 0) revert InvalidTerms(4);
        if (terms.unstakeDelay == 0) revert InvalidTerms(5);
        if (terms.disputeBondBps == 0 || terms.disputeBondBps > Splits.BPS) revert InvalidTerms(6);
        _market = market;
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
        federation = federation_;
        registry = registry_;
        acceptWindow = terms.acceptWindow;
        startWindow = terms.startWindow;
        deliveryGrace = terms.deliveryGrace;
        disputeWindow = terms.disputeWindow;
        arbitrationPeriod = terms.arbitrationPeriod;
        disputeBondBps = terms.disputeBondBps;
    }

    modifier onlyFederation() {
        if (msg.sender != address(federation)) revert NotFederation(msg.sender);
        _;
    }

    modifier onlyRegistry() {
        if (msg.sender != address(registry)) revert NotRegistry(msg.sender);
        _;
    }

    /// @notice The EIP-712 domain separator (name "Suanwang Market", version "1", chain id, the market).
    function domainSeparator() public view returns (bytes32) {
        // Rebuilt only after a chain split changed the chain id (as OpenZeppelin's EIP712 does).
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, _market));
    }

    /// @dev The EIP-712 digest of a calldata order: its id.
    function _orderId(Order calldata order) internal view returns (bytes32) {
        // hashStruct(order) = keccak256(typeHash || the 25 fields' words), copied straight from calldata
        // (an Order is 25 static words). A word with dirty high bits gives another digest, which the buyer
        // did not sign (wallets sign the clean encoding), so it is refused as InvalidSignature; a posted
        // order is keyed by whatever id it was posted under and then reads its fields through the
        // compiler's accessors, which revert on dirty bits.
        bytes32 typeHash = ORDER_TYPEHASH;
        bytes32 structHash;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, typeHash)
            calldatacopy(add(p, 0x20), order, ORDER_WORDS_BYTES)
            structHash := keccak256(p, add(ORDER_WORDS_BYTES, 0x20))
        }
        return MessageHashUtils.toTypedDataHash(domainSeparator(), structHash);
    }

    /// @dev The deal's slot, after checking `deal` is the deal `id` recorded: keccak256(id ++ deal) must
    ///  match the stored hash bits. Any other bytes (another length, another field) hash differently, so
    ///  the fields read from `deal` afterwards are the ones Matched emitted.
    function _load(bytes32 id, bytes calldata deal) internal view returns (uint256 slot, Status status, uint40 deadline) {
        slot = _slots[id];
        uint256 h;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, id)
            calldatacopy(add(p, 0x20), deal.offset, deal.length)
            h := keccak256(p, add(deal.length, 0x20))
        }
        // A status compared with a constant (slither takes the hash's assembly for a balance).
        // slither-disable-next-line incorrect-equality
        if (slot == 0 || slot & HASH_MASK != h & HASH_MASK) revert UnknownDeal(id);
        status = Status(uint8(slot));
        deadline = uint40(slot >> 8);
    }

    /// @dev The `size`-byte big-endian field at byte `offset` of a deal's packed bytes (IMarket.Matched).
    ///  Only after _load proved the bytes, or with an offset inside them.
    function _field(bytes calldata deal, uint256 offset, uint256 size) internal pure returns (uint256 v) {
        assembly ("memory-safe") {
            v := shr(sub(256, shl(3, size)), calldataload(add(deal.offset, offset)))
        }
    }

    function _dealBuyer(bytes calldata deal) internal pure returns (address) {
        return address(uint160(_field(deal, 0, 20)));
    }

    function _dealSeller(bytes calldata deal) internal pure returns (address) {
        return address(uint160(_field(deal, 20, 20)));
    }

    function _dealValueless(bytes calldata deal) internal pure returns (bool) {
        return _field(deal, D_VALUELESS, 1) != 0;
    }

    function _dealTransitCount(bytes calldata deal) internal pure returns (uint256) {
        return _field(deal, D_TRANSIT_COUNT, 1);
    }

    function _dealTotal(bytes calldata deal) internal pure returns (uint256 total) {
        total = _field(deal, D_COMPUTE_FEE, 16) + _field(deal, D_PLATFORM_FEE, 16);
        uint256 n = _dealTransitCount(deal);
        for (uint256 i; i < n; ++i) {
            total += _field(deal, DEAL_HEAD_BYTES + n + 16 * i, 16);
        }
    }

    function _move(bytes32 id, uint256 slot, Status status, uint40 deadline) internal {
        _slots[id] = _pack(slot, status, deadline);
        emit DealStatusChanged(id, status, deadline);
    }

    function _only(bytes32 id, address expected) internal view {
        if (msg.sender != expected) revert Unauthorized(id, msg.sender, expected);
    }

    function _expect(bytes32 id, Status status, Status expected) internal pure {
        if (status != expected) revert InvalidStatus(id, status);
    }

    function _before(bytes32 id, uint40 deadline) internal view {
        if (block.timestamp > deadline) revert DeadlinePassed(id, deadline);
    }

    /// @dev Keeps the bits of `slot` above the deadline (hash, seconds used, SLA flag), sets status and deadline.
    function _pack(uint256 slot, Status status, uint40 deadline) internal pure returns (uint256) {
        return (slot & KEPT_MASK) | (uint256(deadline) << 8) | uint256(uint8(status));
    }

    /// @dev A posted order's slot commits to its id (which commits to the order) and its lock.
    function _postedHash(bytes32 id, uint256 locked) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(id, locked))) & HASH_MASK;
    }

    function _requireRole(address account, uint8 role) internal view {
        uint8 held = _accounts[account].roles;
        if (held & role != role) revert MissingRole(account, role, held);
    }

    /// @dev Refunds a deal that never delivered (rejected, declined, timed out before completion): the buyer
    ///  gets its whole bill back, the node its capacity, and the seller its stake lock unless `slash`.
    function _refundAndRelease(bytes32 id, uint256 slot, bytes calldata deal, bool slash) internal {
        _move(id, slot, Status.Refunded, 0);
        address buyer = _dealBuyer(deal);
        uint256 amount = 0;
        if (!_dealValueless(deal)) {
            amount = _dealTotal(deal);
            _credit(buyer, amount);
            uint256 lock = _field(deal, D_COMPUTE_FEE, 16);
            if (slash) {
                _slash(id, deal, lock);
            } else {
                _releaseLock(_dealSeller(deal), lock);
            }
        }
        emit Refunded(id, buyer, amount);
        _release(deal);
    }

    /// @dev Returns a deal's capacity to its node (paused and retired nodes too, so running deals finish).
    ///  A deal returns exactly what it reserved, once (its status moves past the capacity-holding ones in
    ///  the same call), and a node update keeps free = capacity - reserved, so free stays at most the
    ///  capacity (< 2**48) without reading it: only a carry out of a field, which a bug would cause,
    ///  is checked.
    function _release(bytes calldata deal) internal {
        uint256 nodeId = _field(deal, D_NODE, 32);
        NodeWords storage node = _nodes[nodeId];
        uint256 state = node.state;
        uint256 back = _field(deal, 92, 8) | (_field(deal, 100, 8) << 48) | (_field(deal, 108, 8) << 96);
        uint256 freed;
        unchecked {
            freed = state + back;
        }
        // A carry out of a 48-bit field flips the lowest bit of the next one in (state + back) ^ state ^ back.
        if ((freed ^ state ^ back) & FIELD_CARRIES != 0) revert FreeCapacityOverflow(nodeId);
        node.state = freed;
    }

    /// @dev Pays out a completed deal and ends it in `final_`: Settled pays the seller and the platform
    ///  their fees prorated to the time used (halved when `how` is Halved), Refunded (the buyer won its
    ///  dispute) pays them nothing. Transit is paid in full unless an operator reported an SLA breach.
    ///  The buyer gets the rest back, with `bondBack`; the seller's stake lock is released.
    function _payout(bytes32 id, uint256 slot, bytes calldata deal, Payout how, Status final_, uint256 bondBack)
        internal
    {
        if (final_ == Status.Settled) {
            _slots[id] = _pack(slot, Status.Settled, 0); // Settled says the status: no DealStatusChanged
        } else {
            _move(id, slot, final_, 0);
        }
        uint256 computeFee = _field(deal, D_COMPUTE_FEE, 16);
        uint256 platformFee = _field(deal, D_PLATFORM_FEE, 16);
        uint256 computePaid = 0;
        uint256 platformPaid = 0;
        // slither-disable-next-line incorrect-equality
        if (final_ == Status.Settled) {
            uint256 used = uint32(slot >> USED_SHIFT);
            uint256 duration = _field(deal, D_DURATION, 4);
            // used <= duration (complete) and duration > 0 (match); fees < 2**128, used < 2**32.
            computePaid = (computeFee * used) / duration;
            platformPaid = (platformFee * used) / duration;
            if (how == Payout.Halved) {
                computePaid /= 2;
                platformPaid /= 2;
            }
        }
        bool breached = slot & SLA_BREACHED != 0;
        bool valueless = _dealValueless(deal);
        uint256 transitTotal = _payTransit(deal, !valueless && !breached);
        uint256 transitPaid = breached ? 0 : transitTotal;
        // Each paid part is at most its billed part.
        uint256 refunded = computeFee - computePaid + platformFee - platformPaid + transitTotal - transitPaid + bondBack;
        if (!valueless) {
            address seller = _dealSeller(deal);
            if (computePaid != 0) _credit(seller, computePaid);
            _releaseLock(seller, computeFee);
            if (platformPaid != 0) _accrueFees(platformPaid);
            if (refunded != 0) _credit(_dealBuyer(deal), refunded);
        }
        emit Settled(id, computePaid, transitPaid, platformPaid, refunded, valueless);
    }

    /// @dev The deal's transit total, each fee credited to its seat's operator when `pay`.
    function _payTransit(bytes calldata deal, bool pay) internal returns (uint256 total) {
        uint256 n = _dealTransitCount(deal);
        for (uint256 i; i < n;) {
            uint256 fee = _field(deal, DEAL_HEAD_BYTES + n + 16 * i, 16);
            if (pay) _creditTransit(_field(deal, DEAL_HEAD_BYTES + i, 1), fee);
            unchecked {
                // At most MAX_TRANSIT fees below 2**128 each.
                total += fee;
                ++i;
            }
        }
    }

    /// @dev Ends a dispute's record; returns the buyer's bond.
    function _closeDispute(bytes32 id) internal returns (uint256 bond) {
        bond = uint128(_disputes[id]);
        delete _disputes[id];
    }

    /// @dev The seller forfeits the deal's stake lock: half (rounded down) to the buyer, the rest to the
    ///  platform. The lock was taken out of the seller's spare stake at the match, so nothing else moves.
    function _slash(bytes32 id, bytes calldata deal, uint256 lock) internal {
        (uint256 toBuyer, uint256 toPlatform) = Splits.slashShares(lock);
        if (toBuyer != 0) _credit(_dealBuyer(deal), toBuyer);
        if (toPlatform != 0) _accrueFees(toPlatform);
        emit Slashed(id, _dealSeller(deal), toBuyer, toPlatform);
    }

    /// @dev The arbiter drawn for disputed deal `id` now: from the hash of block disputedAt + 1 + 256k, k the
    ///  number of whole 256-block windows since (blockhash reaches back 256 blocks), so no party knows its
    ///  arbiter when it acts; the first eligible ARBITER from that point of the list on.
    function _drawArbiter(bytes32 id, bytes calldata deal) internal view returns (address) {
        uint256 disputedAt = _disputes[id] >> 128;
        uint256 count = _arbiters.length;
        // slither-disable-next-line incorrect-equality
        if (block.number < disputedAt + 2 || count == 0) return address(0);
        // The first block of the current 256-block window: rounding down to a whole window is the point.
        // slither-disable-next-line divide-before-multiply
        uint256 seedBlock = disputedAt + 1 + ((block.number - disputedAt - 2) / 256) * 256;
        // A block hash mined after the dispute: its proposer could steer it, neither party can
        // (docs/security.md).
        // slither-disable-next-line weak-prng
        uint256 first = uint256(keccak256(abi.encode(id, blockhash(seedBlock)))) % count;
        for (uint256 k; k < count; ++k) {
            // Walking the list from the drawn start, not a second draw.
            // slither-disable-next-line weak-prng
            address candidate = _arbiters[(first + k) % count];
            if (!_conflicted(candidate, deal)) return candidate;
        }
        return address(0);
    }

    /// @dev Whether `who` is a party to the deal or gains from its outcome: its buyer, seller, matcher, a
    ///  transit operator of its path, or the platform fee recipient.
    function _conflicted(address who, bytes calldata deal) internal view returns (bool) {
        if (who == _dealBuyer(deal) || who == _dealSeller(deal) || who == feeRecipient) return true;
        if (who == address(uint160(_field(deal, 40, 20)))) return true; // matcher
        return _namesTransitOperator(deal, who);
    }

    /// @dev Whether `who` holds one of the deal's transit seats.
    function _namesTransitOperator(bytes calldata deal, address who) internal view returns (bool) {
        uint256 seatPlusOne = _seatPlusOne(who);
        // slither-disable-next-line incorrect-equality
        if (seatPlusOne == 0) return false;
        uint256 n = _dealTransitCount(deal);
        for (uint256 i; i < n; ++i) {
            if (_field(deal, DEAL_HEAD_BYTES + i, 1) == seatPlusOne - 1) return true;
        }
        return false;
    }

    function _revertWith(bytes memory failure) internal pure {
        assembly ("memory-safe") {
            revert(add(failure, 0x20), mload(failure))
        }
    }

    function _closePosted(bytes32 id, uint256 slot, address buyer, uint256 locked) internal {
        Status status = Status(uint8(slot));
        if (status != Status.Posted) revert InvalidStatus(id, status);
        if (slot & HASH_MASK != _postedHash(id, locked)) revert UnknownDeal(id);
        _slots[id] = _pack(0, Status.Cancelled, 0);
        if (locked != 0) _credit(buyer, locked);
        emit OrderCancelled(id, buyer, locked);
    }

    /// @dev Keeps `_arbiters` equal to the ARBITER members (swap-and-pop on removal).
    function _syncArbiter(address member, bool arbiter) internal {
        uint256 index = _arbiterIndex[member];
        if (arbiter && index == 0) {
            _arbiters.push(member);
            _arbiterIndex[member] = _arbiters.length;
        } else if (!arbiter && index != 0) {
            address last = _arbiters[_arbiters.length - 1];
            _arbiters[index - 1] = last;
            _arbiterIndex[last] = index;
            _arbiters.pop();
            delete _arbiterIndex[member];
        }
    }
}
