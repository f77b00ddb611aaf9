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

    /// @notice One signed order and its bill, for batch matching.
    struct SignedMatch {
        Order order;
        bytes signature;
        Bill bill;
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

    /// @notice The total a deal's buyer pays: compute + transit + platform.
    function dealTotal(Deal calldata deal) public pure returns (uint256 total) {
        total = uint256(deal.computeFee) + deal.platformFee;
        for (uint256 i; i < deal.transitFees.length; ++i) {
            total += deal.transitFees[i];
        }
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
    function matchSigned(Order calldata order, bytes calldata signature, Bill calldata bill)
        external
        override
        returns (bytes32 id)
    {
        id = orderId(order);
        bytes memory failure = _tryMatch(_ctx(), id, order, signature, bill, 0, true);
        if (failure.length != 0) _revertWith(failure);
    }

    /// @inheritdoc IMarket
    function matchPosted(Order calldata order, uint256 locked, Bill calldata bill)
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
        bytes memory failure = _tryMatch(_ctx(), id, order, msg.data[0:0], bill, locked, false);
        if (failure.length != 0) _revertWith(failure);
    }

    /// @notice Matches many signed orders in one transaction; each succeeds or fails on its own (a
    ///  failure emits MatchFailed with the revert data matchSigned would have reverted with). Matcher only
    ///  (checked per match). The matcher's role, the stage and the fee are read once per batch.
    /// @return matched how many succeeded.
    function matchSignedBatch(SignedMatch[] calldata matches) external returns (uint256 matched) {
        Ctx memory c = _ctx();
        for (uint256 i; i < matches.length; ++i) {
            SignedMatch calldata m = matches[i];
            bytes32 id = orderId(m.order);
            bytes memory failure = _tryMatch(c, id, m.order, m.signature, m.bill, 0, true);
            if (failure.length != 0) {
                emit MatchFailed(id, i, failure);
            } else {
                ++matched;
            }
        }
    }

    function _ctx() private view returns (Ctx memory c) {
        c.matcher = msg.sender;
        c.matcherRoles = _accounts[msg.sender].roles;
        c.stage = _stage;
        c.feeBps = _feeBps;
    }

    /// @dev Every check of a match, then (only if all pass) its effects: returns the custom error a
    ///  failing check reports, ABI-encoded, and changes nothing then, so a batch needs no sub-call to
    ///  undo a failed match. `prepaid` is what a posted order already locked; `signed` checks replay and
    ///  the buyer's signature (a posted order was checked when posted).
    function _tryMatch(
        Ctx memory c,
        bytes32 id,
        Order calldata order,
        bytes calldata signature,
        Bill calldata bill,
        uint256 prepaid,
        bool signed
    ) private returns (bytes memory failure) {
        address buyer = order.buyer;
        if (signed) {
            uint256 used = _slots[id];
            if (used != 0) return abi.encodeWithSelector(OrderAlreadyUsed.selector, id, Status(uint8(used)));
            if (!_validSignature(buyer, id, signature)) {
                return abi.encodeWithSelector(InvalidSignature.selector, id, buyer);
            }
        }
        return _matchValid(c, id, order, bill, prepaid);
    }

    /// @dev The order decoded (and each field validated, as the accessors did) once; a signed order only
    ///  after its signature held (a word with dirty bits has another digest: InvalidSignature above).
    function _matchValid(Ctx memory c, bytes32 id, Order calldata order, Bill calldata bill, uint256 prepaid)
        private
        returns (bytes memory failure)
    {
        Order memory o = order;
        if (block.timestamp > o.expiry) return abi.encodeWithSelector(OrderExpired.selector, id, o.expiry);
        {
            // Each array located (and bounds-checked) once by its accessor.
            uint256 ops = bill.transitOperators.length;
            uint256 fees = bill.transitFees.length;
            if (ops != fees || ops > MAX_TRANSIT) {
                return abi.encodeWithSelector(InvalidTransit.selector, ops, fees, MAX_TRANSIT);
            }
        }
        if (o.duration == 0 || (o.logicMcu | o.parallelMcu | o.neuralMcu) == 0) {
            return abi.encodeWithSelector(EmptyOrder.selector, id);
        }
        address seller;
        (failure, seller) = _matchOnNode(c, o, bill, prepaid);
        if (failure.length == 0) _record(c.matcher, id, order, bill, seller, c.stage == 1);
    }

    /// @dev The node, role, bill, stake and balance checks of a match, then its effects.
    function _matchOnNode(Ctx memory c, Order memory o, Bill calldata bill, uint256 prepaid)
        private
        returns (bytes memory failure, address seller)
    {
        NodeWords storage n = _nodes[bill.nodeId];
        uint256 state = n.state;
        failure = _checkCapacity(bill.nodeId, state, o);
        if (failure.length != 0) return (failure, address(0));
        uint256 total;
        {
            uint256 terms = n.terms;
            seller = address(uint160(terms));
            failure = _checkRoles(c, o.buyer, seller, bill.transitOperators);
            if (failure.length != 0) return (failure, address(0));
            (failure, total) = _checkBill(o, bill, state, terms >> 160, c.feeBps);
            if (failure.length != 0) return (failure, address(0));
        }
        failure = _fund(o.buyer, seller, total, prepaid, c.stage == 1);
        if (failure.length != 0) return (failure, address(0));
        // Each demanded amount is at most its field's free amount (checked above), so subtracting the
        // packed demand borrows across no field.
        unchecked {
            n.state = state
                - (uint256(o.logicMcu) | (uint256(o.parallelMcu) << 48) | (uint256(o.neuralMcu) << 96));
        }
    }

    /// @dev From stage 2: checks the seller's stake and the buyer's balance, then takes the bill's total
    ///  from the buyer's balance (less what a posted order locked; any excess lock is credited back).
    ///  Stage 1 moves nothing (a posted order's lock, always 0 there, is returned).
    function _fund(address buyer, address seller, uint256 total, uint256 prepaid, bool valueless)
        private
        returns (bytes memory)
    {
        if (valueless) {
            if (prepaid != 0) _credit(buyer, prepaid);
            return "";
        }
        Account storage s = _accounts[seller];
        if (s.underStaked) {
            return abi.encodeWithSelector(InsufficientStake.selector, seller, s.stake, _requiredStake[seller]);
        }
        if (total > prepaid) {
            Account storage b = _accounts[buyer];
            uint256 balance = b.balance;
            uint256 owed = total - prepaid;
            if (balance < owed) return abi.encodeWithSelector(InsufficientBalance.selector, buyer, balance, owed);
            unchecked {
                // balance >= owed was checked above.
                b.balance = uint128(balance - owed);
            }
        } else if (prepaid > total) {
            _credit(buyer, prepaid - total);
        }
        return "";
    }

    /// @dev The node takes orders and has the free capacity the order asks for, per class.
    function _checkCapacity(uint256 nodeId, uint256 state, Order memory order) private pure returns (bytes memory) {
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
        return "";
    }

    function _insufficient(uint256 nodeId, uint8 class, uint64 asked, uint256 free) private pure returns (bytes memory) {
        return abi.encodeWithSelector(InsufficientCapacity.selector, nodeId, class, asked, uint64(free));
    }

    /// @dev The matcher holds MATCHER, the buyer BUYER, the seller a role that sells at this stage, each
    ///  transit operator OPERATOR (roles as mirrored from the Federation).
    function _checkRoles(Ctx memory c, address buyer, address seller, address[] calldata operators)
        private
        view
        returns (bytes memory)
    {
        if (c.matcherRoles & Roles.MATCHER != Roles.MATCHER) {
            return abi.encodeWithSelector(MissingRole.selector, c.matcher, Roles.MATCHER, c.matcherRoles);
        }
        uint8 held = _accounts[buyer].roles;
        if (held & Roles.BUYER != Roles.BUYER) return abi.encodeWithSelector(MissingRole.selector, buyer, Roles.BUYER, held);
        uint8 sellers = c.stage >= 3 ? Roles.CLOUD | Roles.PROVIDER | Roles.OPERATOR : Roles.CLOUD;
        held = _accounts[seller].roles;
        if (held & sellers == 0) return abi.encodeWithSelector(MissingRole.selector, seller, sellers, held);
        for (uint256 i; i < operators.length;) {
            address operator;
            assembly ("memory-safe") {
                // operators[i], i < length: validated as the decoder would (a dirty address reverts).
                operator := calldataload(add(operators.offset, shl(5, i)))
                if shr(160, operator) { revert(0, 0) }
            }
            held = _accounts[operator].roles;
            if (held & Roles.OPERATOR != Roles.OPERATOR) {
                return abi.encodeWithSelector(MissingRole.selector, operator, Roles.OPERATOR, held);
            }
            unchecked {
                ++i;
            }
        }
        return "";
    }

    /// @dev The node fits the order and the bill is exact (Splits); returns the bill's total.
    function _checkBill(Order memory order, Bill calldata bill, uint256 state, uint256 price, uint16 feeBps)
        private
        pure
        returns (bytes memory, uint256 total)
    {
        uint256 nodeId = bill.nodeId;
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

        uint256 mcu = uint256(order.logicMcu) + order.parallelMcu + order.neuralMcu;
        uint256 computeFee = Splits.computeFee(price, mcu, order.duration);
        if (bill.computeFee != computeFee) {
            return (abi.encodeWithSelector(ComputeFeeMismatch.selector, computeFee, bill.computeFee), 0);
        }
        uint256 platformFee = Splits.platformFee(computeFee, feeBps);
        if (bill.platformFee != platformFee) {
            return (abi.encodeWithSelector(PlatformFeeMismatch.selector, platformFee, bill.platformFee), 0);
        }
        total = computeFee + platformFee;
        assembly ("memory-safe") {
            // The fees, as located (and bounds-checked) by the accessors in _tryMatch; each item
            // validated as the decoder would (a dirty uint128 reverts). At most MAX_TRANSIT fees below
            // 2**128 each and two fees below 2**128: the sum cannot overflow.
            let fees := add(bill, calldataload(add(bill, 0x80)))
            let end := add(fees, shl(5, add(calldataload(fees), 1)))
            for { let p := add(fees, 0x20) } lt(p, end) { p := add(p, 0x20) } {
                let fee := calldataload(p)
                if shr(128, fee) { revert(0, 0) }
                total := add(total, fee)
            }
        }
        if (total > order.maxTotal) return (abi.encodeWithSelector(BillAboveLimit.selector, total, order.maxTotal), 0);
        return ("", total);
    }

    function _doesNotFit(uint256 nodeId, string memory what, uint256 has, uint256 needs) private pure returns (bytes memory) {
        return abi.encodeWithSelector(NodeDoesNotFit.selector, nodeId, what, has, needs);
    }

    /// @dev The buyer's signature of `id`: an ECDSA signature (r | s | v, 65 bytes, low s, as OpenZeppelin's
    ///  ECDSA.tryRecover requires) recovered from calldata with the ecrecover precompile, else an ERC-1271 signature when the buyer is a
    ///  contract. Recovery comes first so an EOA buyer costs no EXTCODESIZE of a cold account (2,600 gas);
    ///  a contract buyer cannot pass the ECDSA branch (nobody holds a key whose address is its address).
    function _validSignature(address buyer, bytes32 id, bytes calldata signature) private view returns (bool) {
        if (signature.length == 65) {
            bytes32 r;
            bytes32 s;
            uint8 v;
            assembly ("memory-safe") {
                r := calldataload(signature.offset)
                s := calldataload(add(signature.offset, 0x20))
                v := byte(0, calldataload(add(signature.offset, 0x40)))
            }
            // The upper half of s is refused (malleable), as OpenZeppelin's ECDSA does; ecrecover returns 0
            // for any other failure, which no buyer equals.
            if (uint256(s) <= 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0) {
                address recovered = ecrecover(id, v, r, s);
                if (recovered != address(0) && recovered == buyer) return true;
            }
        }
        return buyer.code.length != 0 && SignatureChecker.isValidERC1271SignatureNow(buyer, id, signature);
    }

    function _revertWith(bytes memory failure) private pure {
        assembly ("memory-safe") {
            revert(add(failure, 0x20), mload(failure))
        }
    }

    /// @dev Stores the deal's slot and emits Matched. Both are built in assembly from the calldata of the
    ///  order and the bill (as Seaport and Permit2 hash from calldata): every word copied was already
    ///  validated (the order when _matchValid decoded it, the bill's words by their accessors and the
    ///  transit loops of _checkRoles and _checkBill; a dirty word reverts).
    ///  The deal's hash is keccak256 of the canonical abi.encode(Deal), the same bytes the lifecycle calls
    ///  hash: 13 head words (id, buyer, seller, nodeId, logicMcu, parallelMcu, neuralMcu, duration,
    ///  valueless, computeFee, platformFee, offset of transitOperators = 0x1a0, offset of transitFees =
    ///  0x1c0 + 32n), then n and the n operators, then n and the n fees.
    ///  Matched's `deal` is the packed form of the same fields (see IMarket.Matched), written right after
    ///  that encoding: 160 + 36n bytes instead of 19 + 2n ABI words, a third of the log's data gas.
    function _record(address matcher, bytes32 id, Order calldata order, Bill calldata bill, address seller, bool valueless)
        private
    {
        Status status = order.autoAccept ? Status.Accepted : Status.Proposed;
        uint40 deadline = uint40(block.timestamp) + (order.autoAccept ? startWindow : acceptWindow);
        (bytes32 h, uint256 p, uint256 len) = _encodeDeal(id, order, bill, seller, valueless);
        _slots[id] = _pack(uint256(h), status, deadline);
        bytes32 topic = Matched.selector;
        assembly ("memory-safe") {
            // The event's data (offset 0x20, length, packed bytes) right after the deal's encoding (p, len).
            // Each field is stored left-aligned at q, so the next one overwrites the zeros that trail it.
            let e := add(p, len)
            let q := add(e, 0x40)
            mstore(q, shl(96, mload(add(p, 0x20)))) // buyer (clean: copied from a validated word)
            mstore(add(q, 20), shl(96, mload(add(p, 0x40)))) // seller
            mstore(add(q, 40), shl(96, and(matcher, 0xffffffffffffffffffffffffffffffffffffffff)))
            mstore(add(q, 60), mload(add(p, 0x60))) // nodeId
            mstore(add(q, 92), shl(192, mload(add(p, 0x80)))) // logicMcu
            mstore(add(q, 100), shl(192, mload(add(p, 0xa0)))) // parallelMcu
            mstore(add(q, 108), shl(192, mload(add(p, 0xc0)))) // neuralMcu
            mstore(add(q, 116), shl(224, mload(add(p, 0xe0)))) // duration
            mstore(add(q, 120), shl(248, mload(add(p, 0x100)))) // valueless
            mstore(add(q, 121), shl(128, mload(add(p, 0x120)))) // computeFee
            mstore(add(q, 137), shl(128, mload(add(p, 0x140)))) // platformFee
            mstore(add(q, 153), shl(248, and(status, 0xff)))
            mstore(add(q, 154), shl(216, and(deadline, 0xffffffffff)))
            let n := mload(add(p, 0x1a0))
            mstore(add(q, 159), shl(248, n))
            let w := add(q, 160)
            let src := add(p, 0x1c0)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                mstore(w, shl(96, mload(add(src, shl(5, i))))) // operator i
                w := add(w, 20)
            }
            src := add(src, add(0x20, shl(5, n))) // past the fees' length word
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                mstore(w, shl(128, mload(add(src, shl(5, i))))) // fee i
                w := add(w, 16)
            }
            mstore(w, 0) // zero padding up to the next word
            let packedLen := sub(w, q)
            mstore(e, 0x20)
            mstore(add(e, 0x20), packedLen)
            log2(e, add(0x40, and(add(packedLen, 31), not(31))), topic, id)
        }
    }

    /// @dev Writes abi.encode(deal) at the free memory pointer (without claiming it) and hashes it.
    function _encodeDeal(bytes32 id, Order calldata order, Bill calldata bill, address seller, bool valueless)
        private
        pure
        returns (bytes32 h, uint256 p, uint256 len)
    {
        assembly ("memory-safe") {
            // Inline assembly sees the compiler's stack values, whose unused high bits may be dirty.
            seller := and(seller, 0xffffffffffffffffffffffffffffffffffffffff)
            valueless := iszero(iszero(valueless))
            p := mload(0x40)
            // The bill's arrays, located as the ABI decoder located them (and validated their items).
            let ops := add(bill, calldataload(add(bill, 0x60)))
            let fees := add(bill, calldataload(add(bill, 0x80)))
            let n := calldataload(ops) // == the fees' length (checked)
            len := add(0x1e0, shl(6, n))
            mstore(p, id)
            mstore(add(p, 0x20), calldataload(order)) // buyer
            mstore(add(p, 0x40), seller)
            mstore(add(p, 0x60), calldataload(bill)) // nodeId
            calldatacopy(add(p, 0x80), add(order, 0x20), 0x60) // logicMcu, parallelMcu, neuralMcu
            mstore(add(p, 0xe0), calldataload(add(order, 0x100))) // duration
            mstore(add(p, 0x100), valueless)
            calldatacopy(add(p, 0x120), add(bill, 0x20), 0x40) // computeFee, platformFee
            mstore(add(p, 0x160), 0x1a0)
            mstore(add(p, 0x180), add(0x1c0, shl(5, n)))
            calldatacopy(add(p, 0x1a0), ops, add(0x20, shl(5, n))) // n, operators
            calldatacopy(add(add(p, 0x1c0), shl(5, n)), fees, add(0x20, shl(5, n))) // n, fees
            h := keccak256(p, len)
        }
    }

    // ------------------------------------------------------------ lifecycle

    /// @inheritdoc IMarket
    function accept(Deal calldata deal) external override {
        (bytes32 id, uint256 h, Status status, uint40 deadline) = _load(deal);
        _only(id, _dealBuyer(deal));
        _expect(id, status, Status.Proposed);
        _before(id, deadline);
        _move(id, h, Status.Accepted, uint40(block.timestamp) + startWindow);
    }

    /// @inheritdoc IMarket
    function reject(Deal calldata deal) external override {
        (bytes32 id,, Status status,) = _load(deal);
        _only(id, _dealBuyer(deal));
        _expect(id, status, Status.Proposed);
        _refundAndRelease(deal, id, false);
    }

    /// @inheritdoc IMarket
    function decline(Deal calldata deal) external override {
        (bytes32 id,, Status status,) = _load(deal);
        _only(id, _dealSeller(deal));
        _expect(id, status, Status.Accepted);
        _refundAndRelease(deal, id, false);
    }

    /// @inheritdoc IMarket
    function start(Deal calldata deal) external override {
        (bytes32 id, uint256 h, Status status, uint40 deadline) = _load(deal);
        _only(id, _dealSeller(deal));
        _expect(id, status, Status.Accepted);
        _before(id, deadline);
        _move(id, h, Status.Started, uint40(block.timestamp) + _dealDuration(deal) + deliveryGrace);
    }

    /// @inheritdoc IMarket
    function complete(Deal calldata deal, string calldata resultCid) external override {
        (bytes32 id, uint256 h, Status status, uint40 deadline) = _load(deal);
        _only(id, _dealSeller(deal));
        _expect(id, status, Status.Started);
        _before(id, deadline);
        _move(id, h, Status.Completed, uint40(block.timestamp) + disputeWindow);
        emit Completed(id, resultCid);
        _release(deal);
    }

    /// @inheritdoc IMarket
    function settle(Deal calldata deal) external override {
        (bytes32 id, uint256 h, Status status, uint40 deadline) = _load(deal);
        _expect(id, status, Status.Completed);
        if (msg.sender != _dealBuyer(deal) && block.timestamp <= deadline) revert DeadlineNotReached(id, deadline);
        _move(id, h, Status.Settled, 0);
        _payout(deal, id);
    }

    /// @inheritdoc IMarket
    function dispute(Deal calldata deal) external override {
        (bytes32 id, uint256 h, Status status, uint40 deadline) = _load(deal);
        _only(id, _dealBuyer(deal));
        _expect(id, status, Status.Completed);
        _before(id, deadline);
        _move(id, h, Status.Disputed, uint40(block.timestamp) + arbitrationPeriod);
    }

    /// @inheritdoc IMarket
    function resolve(Deal calldata deal, bool sellerWins) external override {
        (bytes32 id, uint256 h, Status status, uint40 deadline) = _load(deal);
        _requireRole(msg.sender, Roles.ARBITER);
        if (msg.sender == _dealBuyer(deal) || msg.sender == _dealSeller(deal)) revert Unauthorized(id, msg.sender, address(0));
        _expect(id, status, Status.Disputed);
        _before(id, deadline);
        if (sellerWins) {
            _move(id, h, Status.Settled, 0);
            _payout(deal, id);
        } else {
            _move(id, h, Status.Refunded, 0);
            _refund(deal, id);
            _slash(deal, id);
        }
    }

    /// @inheritdoc IMarket
    function timeout(Deal calldata deal) external override {
        (bytes32 id, uint256 h, Status status, uint40 deadline) = _load(deal);
        if (block.timestamp <= deadline) revert DeadlineNotReached(id, deadline);
        // Statuses compared with constants (slither's incorrect-equality false positive, as in _load).
        // slither-disable-next-line incorrect-equality
        if (status == Status.Proposed) {
            _refundAndRelease(deal, id, false);
            // slither-disable-next-line incorrect-equality
        } else if (status == Status.Accepted || status == Status.Started) {
            // The seller missed its start or delivery deadline.
            _refundAndRelease(deal, id, true);
            // slither-disable-next-line incorrect-equality
        } else if (status == Status.Disputed) {
            // The arbiter did not rule in time: the buyer gets its money back, nobody is slashed.
            _move(id, h, Status.Refunded, 0);
            _refund(deal, id);
        } else {
            revert InvalidStatus(id, status);
        }
    }

    // ------------------------------------------------------------ internals

    function _refundAndRelease(Deal calldata deal, bytes32 id, bool slash) private {
        _slots[id] = _pack(_slots[id], Status.Refunded, 0);
        emit DealStatusChanged(id, Status.Refunded, 0);
        _refund(deal, id);
        if (slash) _slash(deal, id);
        _release(deal);
    }

    /// @dev Returns a deal's capacity to its node (paused and retired nodes too, so running deals finish).
    function _release(Deal calldata deal) private {
        uint256 nodeId = _dealNodeId(deal);
        NodeWords storage n = _nodes[nodeId];
        uint256 state = n.state;
        uint256 cap = n.capacity;
        uint64 logic = _dealLogicMcu(deal);
        uint64 parallel = _dealParallelMcu(deal);
        uint64 neural = _dealNeuralMcu(deal);
        _checkRelease(nodeId, 0, logic, uint64(cap) - uint64(state & FREE_MASK));
        _checkRelease(nodeId, 1, parallel, uint64(cap >> 64) - uint64((state >> 48) & FREE_MASK));
        _checkRelease(nodeId, 2, neural, uint64(cap >> 128) - uint64((state >> 96) & FREE_MASK));
        uint256 back = uint256(logic) | (uint256(parallel) << 48) | (uint256(neural) << 96);
        unchecked {
            // Each field's new free amount is at most its capacity (< 2**48): no carry across fields.
            n.state = state + back;
        }
    }

    function _checkRelease(uint256 nodeId, uint8 class, uint64 released, uint64 reserved) private pure {
        if (released > reserved) revert ReleaseExceedsReserved(nodeId, class, released, reserved);
    }

    function _payout(Deal calldata deal, bytes32 id) private {
        uint256 transitTotal = 0;
        bool valueless = _dealValueless(deal);
        uint256 computeFee = _dealComputeFee(deal);
        uint256 platformFee = _dealPlatformFee(deal);
        if (!valueless) _credit(_dealSeller(deal), computeFee);
        // The deal matched its stored hash (_load), so it is the canonical encoding of clean words: n
        // operators from 0x1c0, then n and the n fees.
        uint256 n;
        assembly ("memory-safe") {
            n := calldataload(add(deal, 0x1a0))
        }
        for (uint256 i; i < n;) {
            address operator;
            uint256 fee;
            assembly ("memory-safe") {
                let at := add(add(deal, 0x1c0), shl(5, i))
                operator := calldataload(at)
                fee := calldataload(add(at, add(0x20, shl(5, n))))
            }
            if (!valueless) _credit(operator, fee);
            unchecked {
                // At most MAX_TRANSIT fees below 2**128 each.
                transitTotal += fee;
                ++i;
            }
        }
        if (!valueless) _accrueFees(platformFee);
        emit Settled(id, computeFee, transitTotal, platformFee, valueless);
    }

    function _refund(Deal calldata deal, bytes32 id) private {
        uint256 amount = 0;
        address buyer = _dealBuyer(deal);
        if (!_dealValueless(deal)) {
            amount = dealTotal(deal);
            _credit(buyer, amount);
        }
        emit Refunded(id, buyer, amount);
    }

    /// @dev The seller forfeits up to the compute fee from its stake: half to the buyer, the rest
    ///  (with the odd unit) to the platform. Stage-1 deals move nothing.
    function _slash(Deal calldata deal, bytes32 id) private {
        if (_dealValueless(deal)) return;
        address seller = _dealSeller(deal);
        uint256 taken = _takeStake(seller, _dealComputeFee(deal));
        (uint256 toBuyer, uint256 toPlatform) = Splits.slashShares(taken);
        if (toBuyer != 0) _credit(_dealBuyer(deal), toBuyer);
        if (toPlatform != 0) _accrueFees(toPlatform);
        emit Slashed(id, seller, toBuyer, toPlatform);
    }

    function _load(Deal calldata deal) private view returns (bytes32 id, uint256 slot, Status status, uint40 deadline) {
        id = deal.id;
        slot = _slots[id];
        // A status compared with a constant (slither takes the hash's assembly for a balance).
        // slither-disable-next-line incorrect-equality
        if (slot == 0 || slot & HASH_MASK != _hashOf(deal) & HASH_MASK) revert UnknownDeal(id);
        status = Status(uint8(slot));
        deadline = uint40(slot >> 8);
    }

    /// @dev keccak256(abi.encode(deal)), hashed straight from calldata (as Seaport and Permit2 do): the
    ///  canonical encoding's length follows from the two array lengths read where the canonical encoding
    ///  puts them. Any other encoding (other offsets, lengths, dirty bits) is a different byte string and
    ///  so matches no stored hash; a matching one is exactly the canonical bytes the ABI decoder reads.
    function _hashOf(Deal calldata deal) private pure returns (uint256 h) {
        assembly ("memory-safe") {
            let n1 := calldataload(add(deal, 0x1a0))
            let n2 := calldataload(add(add(deal, 0x1c0), shl(5, n1)))
            let len := add(add(0x1e0, shl(5, n1)), shl(5, n2))
            let p := mload(0x40)
            calldatacopy(p, deal, len)
            h := keccak256(p, len)
        }
    }

    /// @dev The head words of a deal that matched its stored hash (_load): its calldata is the canonical
    ///  encoding of clean words (hashed at match from validated values), so they are read by offset,
    ///  without the accessors' re-validation. Only after _load (which returns the id).
    function _at(Deal calldata deal, uint256 offset) private pure returns (uint256 w) {
        assembly ("memory-safe") {
            w := calldataload(add(deal, offset))
        }
    }

    function _dealBuyer(Deal calldata deal) private pure returns (address) {
        uint256 w = _at(deal, 0x20);
        return address(uint160(w));
    }

    function _dealSeller(Deal calldata deal) private pure returns (address) {
        uint256 w = _at(deal, 0x40);
        return address(uint160(w));
    }

    function _dealNodeId(Deal calldata deal) private pure returns (uint256) {
        uint256 w = _at(deal, 0x60);
        return w;
    }

    function _dealLogicMcu(Deal calldata deal) private pure returns (uint64) {
        uint256 w = _at(deal, 0x80);
        return uint64(w);
    }

    function _dealParallelMcu(Deal calldata deal) private pure returns (uint64) {
        uint256 w = _at(deal, 0xa0);
        return uint64(w);
    }

    function _dealNeuralMcu(Deal calldata deal) private pure returns (uint64) {
        uint256 w = _at(deal, 0xc0);
        return uint64(w);
    }

    function _dealDuration(Deal calldata deal) private pure returns (uint32) {
        uint256 w = _at(deal, 0xe0);
        return uint32(w);
    }

    function _dealValueless(Deal calldata deal) private pure returns (bool) {
        uint256 w = _at(deal, 0x100);
        return w != 0;
    }

    function _dealComputeFee(Deal calldata deal) private pure returns (uint256) {
        uint256 w = _at(deal, 0x120);
        return w;
    }

    function _dealPlatformFee(Deal calldata deal) private pure returns (uint256) {
        uint256 w = _at(deal, 0x140);
        return w;
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
