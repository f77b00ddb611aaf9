// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
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
    /// @notice Windows of the lifecycle, in seconds.
    struct Timing {
        uint32 acceptWindow; // Proposed -> buyer must accept
        uint32 startWindow; // Accepted -> seller must start
        uint32 deliveryGrace; // Started -> seller must complete within duration + this
        uint32 disputeWindow; // Completed -> buyer may dispute
        uint32 arbitrationPeriod; // Disputed -> arbiter must rule
    }

    bytes32 public constant ORDER_TYPEHASH = keccak256(
        "Order(address buyer,uint64 logicMcu,uint64 parallelMcu,uint64 neuralMcu,uint32 memoryMib,uint16 gpuModel,uint16 gpuCount,uint8 minTier,uint32 duration,uint128 maxPricePerCuHour,uint128 maxTotal,uint32 maxLatencyMs,uint32 minBandwidthMbps,bool autoAccept,uint40 expiry,uint64 nonce)"
    );
    /// @notice At most this many transit operators per bill.
    uint256 public constant MAX_TRANSIT = 8;

    /// @dev A deal's slot: status (bits 0-7) | deadline (bits 8-47) | top 208 bits of its hash.
    uint256 private constant HASH_MASK = ~uint256(0) << 48;

    /// @dev A node's hot word (read and rewritten once per match, rewritten once at release):
    ///  free logic mCU 48 | free parallel 48 | free neural 48 | memoryMib 32 | gpuModel 16 | gpuCount 16 |
    ///  tier 8 | status 8 (bits 0-47, 48-95, 96-143, 144-175, 176-191, 192-207, 208-215, 216-223).
    ///  Free capacity never exceeds the node's capacity, which the registry keeps below 2**48 per class.
    uint256 private constant FREE_MASK = (1 << 48) - 1;
    /// @dev The lowest bit of each free field after the first, and the bit after the last.
    uint256 private constant FIELD_CARRIES = (1 << 48) | (1 << 96) | (1 << 144);
    /// @dev Packed sizes (IMarket): an order; a bill without its transit lists; a deal without them.
    uint256 private constant ORDER_BYTES = 111;
    uint256 private constant BILL_HEAD_BYTES = 65;
    uint256 private constant DEAL_HEAD_BYTES = 160;
    /// @dev Packed bytes per transit operator, in a bill and in a deal: its seat 1 | its fee 16.
    uint256 private constant TRANSIT_BYTES = 17;
    /// @dev A node's terms word (read once per match): owner 160 | pricePerCuHour 96.
    /// @dev A node's capacity word (read at release and on updates): logic 64 | parallel 64 | neural 64.
    struct NodeWords {
        uint256 state;
        uint256 terms;
        uint256 capacity;
    }

    /// @dev What a match reads once per transaction (once per batch): the matcher's roles, stage and fee.
    struct Ctx {
        address matcher;
        uint8 matcherRoles;
        uint8 stage;
        uint16 feeBps;
        uint96 activeSeats;
    }

    Federation public immutable federation;
    NodeRegistry public immutable registry;
    uint32 public immutable acceptWindow;
    uint32 public immutable startWindow;
    uint32 public immutable deliveryGrace;
    uint32 public immutable disputeWindow;
    uint32 public immutable arbitrationPeriod;

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant NAME_HASH = keccak256("Suanwang Market");
    bytes32 private constant VERSION_HASH = keccak256("1");
    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;

    mapping(bytes32 id => uint256) private _slots;
    mapping(uint256 nodeId => NodeWords) private _nodes;

    constructor(Federation federation_, NodeRegistry registry_, IERC20 token_, Timing memory timing)
        Escrow(token_, federation_.founder())
    {
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
        federation = federation_;
        registry = registry_;
        acceptWindow = timing.acceptWindow;
        startWindow = timing.startWindow;
        deliveryGrace = timing.deliveryGrace;
        disputeWindow = timing.disputeWindow;
        arbitrationPeriod = timing.arbitrationPeriod;
        // Until the Federation is wired to this market (Federation.setMarket pushes everything then).
        _stage = federation_.stage();
        _feeBps = federation_.platformFeeBps();
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
    }

    /// @inheritdoc IMarketSync
    function hasSeatFor(address member) external view override returns (bool) {
        return _hasSeatFor(member);
    }

    /// @inheritdoc IMarketSync
    function syncParams(uint8 stage_, uint16 platformFeeBps_) external override onlyFederation {
        _stage = stage_;
        _feeBps = platformFeeBps_;
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
        n.state = free | (uint256(spec.memoryMib) << 144) | (uint256(spec.gpuModel) << 176)
            | (uint256(spec.gpuCount) << 192) | (uint256(spec.tier) << 208) | (uint256(uint8(status)) << 216);
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
        // hashStruct(order) = keccak256(typeHash || the 16 fields' words), copied straight from calldata
        // (an Order is 16 static words). A word with dirty high bits gives another digest, which the buyer
        // did not sign (wallets sign the clean encoding), so it is refused as InvalidSignature; a posted
        // order is keyed by whatever id it was posted under and then reads its fields through the
        // compiler's accessors, which revert on dirty bits.
        bytes32 typeHash = ORDER_TYPEHASH;
        bytes32 structHash;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, typeHash)
            calldatacopy(add(p, 0x20), order, 0x200)
            structHash := keccak256(p, 0x220)
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

    /// @dev The packed order at calldata `at`, unpacked into the 16 words of an Order in memory, right after
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
            mstore(0x40, add(base, 0x220))
            mstore(base, typeHash)
            o := add(base, 0x20)
            mstore(o, field(at, 20)) // buyer
            mstore(add(o, 0x20), field(add(at, 20), 8)) // logicMcu
            mstore(add(o, 0x40), field(add(at, 28), 8)) // parallelMcu
            mstore(add(o, 0x60), field(add(at, 36), 8)) // neuralMcu
            mstore(add(o, 0x80), field(add(at, 44), 4)) // memoryMib
            mstore(add(o, 0xa0), field(add(at, 48), 2)) // gpuModel
            mstore(add(o, 0xc0), field(add(at, 50), 2)) // gpuCount
            mstore(add(o, 0xe0), field(add(at, 52), 1)) // minTier
            mstore(add(o, 0x100), field(add(at, 53), 4)) // duration
            mstore(add(o, 0x120), field(add(at, 57), 16)) // maxPricePerCuHour
            mstore(add(o, 0x140), field(add(at, 73), 16)) // maxTotal
            mstore(add(o, 0x160), field(add(at, 89), 4)) // maxLatencyMs
            mstore(add(o, 0x180), field(add(at, 93), 4)) // minBandwidthMbps
            mstore(add(o, 0x1a0), field(add(at, 97), 1)) // autoAccept
            mstore(add(o, 0x1c0), field(add(at, 98), 5)) // expiry
            mstore(add(o, 0x1e0), field(add(at, 103), 8)) // nonce
            structHash := keccak256(base, 0x220)
        }
        id = MessageHashUtils.toTypedDataHash(domainSeparator(), structHash);
    }

    /// @dev _decodeOrder with its pointer typed as the Order it points to. A function-type cast (as Seaport's
    ///  ConsiderationDecoder types its decoded structs): an `Order memory` return variable would first
    ///  allocate and zero-fill 16 words that the decoder then replaces.
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
        uint256 n = _transitCount(b);
        if (n > MAX_TRANSIT) return abi.encodeWithSelector(InvalidTransit.selector, n, n, MAX_TRANSIT);
        // Order fields compared with zero, not balances (slither's incorrect-equality false positive: it
        // follows the order's memory back to the decoder's assembly).
        // slither-disable-next-line incorrect-equality
        if (o.duration == 0 || (o.logicMcu | o.parallelMcu | o.neuralMcu) == 0) {
            return abi.encodeWithSelector(EmptyOrder.selector, id);
        }
        address seller;
        (failure, seller) = _matchOnNode(c, o, b, n, prepaid);
        // An empty failure means every check passed (no balance involved; same false positive as above).
        // slither-disable-next-line incorrect-equality
        if (failure.length == 0) _record(c.matcher, id, o, b, n, seller, c.stage == 1);
    }

    /// @dev The node, role, bill, stake and balance checks of a match, then its effects. The buyer's and the
    ///  seller's Account words (Escrow's layout) are each read once, for their roles and then their balance
    ///  or stake flag, and the buyer's is rewritten from that word: one SLOAD each instead of one per field.
    function _matchOnNode(Ctx memory c, Order memory o, uint256 b, uint256 n, uint256 prepaid)
        private
        returns (bytes memory failure, address seller)
    {
        NodeWords storage node = _nodes[_billNodeId(b)];
        uint256 state = node.state;
        failure = _checkCapacity(_billNodeId(b), state, o);
        if (failure.length != 0) return (failure, address(0));
        uint256 total;
        uint256 buyerSlot = _accountSlot(o.buyer);
        uint256 buyerWord = _sload(buyerSlot);
        uint256 sellerWord;
        {
            uint256 terms = node.terms;
            seller = address(uint160(terms));
            sellerWord = _sload(_accountSlot(seller));
            failure = _checkRoles(c, o.buyer, buyerWord, seller, sellerWord, b, n);
            if (failure.length != 0) return (failure, address(0));
            (failure, total) = _checkBill(o, b, state, terms >> 160, c.feeBps);
            if (failure.length != 0) return (failure, address(0));
        }
        failure = _fund(o.buyer, buyerSlot, buyerWord, seller, sellerWord, total, prepaid, c.stage == 1);
        if (failure.length != 0) return (failure, address(0));
        // Each demanded amount is at most its field's free amount (checked above), so subtracting the
        // packed demand borrows across no field.
        unchecked {
            node.state = state
                - (uint256(o.logicMcu) | (uint256(o.parallelMcu) << 48) | (uint256(o.neuralMcu) << 96));
        }
    }

    /// @dev From stage 2: checks the seller's stake and the buyer's balance, then takes the bill's total
    ///  from the buyer's balance (less what a posted order locked; any excess lock is credited back).
    ///  Stage 1 moves nothing (a posted order's lock, always 0 there, is returned). `buyerWord` and
    ///  `sellerWord` are their Account words as read before any write of this match.
    function _fund(
        address buyer,
        uint256 buyerSlot,
        uint256 buyerWord,
        address seller,
        uint256 sellerWord,
        uint256 total,
        uint256 prepaid,
        bool valueless
    ) private returns (bytes memory failure) {
        if (valueless) {
            if (prepaid != 0) _credit(buyer, prepaid);
            return failure; // unassigned: the empty bytes at 0x60, nothing allocated
        }
        if ((sellerWord >> 232) & 0xff != 0) {
            // underStaked (bits 232-239); the stake is bits 128-223.
            return abi.encodeWithSelector(
                InsufficientStake.selector, seller, uint96(sellerWord >> 128), _requiredStake[seller]
            );
        }
        if (total > prepaid) {
            uint256 balance = uint128(buyerWord);
            uint256 owed = total - prepaid;
            if (balance < owed) return abi.encodeWithSelector(InsufficientBalance.selector, buyer, balance, owed);
            // The balance is the word's low 128 bits and owed <= balance (checked above): subtracting owed
            // from the whole word borrows nothing from the stake, roles and flag above it. Nothing wrote the
            // buyer's word since it was read: a match credits nobody before this (a buyer that is its own
            // seller has one word, read twice and written once, here).
            _sstore(buyerSlot, buyerWord - owed);
        } else if (prepaid > total) {
            _credit(buyer, prepaid - total);
        }
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

    /// @dev The matcher holds MATCHER, the buyer BUYER, the seller a role that sells at this stage, each
    ///  transit operator of the bill at `b` OPERATOR (roles as mirrored from the Federation: bits 224-231 of
    ///  an Account word, given for the buyer and the seller; a transit operator's as its seat's active bit,
    ///  in the context). A failing seat's holder (address(0) for a seat nobody holds) is named in the error.
    function _checkRoles(
        Ctx memory c,
        address buyer,
        uint256 buyerWord,
        address seller,
        uint256 sellerWord,
        uint256 b,
        uint256 n
    ) private view returns (bytes memory failure) {
        if (c.matcherRoles & Roles.MATCHER != Roles.MATCHER) {
            return abi.encodeWithSelector(MissingRole.selector, c.matcher, Roles.MATCHER, c.matcherRoles);
        }
        uint8 held = uint8(buyerWord >> 224);
        if (held & Roles.BUYER != Roles.BUYER) return abi.encodeWithSelector(MissingRole.selector, buyer, Roles.BUYER, held);
        uint8 sellers = c.stage >= 3 ? Roles.CLOUD | Roles.PROVIDER | Roles.OPERATOR : Roles.CLOUD;
        held = uint8(sellerWord >> 224);
        if (held & sellers == 0) return abi.encodeWithSelector(MissingRole.selector, seller, sellers, held);
        for (uint256 i; i < n;) {
            // A seat past the last is never active (a shift by 96 or more gives 0).
            uint256 seat = _word(b + BILL_HEAD_BYTES + i, 1);
            if ((c.activeSeats >> seat) & 1 != 1) {
                (address operator, uint8 roles) = _seatHolderRoles(seat);
                return abi.encodeWithSelector(MissingRole.selector, operator, Roles.OPERATOR, roles);
            }
            unchecked {
                ++i;
            }
        }
        return failure; // unassigned: the empty bytes at 0x60, nothing allocated
    }

    /// @dev The node fits the order and the bill at `b` is exact (Splits); returns the bill's total.
    function _checkBill(Order memory order, uint256 b, uint256 state, uint256 price, uint16 feeBps)
        private
        pure
        returns (bytes memory failure, uint256 total)
    {
        uint256 nodeId = _billNodeId(b);
        if (price > order.maxPricePerCuHour) {
            return (abi.encodeWithSelector(PriceAboveLimit.selector, nodeId, price, order.maxPricePerCuHour), 0);
        }
        uint256 has = uint32(state >> 144);
        if (has < order.memoryMib) return (_doesNotFit(nodeId, "memoryMib", has, order.memoryMib), 0);
        has = uint16(state >> 176);
        if (order.gpuModel != 0 && has != order.gpuModel) return (_doesNotFit(nodeId, "gpuModel", has, order.gpuModel), 0);
        has = uint16(state >> 192);
        if (has < order.gpuCount) return (_doesNotFit(nodeId, "gpuCount", has, order.gpuCount), 0);
        has = uint8(state >> 208);
        if (has < order.minTier) return (_doesNotFit(nodeId, "tier", has, order.minTier), 0);

        uint256 computeFee;
        unchecked {
            // Three uint64 sum below 2**66; the price is the terms word's top 96 bits.
            uint128 mcu = uint128(order.logicMcu) + order.parallelMcu + order.neuralMcu;
            computeFee = Splits.computeFee(uint96(price), mcu, order.duration);
        }
        uint256 billed = _word(b + 32, 16);
        if (billed != computeFee) return (abi.encodeWithSelector(ComputeFeeMismatch.selector, computeFee, billed), 0);
        // computeFee < 2**256 / 3,600,000 < 2**235.
        uint256 platformFee = Splits.platformFee(uint240(computeFee), feeBps);
        billed = _word(b + 48, 16);
        if (billed != platformFee) return (abi.encodeWithSelector(PlatformFeeMismatch.selector, platformFee, billed), 0);
        total = computeFee + platformFee;
        uint256 n = _transitCount(b);
        assembly ("memory-safe") {
            // The n fees (16 bytes each) after the n seats. At most MAX_TRANSIT fees below 2**128 and two
            // fees below 2**128: the sum cannot overflow.
            let p := add(b, add(BILL_HEAD_BYTES, n))
            for { let e := add(p, shl(4, n)) } lt(p, e) { p := add(p, 16) } {
                total := add(total, shr(128, calldataload(p)))
            }
        }
        if (total > order.maxTotal) return (abi.encodeWithSelector(BillAboveLimit.selector, total, order.maxTotal), 0);
        return (failure, total);
    }

    function _doesNotFit(uint256 nodeId, string memory what, uint256 has, uint256 needs) private pure returns (bytes memory) {
        return abi.encodeWithSelector(NodeDoesNotFit.selector, nodeId, what, has, needs);
    }

    /// @dev The buyer's signature of `id` (calldata `sigAt`, `sigLen` bytes): an ECDSA signature (r | s | v,
    ///  65 bytes, low s, as OpenZeppelin's ECDSA.tryRecover requires) recovered with the ecrecover
    ///  precompile, else an ERC-1271 signature when the buyer is a contract. Recovery comes first so an EOA
    ///  buyer costs no EXTCODESIZE of a cold account (2,600 gas); a contract buyer cannot pass the ECDSA
    ///  branch (nobody holds a key whose address is its address).
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
        // The slice's offset and length are two fields, not two writes of one (slither's write-after-write
        // reads both assembly assignments as writes of `signature`).
        // slither-disable-next-line write-after-write
        bytes calldata signature;
        assembly ("memory-safe") {
            signature.offset := sigAt
            signature.length := sigLen
        }
        return SignatureChecker.isValidERC1271SignatureNow(buyer, id, signature);
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
            mstore(add(q, 92), shl(192, mload(add(o, 0x20)))) // logicMcu
            mstore(add(q, 100), shl(192, mload(add(o, 0x40)))) // parallelMcu
            mstore(add(q, 108), shl(192, mload(add(o, 0x60)))) // neuralMcu
            mstore(add(q, 116), shl(224, mload(add(o, 0x100)))) // duration
            mstore(add(q, 120), shl(248, iszero(iszero(valueless))))
            calldatacopy(add(q, 121), add(b, 32), 32) // computeFee, platformFee
            mstore(add(q, 153), shl(248, status))
            mstore(add(q, 154), shl(216, deadline))
            let len := add(DEAL_HEAD_BYTES, mul(TRANSIT_BYTES, n))
            calldatacopy(add(q, 159), add(b, 64), add(1, mul(TRANSIT_BYTES, n))) // n, seats, fees
            mstore(add(q, len), 0) // zero padding up to the next word
            mstore(sub(q, 0x20), id)
            h := keccak256(sub(q, 0x20), add(len, 0x20))
            mstore(e, 0x20)
            mstore(add(e, 0x20), len)
            log2(e, add(0x40, and(add(len, 31), not(31))), topic, id)
        }
        _slots[id] = _pack(h, status, deadline);
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
        (uint256 h, Status status, uint40 deadline) = _load(id, deal);
        _only(id, _dealBuyer(deal));
        _expect(id, status, Status.Proposed);
        _before(id, deadline);
        _move(id, h, Status.Accepted, uint40(block.timestamp) + startWindow);
    }

    /// @inheritdoc IMarket
    function reject(bytes32 id, bytes calldata deal) external override {
        (, Status status,) = _load(id, deal);
        _only(id, _dealBuyer(deal));
        _expect(id, status, Status.Proposed);
        _refundAndRelease(id, deal, false);
    }

    /// @inheritdoc IMarket
    function decline(bytes32 id, bytes calldata deal) external override {
        (, Status status,) = _load(id, deal);
        _only(id, _dealSeller(deal));
        _expect(id, status, Status.Accepted);
        _refundAndRelease(id, deal, false);
    }

    /// @inheritdoc IMarket
    function start(bytes32 id, bytes calldata deal) external override {
        (uint256 h, Status status, uint40 deadline) = _load(id, deal);
        _only(id, _dealSeller(deal));
        _expect(id, status, Status.Accepted);
        _before(id, deadline);
        _move(id, h, Status.Started, uint40(block.timestamp) + uint40(_field(deal, 116, 4)) + deliveryGrace);
    }

    /// @inheritdoc IMarket
    function complete(bytes32 id, bytes calldata deal, string calldata resultCid) external override {
        (uint256 h, Status status, uint40 deadline) = _load(id, deal);
        _only(id, _dealSeller(deal));
        _expect(id, status, Status.Started);
        _before(id, deadline);
        uint40 disputeUntil = uint40(block.timestamp) + disputeWindow;
        _slots[id] = _pack(h, Status.Completed, disputeUntil);
        emit Completed(id, disputeUntil, resultCid); // says the status too: no DealStatusChanged
        _release(deal);
    }

    /// @inheritdoc IMarket
    function settle(bytes32 id, bytes calldata deal) external override {
        (uint256 h, Status status, uint40 deadline) = _load(id, deal);
        _expect(id, status, Status.Completed);
        if (msg.sender != _dealBuyer(deal) && block.timestamp <= deadline) revert DeadlineNotReached(id, deadline);
        _payout(id, h, deal);
    }

    /// @inheritdoc IMarket
    function dispute(bytes32 id, bytes calldata deal) external override {
        (uint256 h, Status status, uint40 deadline) = _load(id, deal);
        _only(id, _dealBuyer(deal));
        _expect(id, status, Status.Completed);
        _before(id, deadline);
        _move(id, h, Status.Disputed, uint40(block.timestamp) + arbitrationPeriod);
    }

    /// @inheritdoc IMarket
    function resolve(bytes32 id, bytes calldata deal, bool sellerWins) external override {
        (uint256 h, Status status, uint40 deadline) = _load(id, deal);
        _requireRole(msg.sender, Roles.ARBITER);
        if (msg.sender == _dealBuyer(deal) || msg.sender == _dealSeller(deal)) revert Unauthorized(id, msg.sender, address(0));
        _expect(id, status, Status.Disputed);
        _before(id, deadline);
        if (sellerWins) {
            _payout(id, h, deal);
        } else {
            _move(id, h, Status.Refunded, 0);
            _refund(id, deal);
            _slash(id, deal);
        }
    }

    /// @inheritdoc IMarket
    function timeout(bytes32 id, bytes calldata deal) external override {
        (uint256 h, Status status, uint40 deadline) = _load(id, deal);
        if (block.timestamp <= deadline) revert DeadlineNotReached(id, deadline);
        // Statuses compared with constants (slither's incorrect-equality false positive, as in _load).
        // slither-disable-next-line incorrect-equality
        if (status == Status.Proposed) {
            _refundAndRelease(id, deal, false);
            // slither-disable-next-line incorrect-equality
        } else if (status == Status.Accepted || status == Status.Started) {
            // The seller missed its start or delivery deadline.
            _refundAndRelease(id, deal, true);
            // slither-disable-next-line incorrect-equality
        } else if (status == Status.Disputed) {
            // The arbiter did not rule in time: the buyer gets its money back, nobody is slashed.
            _move(id, h, Status.Refunded, 0);
            _refund(id, deal);
        } else {
            revert InvalidStatus(id, status);
        }
    }

    // ------------------------------------------------------------ internals

    function _refundAndRelease(bytes32 id, bytes calldata deal, bool slash) private {
        _slots[id] = _pack(_slots[id], Status.Refunded, 0);
        emit DealStatusChanged(id, Status.Refunded, 0);
        _refund(id, deal);
        if (slash) _slash(id, deal);
        _release(deal);
    }

    /// @dev Returns a deal's capacity to its node (paused and retired nodes too, so running deals finish).
    ///  A deal returns exactly what it reserved, once (its status moves past the capacity-holding ones in
    ///  the same call), and a node update keeps free = capacity - reserved, so free stays at most the
    ///  capacity (< 2**48) without reading it: only a carry out of a field, which a bug would cause,
    ///  is checked.
    function _release(bytes calldata deal) private {
        uint256 nodeId = _field(deal, 60, 32);
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

    /// @dev Settles the deal (slot `h`): its status, the credits, and Settled (which says the status too:
    ///  no DealStatusChanged).
    function _payout(bytes32 id, uint256 h, bytes calldata deal) private {
        _slots[id] = _pack(h, Status.Settled, 0);
        uint256 transitTotal = 0;
        bool valueless = _dealValueless(deal);
        uint256 computeFee = _field(deal, 121, 16);
        uint256 platformFee = _field(deal, 137, 16);
        if (!valueless) _credit(_dealSeller(deal), computeFee);
        uint256 n = _dealTransitCount(deal);
        for (uint256 i; i < n;) {
            uint256 fee = _field(deal, DEAL_HEAD_BYTES + n + 16 * i, 16);
            if (!valueless) _creditTransit(_field(deal, DEAL_HEAD_BYTES + i, 1), fee);
            unchecked {
                // At most MAX_TRANSIT fees below 2**128 each.
                transitTotal += fee;
                ++i;
            }
        }
        if (!valueless) _accrueFees(platformFee);
        emit Settled(id, computeFee, transitTotal, platformFee, valueless);
    }

    function _refund(bytes32 id, bytes calldata deal) private {
        uint256 amount = 0;
        address buyer = _dealBuyer(deal);
        if (!_dealValueless(deal)) {
            amount = _dealTotal(deal);
            _credit(buyer, amount);
        }
        emit Refunded(id, buyer, amount);
    }

    /// @dev The seller forfeits up to the compute fee from its stake: half to the buyer, the rest
    ///  (with the odd unit) to the platform. Stage-1 deals move nothing.
    function _slash(bytes32 id, bytes calldata deal) private {
        if (_dealValueless(deal)) return;
        address seller = _dealSeller(deal);
        uint256 taken = _takeStake(seller, _field(deal, 121, 16));
        (uint256 toBuyer, uint256 toPlatform) = Splits.slashShares(taken);
        if (toBuyer != 0) _credit(_dealBuyer(deal), toBuyer);
        if (toPlatform != 0) _accrueFees(toPlatform);
        emit Slashed(id, seller, toBuyer, toPlatform);
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
        return _field(deal, 120, 1) != 0;
    }

    function _dealTransitCount(bytes calldata deal) private pure returns (uint256) {
        return _field(deal, 159, 1);
    }

    function _dealTotal(bytes calldata deal) private pure returns (uint256 total) {
        total = _field(deal, 121, 16) + _field(deal, 137, 16);
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

    /// @dev Keeps the hash bits of `hashBits`, sets status and deadline.
    function _pack(uint256 hashBits, Status status, uint40 deadline) private pure returns (uint256) {
        return (hashBits & HASH_MASK) | (uint256(deadline) << 8) | uint256(uint8(status));
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
