// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {IMarket} from "./interfaces/IMarket.sol";
import {IMarketSync} from "./interfaces/IMarketSync.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {Escrow} from "./Escrow.sol";
import {Federation} from "./Federation.sol";
import {NodeRegistry} from "./NodeRegistry.sol";
import {Roles} from "./libraries/Roles.sol";
import {Splits} from "./libraries/Splits.sol";

/// @title Market
/// @notice Orders, matches, the deal lifecycle and settlement; holds the escrow (see Escrow).
contract Market is IMarket, IMarketSync, Escrow {
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
    uint256 private constant MILLI_GPU = 1000;
    /// @dev Megabit-seconds per Gbps-hour: a transit fee is tariff * Mbps * seconds / this.
    uint256 private constant MBPS_SECONDS_PER_GBPS_HOUR = 1000 * 3600;

    /// @dev A deal's slot: status (bits 0-7) | deadline (bits 8-47) | seconds used (bits 48-79, from
    ///  completion) | SLA breached (bit 80) | top 168 bits of its hash (bits 88-255). A second preimage of
    ///  168 bits is out of reach, so the deal bytes passed back are the ones recorded.
    uint256 private constant HASH_MASK = ~uint256(0) << 88;
    uint256 private constant USED_SHIFT = 48;
    uint256 private constant SLA_BREACHED = 1 << 80;
    uint256 private constant KEPT_MASK = ~uint256(0) << 48;

    /// @dev A node's hot word (read and rewritten once per match, rewritten once at release):
    ///  free logic mCU 48 | free parallel 48 | free neural 48 | memoryMib 32 | gpuModel 16 | gpuCount 16 |
    ///  tier 8 | status 8 | network operator's seat 8 (bits 0-47, 48-95, 96-143, 144-175, 176-191, 192-207,
    ///  208-215, 216-223, 224-231; NO_SEAT when its operator had none when the node was pushed).
    ///  Free capacity never exceeds the node's capacity, which the registry keeps below 2**48 per class.
    uint256 private constant FREE_MASK = (1 << 48) - 1;
    /// @dev The lowest bit of each free field after the first, and the bit after the last.
    uint256 private constant FIELD_CARRIES = (1 << 48) | (1 << 96) | (1 << 144);
    uint256 private constant NO_SEAT = 0xff;
    /// @dev Packed sizes (IMarket): an order; a bill without its transit lists; a deal without them.
    uint256 private constant ORDER_BYTES = 230;
    uint256 private constant ORDER_WORDS_BYTES = 25 * 32;
    uint256 private constant BILL_HEAD_BYTES = 65;
    uint256 private constant DEAL_HEAD_BYTES = 168;
    /// @dev Byte offsets in a deal (IMarket.Matched).
    uint256 private constant D_NODE = 60;
    uint256 private constant D_DURATION = 116;
    uint256 private constant D_MIN_RUN = 120;
    uint256 private constant D_MAX_LATENCY = 124;
    uint256 private constant D_VALUELESS = 128;
    uint256 private constant D_COMPUTE_FEE = 129;
    uint256 private constant D_PLATFORM_FEE = 145;
    uint256 private constant D_TRANSIT_COUNT = 167;
    /// @dev Packed bytes per transit operator, in a bill and in a deal: its seat 1 | its fee 16.
    uint256 private constant TRANSIT_BYTES = 17;
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

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("Suanwang Market");
    bytes32 private constant VERSION_HASH = keccak256("1");
    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;

    mapping(bytes32 id => uint256) private _slots;
    mapping(uint256 nodeId => NodeWords) private _nodes;
    /// @dev A disputed deal: the buyer's bond (bits 0-127) and the dispute's block number (bits 128-191).
    mapping(bytes32 id => uint256) private _disputes;
    /// @dev The ARBITER members (mirrored from the Federation), for the draw; index + 1 by member.
    address[] private _arbiters;
    mapping(address arbiter => uint256) private _arbiterIndex;

    constructor(Federation federation_, NodeRegistry registry_, IERC20 token_, Terms memory terms)
        Escrow(token_, federation_.founder(), terms.unstakeDelay)
    {
        if (terms.acceptWindow == 0) revert InvalidTerms(0);
        if (terms.startWindow == 0) revert InvalidTerms(1);
        if (terms.deliveryGrace == 0) revert InvalidTerms(2);
        if (terms.disputeWindow == 0) revert InvalidTerms(3);
        if (terms.arbitrationPeriod == 0) revert InvalidTerms(4);
        if (terms.unstakeDelay == 0) revert InvalidTerms(5);
        if (terms.disputeBondBps == 0 || terms.disputeBondBps > Splits.BPS) revert InvalidTerms(6);
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
        // Until the Federation is wired to this market (Federation.setMarket pushes everything then).
        _stage = federation_.stage();
        _feeBps = federation_.platformFeeBps();
        _epoch = federation_.epoch();
    }

    modifier onlyFederation() {
        if (msg.sender != address(federation)) revert NotFederation(msg.sender);
        _;
    }

    modifier onlyRegistry() {
        if (msg.sender != address(registry)) revert NotRegistry(msg.sender);
        _;
    }

    // ------------------------------------------------------ pushed state (IMarketSync)

    /// @inheritdoc IMarketSync
    function syncRoles(address member, uint8 roles) external override onlyFederation {
        _accounts[member].roles = roles;
        _syncSeat(member, roles & Roles.OPERATOR != 0);
        _syncArbiter(member, roles & Roles.ARBITER != 0);
    }

    /// @dev Keeps `_arbiters` equal to the ARBITER members (swap-and-pop on removal).
    function _syncArbiter(address member, bool arbiter) private {
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

    /// @inheritdoc IMarketSync
    function hasSeatFor(address member) external view override returns (bool) {
        return _hasSeatFor(member);
    }

    /// @inheritdoc IMarketSync
    function syncParams(uint8 stage_, uint16 platformFeeBps_, uint32 epoch_) external override onlyFederation {
        _stage = stage_;
        _feeBps = platformFeeBps_;
        _epoch = epoch_;
    }

    /// @inheritdoc IMarketSync
    function syncNode(uint256 nodeId, address owner, INodeRegistry.NodeSpec calldata spec, INodeRegistry.NodeStatus status)
        external
        override
        onlyRegistry
    {
        NodeWords storage n = _nodes[nodeId];
        uint256 state = n.state;
        uint256 cap = n.capacity;
        uint256 free = 0;
        uint64[3] memory wanted = [spec.logicMcu, spec.parallelMcu, spec.neuralMcu];
        for (uint256 k; k < 3; ++k) {
            // reserved = capacity - free (both 0 for a new node); the new free = new capacity - reserved.
            uint64 reserved = uint64((cap >> (64 * k)) & type(uint64).max) - uint64((state >> (48 * k)) & FREE_MASK);
            if (wanted[k] < reserved) revert CapacityBelowReserved(nodeId, uint8(k), wanted[k], reserved);
            free |= uint256(wanted[k] - reserved) << (48 * k);
        }
        // The registry checked the operator holds OPERATOR, so it is seated once the Federation is wired.
        uint256 seatPlusOne = _seatPlusOne(spec.operator);
        uint256 seat = seatPlusOne == 0 ? NO_SEAT : seatPlusOne - 1;
        n.state = free | (uint256(spec.memoryMib) << 144) | (uint256(spec.gpuModel) << 176)
            | (uint256(spec.gpuCount) << 192) | (uint256(spec.tier) << 208) | (uint256(uint8(status)) << 216)
            | (seat << 224);
        // The registry checked price < 2**96 and each capacity < 2**48.
        n.terms = uint256(uint160(owner)) | (uint256(spec.pricePerCuHour) << 160);
        n.capacity = uint256(spec.logicMcu) | (uint256(spec.parallelMcu) << 64) | (uint256(spec.neuralMcu) << 128);
    }

    /// @inheritdoc IMarketSync
    function syncNodeStatus(uint256 nodeId, INodeRegistry.NodeStatus status) external override onlyRegistry {
        NodeWords storage n = _nodes[nodeId];
        n.state = (n.state & ~(uint256(0xff) << 216)) | (uint256(uint8(status)) << 216);
    }

    /// @inheritdoc IMarketSync
    function syncRequiredStake(address owner, uint256 required) external override onlyRegistry {
        _setRequiredStake(owner, required);
    }

    /// @inheritdoc IMarketSync
    function reservedOf(uint256 nodeId) external view override returns (uint64 logicMcu, uint64 parallelMcu, uint64 neuralMcu) {
        NodeWords storage n = _nodes[nodeId];
        uint256 state = n.state;
        uint256 cap = n.capacity;
        logicMcu = uint64(cap) - uint64(state & FREE_MASK);
        parallelMcu = uint64(cap >> 64) - uint64((state >> 48) & FREE_MASK);
        neuralMcu = uint64(cap >> 128) - uint64((state >> 96) & FREE_MASK);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IMarket
    function statusOf(bytes32 id) external view override returns (Status status, uint40 deadline) {
        uint256 slot = _slots[id];
        return (Status(uint8(slot)), uint40(slot >> 8));
    }

    /// @inheritdoc IMarket
    function orderId(Order calldata order) public view override returns (bytes32) {
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

    /// @notice The EIP-712 domain separator (name "Suanwang Market", version "1", chain id, this contract).
    function domainSeparator() public view returns (bytes32) {
        // Rebuilt only after a chain split changed the chain id (as OpenZeppelin's EIP712 does).
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    /// @notice The total a deal's buyer pays: compute + transit + platform, from its Matched bytes.
    function dealTotal(bytes calldata deal) public pure returns (uint256 total) {
        if (deal.length < DEAL_HEAD_BYTES || deal.length != DEAL_HEAD_BYTES + TRANSIT_BYTES * _dealTransitCount(deal)) {
            revert InvalidEntry(0);
        }
        total = _dealTotal(deal);
    }

    // --------------------------------------------------------------- orders

    /// @inheritdoc IMarket
    function postOrder(Order calldata order) external override nonReentrant returns (bytes32 id) {
        if (msg.sender != order.buyer) revert Unauthorized(bytes32(0), msg.sender, order.buyer);
        id = orderId(order);
        uint256 slot = _slots[id];
        if (slot != 0) revert OrderAlreadyUsed(id, Status(uint8(slot)));
        if (block.timestamp > order.expiry) revert OrderExpired(id, order.expiry);
        if (order.epoch != _epoch) revert EpochMismatch(id, order.epoch, _epoch);
        _requireRole(msg.sender, Roles.BUYER);
        uint256 locked = _stage == 1 ? 0 : order.maxTotal;
        _slots[id] = _pack(_postedHash(id, locked), Status.Posted, order.expiry);
        emit OrderPosted(id, msg.sender, order, locked);
        if (locked != 0) {
            uint256 available = _balanceOf(msg.sender);
            uint256 fromBalance = available < locked ? available : locked;
            if (fromBalance != 0) _debit(msg.sender, fromBalance);
            if (locked > fromBalance) _pull(msg.sender, locked - fromBalance);
        }
    }

    /// @inheritdoc IMarket
    function cancelOrder(Order calldata order, uint256 locked) external override {
        bytes32 id = orderId(order);
        if (msg.sender != order.buyer) revert Unauthorized(id, msg.sender, order.buyer);
        uint256 slot = _slots[id];
        if (slot == 0) {
            // A signed order never submitted: burn it so no matcher can use it.
            _slots[id] = _pack(0, Status.Cancelled, 0);
            emit OrderCancelled(id, msg.sender, 0);
            return;
        }
        _closePosted(id, slot, order.buyer, locked);
    }

    /// @inheritdoc IMarket
    function expireOrder(Order calldata order, uint256 locked) external override {
        bytes32 id = orderId(order);
        uint256 slot = _slots[id];
        if (block.timestamp <= order.expiry) revert DeadlineNotReached(id, order.expiry);
        _closePosted(id, slot, order.buyer, locked);
    }

    /// @inheritdoc IMarket
    function cancelAllOrders() external override {
        Account storage a = _accounts[msg.sender];
        uint24 generation = a.nonceGeneration + 1;
        a.nonceGeneration = generation;
        emit NonceFloorRaised(msg.sender, uint64(generation) << NONCE_STEP_BITS);
    }

    /// @inheritdoc IMarket
    function nonceFloorOf(address buyer) external view override returns (uint64) {
        return uint64(_accounts[buyer].nonceGeneration) << NONCE_STEP_BITS;
    }

    /// @inheritdoc IMarket
    function setTransitTariff(uint96 perGbpsHour) external override {
        uint8 seat = _setTariff(msg.sender, perGbpsHour);
        emit TransitTariffSet(msg.sender, seat, perGbpsHour);
    }

    /// @inheritdoc IMarket
    function transitTariffOf(address operator) external view override returns (uint256) {
        uint256 seatPlusOne = _seatPlusOne(operator);
        return seatPlusOne == 0 ? 0 : _tariffOfSeat(seatPlusOne - 1);
    }

    function _closePosted(bytes32 id, uint256 slot, address buyer, uint256 locked) private {
        Status status = Status(uint8(slot));
        if (status != Status.Posted) revert InvalidStatus(id, status);
        if (slot & HASH_MASK != _postedHash(id, locked)) revert UnknownDeal(id);
        _slots[id] = _pack(0, Status.Cancelled, 0);
        if (locked != 0) _credit(buyer, locked);
        emit OrderCancelled(id, buyer, locked);
    }


    // ------------------------------------------------------------- matching

    /// @inheritdoc IMarket
    function matchSigned(bytes calldata entry) external override returns (bytes32 id) {
        uint256 at;
        assembly ("memory-safe") {
            at := entry.offset
        }
        uint256 end = at + entry.length;
        bytes memory failure;
        uint256 next;
        (id, failure, next) = _matchEntry(_ctx(), at, end, 0);
        if (next != end) revert InvalidEntry(0);
        if (failure.length != 0) _revertWith(failure);
    }

    /// @inheritdoc IMarket
    function matchSignedBatch(bytes calldata entries) external override returns (uint256 matched) {
        Ctx memory c = _ctx();
        uint256 at;
        uint256 scratch;
        assembly ("memory-safe") {
            at := entries.offset
            scratch := mload(0x40)
        }
        uint256 end = at + entries.length;
        for (uint256 i; at < end;) {
            (bytes32 id, bytes memory failure, uint256 next) = _matchEntry(c, at, end, i);
            unchecked {
                // Both count entries of the calldata, far below 2**256.
                if (failure.length != 0) {
                    emit MatchFailed(id, i, failure);
                } else {
                    ++matched;
                }
                ++i;
            }
            at = next;
            assembly ("memory-safe") {
                // What one match allocated is dead once it is done: the next reuses it (no memory growth).
                mstore(0x40, scratch)
            }
        }
    }

    /// @inheritdoc IMarket
    function matchPosted(Order calldata order, uint256 locked, bytes calldata bill)
        external
        override
        returns (bytes32 id)
    {
        id = orderId(order);
        uint256 slot = _slots[id];
        Status status = Status(uint8(slot));
        if (status != Status.Posted) {
            if (status == Status.None) revert UnknownDeal(id);
            revert OrderAlreadyUsed(id, status);
        }
        if (slot & HASH_MASK != _postedHash(id, locked)) revert UnknownDeal(id);
        uint256 b;
        assembly ("memory-safe") {
            b := bill.offset
        }
        if (bill.length < BILL_HEAD_BYTES || bill.length != BILL_HEAD_BYTES + TRANSIT_BYTES * _transitCount(b)) {
            revert InvalidEntry(0);
        }
        // Decoded (each field validated) by the ABI decoder; the same 16-word layout _decodeOrder writes.
        Order memory o = order;
        bytes memory failure = _matchValid(_ctx(), id, o, b, locked);
        if (failure.length != 0) _revertWith(failure);
    }

    function _ctx() private view returns (Ctx memory c) {
        c.matcher = msg.sender;
        c.matcherRoles = _accounts[msg.sender].roles;
        c.stage = _stage;
        c.feeBps = _feeBps;
        c.activeSeats = _activeSeats;
        c.epoch = _epoch;
    }

    /// @dev One packed entry at calldata offset `at` (IMarket: order, signature length and signature,
    ///  bill), matched: its bounds first (an entry past `end` reverts InvalidEntry(index)), then replay,
    ///  signature and every other check, then (only if all pass) the effects. Returns the order's id, the
    ///  custom error a failing check reports, ABI-encoded (empty when matched; nothing changed then, so a
    ///  batch needs no sub-call to undo a failed match), and where the next entry starts.
    function _matchEntry(Ctx memory c, uint256 at, uint256 end, uint256 index)
        private
        returns (bytes32 id, bytes memory failure, uint256 next)
    {
        uint256 sigAt = at + ORDER_BYTES + 2;
        uint256 sigLen;
        uint256 b;
        assembly ("memory-safe") {
            sigLen := shr(240, calldataload(sub(sigAt, 2)))
            b := add(sigAt, sigLen)
            // n is read before the bound is checked; it is used only if the bill's head is in bounds.
            next := add(add(b, BILL_HEAD_BYTES), mul(TRANSIT_BYTES, byte(0, calldataload(add(b, 64)))))
        }
        if (b + BILL_HEAD_BYTES > end || next > end) revert InvalidEntry(index);
        (Order memory o, bytes32 digest) = _orderDecoder()(at);
        id = digest;
        uint256 used = _slots[id];
        if (used != 0) return (id, abi.encodeWithSelector(OrderAlreadyUsed.selector, id, Status(uint8(used))), next);
        if (!_validSignature(o.buyer, id, sigAt, sigLen)) {
            return (id, abi.encodeWithSelector(InvalidSignature.selector, id, o.buyer), next);
        }
        failure = _matchValid(c, id, o, b, 0);
    }

    /// @dev The packed order at calldata `at`, unpacked into the 25 words of an Order in memory, right after
    ///  the type hash, and hashed there (EIP-712 hashStruct, then the digest with the domain). Every packed
    ///  field is exactly its type's width, so every word is clean; an autoAccept byte other than 0 or 1
    ///  gives a digest no wallet signs (InvalidSignature).
    function _decodeOrder(uint256 at) private view returns (uint256 o, bytes32 id) {
        bytes32 typeHash = ORDER_TYPEHASH;
        bytes32 structHash;
        assembly ("memory-safe") {
            function field(p, size) -> v {
                v := shr(sub(256, shl(3, size)), calldataload(p))
            }
            let base := mload(0x40)
            mstore(0x40, add(base, add(ORDER_WORDS_BYTES, 0x20)))
            mstore(base, typeHash)
            o := add(base, 0x20)
            mstore(o, field(at, 20)) // buyer
            mstore(add(o, 0x20), field(add(at, 20), 20)) // matcher
            mstore(add(o, 0x40), field(add(at, 40), 8)) // logicMcu
            mstore(add(o, 0x60), field(add(at, 48), 8)) // parallelMcu
            mstore(add(o, 0x80), field(add(at, 56), 8)) // neuralMcu
            mstore(add(o, 0xa0), field(add(at, 64), 4)) // memoryMib
            mstore(add(o, 0xc0), field(add(at, 68), 2)) // gpuModel
            mstore(add(o, 0xe0), field(add(at, 70), 2)) // gpuCount
            mstore(add(o, 0x100), field(add(at, 72), 2)) // gpuMilli
            mstore(add(o, 0x120), field(add(at, 74), 1)) // minTier
            mstore(add(o, 0x140), field(add(at, 75), 4)) // duration
            mstore(add(o, 0x160), field(add(at, 79), 4)) // minRunSeconds
            mstore(add(o, 0x180), field(add(at, 83), 16)) // maxPricePerCuHour
            mstore(add(o, 0x1a0), field(add(at, 99), 16)) // maxTotal
            mstore(add(o, 0x1c0), field(add(at, 115), 16)) // maxTransit
            mstore(add(o, 0x1e0), field(add(at, 131), 4)) // maxLatencyMs
            mstore(add(o, 0x200), field(add(at, 135), 4)) // minBandwidthMbps
            mstore(add(o, 0x220), field(add(at, 139), 1)) // autoAccept
            mstore(add(o, 0x240), field(add(at, 140), 5)) // expiry
            mstore(add(o, 0x260), field(add(at, 145), 8)) // nonce
            mstore(add(o, 0x280), field(add(at, 153), 4)) // epoch
            mstore(add(o, 0x2a0), calldataload(add(at, 157))) // specDigest
            mstore(add(o, 0x2c0), calldataload(add(at, 189))) // serviceId
            mstore(add(o, 0x2e0), field(add(at, 221), 8)) // apnId
            mstore(add(o, 0x300), field(add(at, 229), 1)) // apnSlaClass
            structHash := keccak256(base, add(ORDER_WORDS_BYTES, 0x20))
        }
        id = MessageHashUtils.toTypedDataHash(domainSeparator(), structHash);
    }

    /// @dev _decodeOrder with its pointer typed as the Order it points to. A function-type cast (as Seaport's
    ///  ConsiderationDecoder types its decoded structs): an `Order memory` return variable would first
    ///  allocate and zero-fill 25 words that the decoder then replaces.
    function _orderDecoder() private pure returns (function(uint256) view returns (Order memory, bytes32) typed) {
        function(uint256) view returns (uint256, bytes32) raw = _decodeOrder;
        assembly ("memory-safe") {
            typed := raw
        }
    }

    /// @dev The checks of a decoded order and its packed bill (calldata `b`, in bounds), then the effects.
    function _matchValid(Ctx memory c, bytes32 id, Order memory o, uint256 b, uint256 prepaid)
        private
        returns (bytes memory failure)
    {
        if (block.timestamp > o.expiry) return abi.encodeWithSelector(OrderExpired.selector, id, o.expiry);
        if (o.epoch != c.epoch) return abi.encodeWithSelector(EpochMismatch.selector, id, o.epoch, c.epoch);
        if (o.matcher != address(0) && o.matcher != c.matcher) {
            return abi.encodeWithSelector(MatcherNotAllowed.selector, id, c.matcher, o.matcher);
        }
        uint256 n = _transitCount(b);
        // slither-disable-next-line incorrect-equality
        if (n == 0 || n > MAX_TRANSIT) return abi.encodeWithSelector(InvalidTransit.selector, n, n, MAX_TRANSIT);
        // Order fields compared with zero, not balances (slither's incorrect-equality false positive: it
        // follows the order's memory back to the decoder's assembly).
        // slither-disable-next-line incorrect-equality
        if (o.duration == 0 || (o.logicMcu | o.parallelMcu | o.neuralMcu) == 0) {
            return abi.encodeWithSelector(EmptyOrder.selector, id);
        }
        if (o.minRunSeconds > o.duration) return abi.encodeWithSelector(InvalidOrderField.selector, id, "minRunSeconds");
        if (o.gpuMilli > MILLI_GPU) return abi.encodeWithSelector(InvalidOrderField.selector, id, "gpuMilli");
        address seller;
        (failure, seller) = _matchOnNode(c, id, o, b, n, prepaid);
        // An empty failure means every check passed (no balance involved; same false positive as above).
        // slither-disable-next-line incorrect-equality
        if (failure.length == 0) _record(c.matcher, id, o, b, n, seller, c.stage == 1);
    }

    /// @dev The node, role, bill, stake and balance checks of a match, then its effects. The buyer's and the
    ///  seller's Account words (Escrow's layout) are each read once, for their roles and then their balance
    ///  or stake, and the buyer's is rewritten from that word: one SLOAD each instead of one per field.
    function _matchOnNode(Ctx memory c, bytes32 id, Order memory o, uint256 b, uint256 n, uint256 prepaid)
        private
        returns (bytes memory failure, address seller)
    {
        NodeWords storage node = _nodes[_billNodeId(b)];
        uint256 state = node.state;
        failure = _checkCapacity(_billNodeId(b), state, o);
        if (failure.length != 0) return (failure, address(0));
        uint256 total;
        uint256 computeFee;
        uint256 buyerSlot = _accountSlot(o.buyer);
        uint256 buyerWord = _sload(buyerSlot);
        uint256 sellerWord;
        {
            uint256 floor = (buyerWord >> 232) << NONCE_STEP_BITS;
            if (o.nonce < floor) return (abi.encodeWithSelector(NonceBelowFloor.selector, id, o.nonce, floor), address(0));
            uint256 terms = node.terms;
            seller = address(uint160(terms));
            sellerWord = _sload(_accountSlot(seller));
            failure = _checkRoles(c, o.buyer, buyerWord, seller, sellerWord);
            if (failure.length != 0) return (failure, address(0));
            (failure, computeFee, total) = _checkBill(c, o, b, n, state, terms >> 160);
            if (failure.length != 0) return (failure, address(0));
        }
        failure = _fund(o.buyer, buyerSlot, buyerWord, seller, sellerWord, computeFee, total, prepaid, c.stage == 1);
        if (failure.length != 0) return (failure, address(0));
        // Each demanded amount is at most its field's free amount (checked above), so subtracting the
        // packed demand borrows across no field.
        unchecked {
            node.state = state
                - (uint256(o.logicMcu) | (uint256(o.parallelMcu) << 48) | (uint256(o.neuralMcu) << 96));
        }
    }

    /// @dev From stage 2: checks that the seller's spare stake covers this deal's lock (its compute fee, the
    ///  most a timeout slashes) and the buyer's balance, then takes the bill's total from the buyer's balance
    ///  (less what a posted order locked; any excess lock is credited back) and locks the seller's stake.
    ///  Stage 1 moves nothing (a posted order's lock, always 0 there, is returned). `buyerWord` and
    ///  `sellerWord` are their Account words as read before any write of this match.
    function _fund(
        address buyer,
        uint256 buyerSlot,
        uint256 buyerWord,
        address seller,
        uint256 sellerWord,
        uint256 computeFee,
        uint256 total,
        uint256 prepaid,
        bool valueless
    ) private returns (bytes memory failure) {
        if (valueless) {
            if (prepaid != 0) _credit(buyer, prepaid);
            return failure; // unassigned: the empty bytes at 0x60, nothing allocated
        }
        // spareStake: bits 128-223 of the Account word, signed.
        int256 spare = int96(uint96(sellerWord >> 128));
        if (spare < 0 || uint256(spare) < computeFee) {
            uint256 required = _requiredStake[seller];
            return abi.encodeWithSelector(
                InsufficientStake.selector, seller, uint256(spare + int256(required)), required, computeFee
            );
        }
        if (total > prepaid) {
            uint256 balance = uint128(buyerWord);
            uint256 owed = total - prepaid;
            if (balance < owed) return abi.encodeWithSelector(InsufficientBalance.selector, buyer, balance, owed);
            // The balance is the word's low 128 bits and owed <= balance (checked above): subtracting owed
            // from the whole word borrows nothing from the stake, roles and generation above it. Nothing
            // wrote the buyer's word since it was read: a match credits nobody before this.
            _sstore(buyerSlot, buyerWord - owed);
        } else if (prepaid > total) {
            _credit(buyer, prepaid - total);
        }
        // After the buyer's write, through storage: a buyer that is its own seller has one word.
        // computeFee <= spare < 2**95 (checked above).
        _addSpareStake(seller, -int256(computeFee));
        return failure; // unassigned: the empty bytes at 0x60, nothing allocated
    }

    /// @dev The node takes orders and has the free capacity the order asks for, per class.
    function _checkCapacity(uint256 nodeId, uint256 state, Order memory order) private pure returns (bytes memory failure) {
        INodeRegistry.NodeStatus status = INodeRegistry.NodeStatus(uint8(state >> 216));
        if (status != INodeRegistry.NodeStatus.Active) {
            if (status == INodeRegistry.NodeStatus.None) return abi.encodeWithSelector(UnknownNode.selector, nodeId);
            return abi.encodeWithSelector(InvalidNodeStatus.selector, nodeId, status);
        }
        uint256 free = state & FREE_MASK;
        if (order.logicMcu > free) return _insufficient(nodeId, 0, order.logicMcu, free);
        free = (state >> 48) & FREE_MASK;
        if (order.parallelMcu > free) return _insufficient(nodeId, 1, order.parallelMcu, free);
        free = (state >> 96) & FREE_MASK;
        if (order.neuralMcu > free) return _insufficient(nodeId, 2, order.neuralMcu, free);
        return failure; // unassigned: the empty bytes at 0x60, nothing allocated
    }

    function _insufficient(uint256 nodeId, uint8 class, uint64 asked, uint256 free) private pure returns (bytes memory) {
        return abi.encodeWithSelector(InsufficientCapacity.selector, nodeId, class, asked, uint64(free));
    }

    /// @dev The matcher holds MATCHER, the buyer BUYER, the seller a role that sells at this stage (roles as
    ///  mirrored from the Federation: bits 224-231 of an Account word, given for the buyer and the seller).
    function _checkRoles(Ctx memory c, address buyer, uint256 buyerWord, address seller, uint256 sellerWord)
        private
        pure
        returns (bytes memory failure)
    {
        if (c.matcherRoles & Roles.MATCHER != Roles.MATCHER) {
            return abi.encodeWithSelector(MissingRole.selector, c.matcher, Roles.MATCHER, c.matcherRoles);
        }
        uint8 held = uint8(buyerWord >> 224);
        if (held & Roles.BUYER != Roles.BUYER) return abi.encodeWithSelector(MissingRole.selector, buyer, Roles.BUYER, held);
        uint8 sellers = c.stage >= 3 ? Roles.CLOUD | Roles.PROVIDER | Roles.OPERATOR : Roles.CLOUD;
        held = uint8(sellerWord >> 224);
        if (held & sellers == 0) return abi.encodeWithSelector(MissingRole.selector, seller, sellers, held);
        return failure; // unassigned: the empty bytes at 0x60, nothing allocated
    }

    /// @dev The node fits the order and the bill at `b` is exact (Splits): the compute and platform fees,
    ///  and each transit entry a distinct active seat charging its published tariff for the order's
    ///  bandwidth and duration, the node's operator among them; returns the compute fee and the total.
    function _checkBill(Ctx memory c, Order memory order, uint256 b, uint256 n, uint256 state, uint256 price)
        private
        view
        returns (bytes memory failure, uint256 computeFee, uint256 total)
    {
        uint256 nodeId = _billNodeId(b);
        if (price > order.maxPricePerCuHour) {
            return (abi.encodeWithSelector(PriceAboveLimit.selector, nodeId, price, order.maxPricePerCuHour), 0, 0);
        }
        failure = _checkFit(nodeId, state, order);
        if (failure.length != 0) return (failure, 0, 0);
        unchecked {
            // Three uint64 sum below 2**66; the price is the terms word's top 96 bits.
            uint128 mcu = uint128(order.logicMcu) + order.parallelMcu + order.neuralMcu;
            computeFee = Splits.computeFee(uint96(price), mcu, order.duration);
        }
        uint256 billed = _word(b + 32, 16);
        if (billed != computeFee) return (abi.encodeWithSelector(ComputeFeeMismatch.selector, computeFee, billed), 0, 0);
        // computeFee < 2**256 / 3,600,000 < 2**235.
        uint256 platformFee = Splits.platformFee(uint240(computeFee), c.feeBps);
        billed = _word(b + 48, 16);
        if (billed != platformFee) return (abi.encodeWithSelector(PlatformFeeMismatch.selector, platformFee, billed), 0, 0);
        uint256 transit;
        (failure, transit) = _checkTransit(c, order, b, n, (state >> 224) & 0xff);
        if (failure.length != 0) return (failure, 0, 0);
        if (transit > order.maxTransit) {
            return (abi.encodeWithSelector(TransitAboveLimit.selector, transit, order.maxTransit), 0, 0);
        }
        // Two fees below 2**128 and at most MAX_TRANSIT below 2**128: no overflow.
        total = computeFee + platformFee + transit;
        if (total > order.maxTotal) return (abi.encodeWithSelector(BillAboveLimit.selector, total, order.maxTotal), 0, 0);
    }

    /// @dev The node's memory, GPUs and tier meet the order's (a GPU share needs a GPU).
    function _checkFit(uint256 nodeId, uint256 state, Order memory order) private pure returns (bytes memory failure) {
        uint256 has = uint32(state >> 144);
        if (has < order.memoryMib) return _doesNotFit(nodeId, "memoryMib", has, order.memoryMib);
        has = uint16(state >> 176);
        if (order.gpuModel != 0 && has != order.gpuModel) return _doesNotFit(nodeId, "gpuModel", has, order.gpuModel);
        has = uint16(state >> 192);
        uint256 gpus = uint256(order.gpuCount) + (order.gpuMilli != 0 ? 1 : 0);
        if (has < gpus) return _doesNotFit(nodeId, "gpuCount", has, gpus);
        has = uint8(state >> 208);
        if (has < order.minTier) return _doesNotFit(nodeId, "tier", has, order.minTier);
        return failure; // unassigned: the empty bytes at 0x60, nothing allocated
    }

    /// @dev The bill's n transit entries: distinct seats, each held by an OPERATOR member (its seat's active
    ///  bit), each fee its seat's tariff x Mbps x seconds / 3,600,000, and the node's operator's seat among
    ///  them. Returns the transit total. The tariff sits in the seat's credit word (Escrow), which
    ///  settlement rewrites anyway: the read is the only cost.
    function _checkTransit(Ctx memory c, Order memory order, uint256 b, uint256 n, uint256 nodeSeat)
        private
        view
        returns (bytes memory failure, uint256 transit)
    {
        uint256 seen;
        uint256 reserved = uint256(order.minBandwidthMbps) * order.duration;
        for (uint256 i; i < n;) {
            uint256 seat = _word(b + BILL_HEAD_BYTES + i, 1);
            // A seat past the last is never active (a shift by 96 or more gives 0).
            if ((c.activeSeats >> seat) & 1 != 1) {
                (address operator, uint8 roles) = _seatHolderRoles(seat);
                return (abi.encodeWithSelector(MissingRole.selector, operator, Roles.OPERATOR, roles), 0);
            }
            if ((seen >> seat) & 1 != 0) return (abi.encodeWithSelector(DuplicateTransitSeat.selector, seat), 0);
            seen |= 1 << seat;
            // tariff < 2**96 and reserved < 2**64: the product fits.
            uint256 expected = (_tariffOfSeat(seat) * reserved) / MBPS_SECONDS_PER_GBPS_HOUR;
            uint256 billed = _word(b + BILL_HEAD_BYTES + n + 16 * i, 16);
            if (billed != expected) {
                return (abi.encodeWithSelector(TransitFeeMismatch.selector, seat, expected, billed), 0);
            }
            unchecked {
                // At most MAX_TRANSIT fees below 2**128 each.
                transit += billed;
                ++i;
            }
        }
        if (nodeSeat >= 96 || (seen >> nodeSeat) & 1 == 0) {
            return (abi.encodeWithSelector(NodeOperatorNotOnPath.selector, _billNodeId(b), nodeSeat), 0);
        }
    }

    function _doesNotFit(uint256 nodeId, string memory what, uint256 has, uint256 needs) private pure returns (bytes memory) {
        return abi.encodeWithSelector(NodeDoesNotFit.selector, nodeId, what, has, needs);
    }

    /// @dev The buyer's signature of `id` (calldata `sigAt`, `sigLen` bytes): an ECDSA signature (r | s | v,
    ///  65 bytes, low s, as OpenZeppelin's ECDSA.tryRecover requires) recovered with the ecrecover
    ///  precompile, else an ERC-1271 signature when the buyer is a contract, checked with at most
    ///  ERC1271_GAS. Recovery comes first so an EOA buyer costs no EXTCODESIZE of a cold account (2,600
    ///  gas); a contract buyer cannot pass the ECDSA branch (nobody holds a key whose address is its address).
    function _validSignature(address buyer, bytes32 id, uint256 sigAt, uint256 sigLen) private view returns (bool) {
        // A signature's length and the buyer's code size, not balances (slither's incorrect-equality false
        // positive on values read in assembly).
        // slither-disable-next-line incorrect-equality
        if (sigLen == 65) {
            bytes32 r;
            bytes32 s;
            uint8 v;
            assembly ("memory-safe") {
                r := calldataload(sigAt)
                s := calldataload(add(sigAt, 0x20))
                v := byte(0, calldataload(add(sigAt, 0x40)))
            }
            // The upper half of s is refused (malleable), as OpenZeppelin's ECDSA does; ecrecover returns 0
            // for any other failure, which no buyer equals.
            if (uint256(s) <= 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0) {
                address recovered = ecrecover(id, v, r, s);
                if (recovered != address(0) && recovered == buyer) return true;
            }
        }
        // slither-disable-next-line incorrect-equality
        if (buyer.code.length == 0) return false;
        bytes4 magic = IERC1271.isValidSignature.selector;
        bool valid;
        assembly ("memory-safe") {
            // isValidSignature(id, signature) built at the free memory pointer (not claimed); only the first
            // word of the answer is copied, so a huge return costs the wallet, not the batch.
            let p := mload(0x40)
            mstore(p, magic)
            mstore(add(p, 4), id)
            mstore(add(p, 36), 0x40)
            mstore(add(p, 68), sigLen)
            calldatacopy(add(p, 100), sigAt, sigLen)
            mstore(0x00, 0)
            let ok := staticcall(ERC1271_GAS, buyer, p, add(100, sigLen), 0x00, 0x20)
            valid := and(ok, and(gt(returndatasize(), 31), eq(mload(0x00), magic)))
        }
        return valid;
    }

    function _revertWith(bytes memory failure) private pure {
        assembly ("memory-safe") {
            revert(add(failure, 0x20), mload(failure))
        }
    }

    /// @dev Emits Matched with the deal packed (IMarket.Matched) and stores the deal's slot: its status,
    ///  deadline and the top bits of keccak256(id ++ the packed deal), the bytes every later call passes
    ///  back. The packing is built at the free memory pointer (not claimed) from the decoded order and the
    ///  bill's calldata: the bill's tail (n, operators, fees) is the deal's tail, copied as is.
    function _record(address matcher, bytes32 id, Order memory o, uint256 b, uint256 n, address seller, bool valueless)
        private
    {
        bool autoAccept = o.autoAccept;
        Status status = autoAccept ? Status.Accepted : Status.Proposed;
        uint40 deadline = uint40(block.timestamp) + (autoAccept ? startWindow : acceptWindow);
        bytes32 topic = Matched.selector;
        uint256 h;
        assembly ("memory-safe") {
            // Event data at e: offset 0x20, length, the packed bytes at q. Each field is stored left-aligned
            // (the shift drops any dirty high bits of a stack value), so the next one overwrites the zeros
            // that trail it.
            let e := mload(0x40)
            let q := add(e, 0x40)
            mstore(q, shl(96, mload(o))) // buyer
            mstore(add(q, 20), shl(96, seller))
            mstore(add(q, 40), shl(96, matcher))
            mstore(add(q, 60), calldataload(b)) // nodeId
            mstore(add(q, 92), shl(192, mload(add(o, 0x40)))) // logicMcu
            mstore(add(q, 100), shl(192, mload(add(o, 0x60)))) // parallelMcu
            mstore(add(q, 108), shl(192, mload(add(o, 0x80)))) // neuralMcu
            mstore(add(q, 116), shl(224, mload(add(o, 0x140)))) // duration
            mstore(add(q, 120), shl(224, mload(add(o, 0x160)))) // minRunSeconds
            mstore(add(q, 124), shl(224, mload(add(o, 0x1e0)))) // maxLatencyMs
            mstore(add(q, 128), shl(248, iszero(iszero(valueless))))
            calldatacopy(add(q, 129), add(b, 32), 32) // computeFee, platformFee
            mstore(add(q, 161), shl(248, status))
            mstore(add(q, 162), shl(216, deadline))
            let len := add(DEAL_HEAD_BYTES, mul(TRANSIT_BYTES, n))
            calldatacopy(add(q, 167), add(b, 64), add(1, mul(TRANSIT_BYTES, n))) // n, seats, fees
            mstore(add(q, len), 0) // zero padding up to the next word
            mstore(sub(q, 0x20), id)
            h := keccak256(sub(q, 0x20), add(len, 0x20))
            mstore(e, 0x20)
            mstore(add(e, 0x20), len)
            log2(e, add(0x40, and(add(len, 31), not(31))), topic, id)
        }
        _slots[id] = _pack(h & HASH_MASK, status, deadline);
    }

    /// @dev The bill at calldata `b`: its node, its number of transit operators, operator `i`.
    function _billNodeId(uint256 b) private pure returns (uint256 nodeId) {
        assembly ("memory-safe") {
            nodeId := calldataload(b)
        }
    }

    function _transitCount(uint256 b) private pure returns (uint256) {
        return _word(b + 64, 1);
    }

    /// @dev The `size`-byte big-endian field at calldata offset `at`.
    function _word(uint256 at, uint256 size) private pure returns (uint256 v) {
        assembly ("memory-safe") {
            v := shr(sub(256, shl(3, size)), calldataload(at))
        }
    }

    // ------------------------------------------------------------ lifecycle

    /// @inheritdoc IMarket
    function accept(bytes32 id, bytes calldata deal) external override {
        (uint256 slot, Status status, uint40 deadline) = _load(id, deal);
        _only(id, _dealBuyer(deal));
        _expect(id, status, Status.Proposed);
        _before(id, deadline);
        _move(id, slot, Status.Accepted, uint40(block.timestamp) + startWindow);
    }

    /// @inheritdoc IMarket
    function reject(bytes32 id, bytes calldata deal) external override {
        (uint256 slot, Status status,) = _load(id, deal);
        _only(id, _dealBuyer(deal));
        _expect(id, status, Status.Proposed);
        _refundAndRelease(id, slot, deal, false);
    }

    /// @inheritdoc IMarket
    function decline(bytes32 id, bytes calldata deal) external override {
        (uint256 slot, Status status, uint40 deadline) = _load(id, deal);
        _only(id, _dealSeller(deal));
        _expect(id, status, Status.Accepted);
        // Past the start deadline the seller is a no-show: only `timeout` (which slashes) remains.
        _before(id, deadline);
        _refundAndRelease(id, slot, deal, false);
    }

    /// @inheritdoc IMarket
    function start(bytes32 id, bytes calldata deal) external override {
        (uint256 slot, Status status, uint40 deadline) = _load(id, deal);
        _only(id, _dealSeller(deal));
        _expect(id, status, Status.Accepted);
        _before(id, deadline);
        _move(id, slot, Status.Started, uint40(block.timestamp) + uint40(_field(deal, D_DURATION, 4)) + deliveryGrace);
    }

    /// @inheritdoc IMarket
    function complete(bytes32 id, bytes calldata deal, string calldata resultCid) external override {
        (uint256 slot, Status status, uint40 deadline) = _load(id, deal);
        _only(id, _dealSeller(deal));
        _expect(id, status, Status.Started);
        _before(id, deadline);
        // The Started deadline is start + duration + grace, so the start is derived, not stored.
        uint256 duration = _field(deal, D_DURATION, 4);
        uint256 startedAt = deadline - duration - deliveryGrace;
        uint256 minRun = _field(deal, D_MIN_RUN, 4);
        if (block.timestamp < startedAt + minRun) revert TooEarlyToComplete(id, uint40(startedAt + minRun));
        // Completing early lowers the bill; waiting past the duration does not raise it.
        uint256 used = block.timestamp - startedAt;
        if (used > duration) used = duration;
        uint40 disputeUntil = uint40(block.timestamp) + disputeWindow;
        _slots[id] = _pack(slot | (used << USED_SHIFT), Status.Completed, disputeUntil);
        emit Completed(id, disputeUntil, uint32(used), resultCid); // says the status too: no DealStatusChanged
        _release(deal);
    }

    /// @inheritdoc IMarket
    function settle(bytes32 id, bytes calldata deal) external override {
        (uint256 slot, Status status, uint40 deadline) = _load(id, deal);
        _expect(id, status, Status.Completed);
        if (msg.sender != _dealBuyer(deal) && block.timestamp <= deadline) revert DeadlineNotReached(id, deadline);
        _payout(id, slot, deal, Payout.Full, Status.Settled, 0);
    }

    /// @inheritdoc IMarket
    function dispute(bytes32 id, bytes calldata deal) external override {
        (uint256 slot, Status status, uint40 deadline) = _load(id, deal);
        address buyer = _dealBuyer(deal);
        _only(id, buyer);
        _expect(id, status, Status.Completed);
        _before(id, deadline);
        uint256 bond = _dealValueless(deal) ? 0 : (_dealTotal(deal) * disputeBondBps) / Splits.BPS;
        _disputes[id] = bond | (block.number << 128);
        _move(id, slot, Status.Disputed, uint40(block.timestamp) + arbitrationPeriod);
        emit Disputed(id, bond, block.number);
        if (bond != 0) _debit(buyer, bond);
    }

    /// @inheritdoc IMarket
    function resolve(bytes32 id, bytes calldata deal, bool sellerWins) external override {
        (uint256 slot, Status status, uint40 deadline) = _load(id, deal);
        _expect(id, status, Status.Disputed);
        _before(id, deadline);
        address drawn = _drawArbiter(id, deal);
        // slither-disable-next-line incorrect-equality
        if (drawn == address(0) || msg.sender != drawn) revert NotDrawnArbiter(id, msg.sender, drawn);
        uint256 bond = _closeDispute(id);
        if (sellerWins) {
            _payout(id, slot, deal, Payout.Full, Status.Settled, 0);
            if (bond != 0) _credit(_dealSeller(deal), bond);
        } else {
            _payout(id, slot, deal, Payout.Full, Status.Refunded, bond);
        }
    }

    /// @inheritdoc IMarket
    function timeout(bytes32 id, bytes calldata deal) external override {
        (uint256 slot, Status status, uint40 deadline) = _load(id, deal);
        if (block.timestamp <= deadline) revert DeadlineNotReached(id, deadline);
        // Statuses compared with constants (slither's incorrect-equality false positive, as in _load).
        // slither-disable-next-line incorrect-equality
        if (status == Status.Proposed) {
            _refundAndRelease(id, slot, deal, false);
            // slither-disable-next-line incorrect-equality
        } else if (status == Status.Accepted || status == Status.Started) {
            // The seller missed its start or delivery deadline: the only case that slashes.
            _refundAndRelease(id, slot, deal, true);
            // slither-disable-next-line incorrect-equality
        } else if (status == Status.Disputed) {
            // No arbiter ruled in time. Neither side's claim was tested, so neither wins: the time used is
            // split half and half (Payout.Halved) and the bond goes back, so stalling helps nobody.
            uint256 bond = _closeDispute(id);
            _payout(id, slot, deal, Payout.Halved, Status.Settled, bond);
        } else {
            revert InvalidStatus(id, status);
        }
    }

    /// @inheritdoc IMarket
    function reportSlaBreach(bytes32 id, bytes calldata deal, uint32 measuredUs) external override {
        (uint256 slot, Status status,) = _load(id, deal);
        // slither-disable-next-line incorrect-equality
        if (status != Status.Started && status != Status.Completed && status != Status.Disputed) {
            revert InvalidStatus(id, status);
        }
        if (!_namesTransitOperator(deal, msg.sender)) revert Unauthorized(id, msg.sender, address(0));
        uint32 boundMs = uint32(_field(deal, D_MAX_LATENCY, 4));
        if (uint256(measuredUs) <= uint256(boundMs) * 1000) revert SlaNotBroken(id, measuredUs, boundMs);
        _slots[id] = slot | SLA_BREACHED;
        emit SlaBreached(id, msg.sender, measuredUs, boundMs);
    }

    /// @inheritdoc IMarket
    function arbiterOf(bytes32 id, bytes calldata deal) external view override returns (address) {
        (, Status status,) = _load(id, deal);
        return status == Status.Disputed ? _drawArbiter(id, deal) : address(0);
    }

    // ------------------------------------------------------------ internals

    /// @dev Refunds a deal that never delivered (rejected, declined, timed out before completion): the buyer
    ///  gets its whole bill back, the node its capacity, and the seller its stake lock unless `slash`.
    function _refundAndRelease(bytes32 id, uint256 slot, bytes calldata deal, bool slash) private {
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
                _addSpareStake(_dealSeller(deal), int256(lock));
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
    function _release(bytes calldata deal) private {
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
        private
    {
        if (final_ == Status.Settled) {
            _slots[id] = _pack(slot, Status.Settled, 0); // Settled says the status: no DealStatusChanged
        } else {
            _move(id, slot, final_, 0);
        }
        uint256 computeFee = _field(deal, D_COMPUTE_FEE, 16);
        uint256 platformFee = _field(deal, D_PLATFORM_FEE, 16);
        uint256 computePaid;
        uint256 platformPaid;
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
            _addSpareStake(seller, int256(computeFee));
            if (platformPaid != 0) _accrueFees(platformPaid);
            if (refunded != 0) _credit(_dealBuyer(deal), refunded);
        }
        emit Settled(id, computePaid, transitPaid, platformPaid, refunded, valueless);
    }

    /// @dev The deal's transit total, each fee credited to its seat's operator when `pay`.
    function _payTransit(bytes calldata deal, bool pay) private returns (uint256 total) {
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
    function _closeDispute(bytes32 id) private returns (uint256 bond) {
        bond = uint128(_disputes[id]);
        delete _disputes[id];
    }

    /// @dev The seller forfeits the deal's stake lock: half (rounded down) to the buyer, the rest to the
    ///  platform. The lock was taken out of the seller's spare stake at the match, so nothing else moves.
    function _slash(bytes32 id, bytes calldata deal, uint256 lock) private {
        (uint256 toBuyer, uint256 toPlatform) = Splits.slashShares(lock);
        if (toBuyer != 0) _credit(_dealBuyer(deal), toBuyer);
        if (toPlatform != 0) _accrueFees(toPlatform);
        emit Slashed(id, _dealSeller(deal), toBuyer, toPlatform);
    }

    /// @dev The arbiter drawn for disputed deal `id` now: from the hash of block disputedAt + 1 + 256k, k the
    ///  number of whole 256-block windows since (blockhash reaches back 256 blocks), so no party knows its
    ///  arbiter when it acts; the first eligible ARBITER from that point of the list on.
    function _drawArbiter(bytes32 id, bytes calldata deal) private view returns (address) {
        uint256 disputedAt = _disputes[id] >> 128;
        uint256 count = _arbiters.length;
        // slither-disable-next-line incorrect-equality
        if (block.number < disputedAt + 2 || count == 0) return address(0);
        uint256 seedBlock = disputedAt + 1 + ((block.number - disputedAt - 2) / 256) * 256;
        // A block hash mined after the dispute: its proposer could steer it, neither party can.
        // slither-disable-next-line weak-prng
        uint256 first = uint256(keccak256(abi.encode(id, blockhash(seedBlock)))) % count;
        for (uint256 k; k < count; ++k) {
            address candidate = _arbiters[(first + k) % count];
            if (!_conflicted(candidate, deal)) return candidate;
        }
        return address(0);
    }

    /// @dev Whether `who` is a party to the deal or gains from its outcome: its buyer, seller, matcher, a
    ///  transit operator of its path, or the platform fee recipient.
    function _conflicted(address who, bytes calldata deal) private view returns (bool) {
        if (who == _dealBuyer(deal) || who == _dealSeller(deal) || who == feeRecipient) return true;
        if (who == address(uint160(_field(deal, 40, 20)))) return true; // matcher
        return _namesTransitOperator(deal, who);
    }

    /// @dev Whether `who` holds one of the deal's transit seats.
    function _namesTransitOperator(bytes calldata deal, address who) private view returns (bool) {
        uint256 seatPlusOne = _seatPlusOne(who);
        // slither-disable-next-line incorrect-equality
        if (seatPlusOne == 0) return false;
        uint256 n = _dealTransitCount(deal);
        for (uint256 i; i < n; ++i) {
            if (_field(deal, DEAL_HEAD_BYTES + i, 1) == seatPlusOne - 1) return true;
        }
        return false;
    }

    /// @dev The deal's slot, after checking `deal` is the deal `id` recorded: keccak256(id ++ deal) must
    ///  match the stored hash bits. Any other bytes (another length, another field) hash differently, so
    ///  the fields read from `deal` afterwards are the ones Matched emitted.
    function _load(bytes32 id, bytes calldata deal) private view returns (uint256 slot, Status status, uint40 deadline) {
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
    function _field(bytes calldata deal, uint256 offset, uint256 size) private pure returns (uint256 v) {
        assembly ("memory-safe") {
            v := shr(sub(256, shl(3, size)), calldataload(add(deal.offset, offset)))
        }
    }

    function _dealBuyer(bytes calldata deal) private pure returns (address) {
        return address(uint160(_field(deal, 0, 20)));
    }

    function _dealSeller(bytes calldata deal) private pure returns (address) {
        return address(uint160(_field(deal, 20, 20)));
    }

    function _dealValueless(bytes calldata deal) private pure returns (bool) {
        return _field(deal, D_VALUELESS, 1) != 0;
    }

    function _dealTransitCount(bytes calldata deal) private pure returns (uint256) {
        return _field(deal, D_TRANSIT_COUNT, 1);
    }

    function _dealTotal(bytes calldata deal) private pure returns (uint256 total) {
        total = _field(deal, D_COMPUTE_FEE, 16) + _field(deal, D_PLATFORM_FEE, 16);
        uint256 n = _dealTransitCount(deal);
        for (uint256 i; i < n; ++i) {
            total += _field(deal, DEAL_HEAD_BYTES + n + 16 * i, 16);
        }
    }

    function _move(bytes32 id, uint256 slot, Status status, uint40 deadline) private {
        _slots[id] = _pack(slot, status, deadline);
        emit DealStatusChanged(id, status, deadline);
    }

    function _only(bytes32 id, address expected) private view {
        if (msg.sender != expected) revert Unauthorized(id, msg.sender, expected);
    }

    function _expect(bytes32 id, Status status, Status expected) private pure {
        if (status != expected) revert InvalidStatus(id, status);
    }

    function _before(bytes32 id, uint40 deadline) private view {
        if (block.timestamp > deadline) revert DeadlinePassed(id, deadline);
    }

    /// @dev Keeps the bits of `slot` above the deadline (hash, seconds used, SLA flag), sets status and deadline.
    function _pack(uint256 slot, Status status, uint40 deadline) private pure returns (uint256) {
        return (slot & KEPT_MASK) | (uint256(deadline) << 8) | uint256(uint8(status));
    }

    /// @dev A posted order's slot commits to its id (which commits to the order) and its lock.
    function _postedHash(bytes32 id, uint256 locked) private pure returns (uint256) {
        return uint256(keccak256(abi.encode(id, locked))) & HASH_MASK;
    }

    function _requireRole(address account, uint8 role) private view {
        uint8 held = _accounts[account].roles;
        if (held & role != role) revert MissingRole(account, role, held);
    }
}
