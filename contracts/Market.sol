// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {IEscrow} from "./interfaces/IEscrow.sol";
import {IMarket} from "./interfaces/IMarket.sol";
import {IMarketSync} from "./interfaces/IMarketSync.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {Federation} from "./Federation.sol";
import {MarketBase} from "./MarketBase.sol";
import {MarketExtension} from "./MarketExtension.sol";
import {NodeRegistry} from "./NodeRegistry.sol";
import {Roles} from "./libraries/Roles.sol";
import {Splits} from "./libraries/Splits.sol";

/// @title Market
/// @notice Orders, matches, the deal lifecycle and settlement; holds the escrow (Escrow). The hot path
///  (matching, start, complete, settle, deposits, withdrawals) runs here; the calls a deal needs rarely
///  (posted orders, disputes, timeouts, SLA reports, stake exits, the pushed state) run in its extension,
///  MarketExtension, on this contract's storage, so the market stays under the 24,576-byte code limit
///  (EIP-170) with its hot path compiled for many runs.
contract Market is IMarket, IMarketSync, MarketBase {
    /// @notice The extension this market delegates its rarely needed calls to (created with it).
    address public immutable extension;

    constructor(Federation federation_, NodeRegistry registry_, IERC20 token_, Terms memory terms)
        MarketBase(federation_, registry_, token_, terms, address(this))
    {
        extension = address(new MarketExtension(federation_, registry_, token_, terms));
        // Until the Federation is wired to this market (Federation.setMarket pushes everything then).
        _stage = federation_.stage();
        _feeBps = federation_.platformFeeBps();
        _epoch = federation_.epoch();
    }

    /// @inheritdoc IMarketSync
    function hasSeatFor(address member) external view override returns (bool) {
        return _hasSeatFor(member);
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

    /// @inheritdoc IMarket
    function statusOf(bytes32 id) external view override returns (Status status, uint40 deadline) {
        uint256 slot = _slots[id];
        return (Status(uint8(slot)), uint40(slot >> 8));
    }

    /// @inheritdoc IMarket
    function orderId(Order calldata order) external view override returns (bytes32) {
        return _orderId(order);
    }

    /// @notice The total a deal's buyer pays: compute + transit + platform, from its Matched bytes.
    function dealTotal(bytes calldata deal) public pure returns (uint256 total) {
        if (deal.length < DEAL_HEAD_BYTES || deal.length != DEAL_HEAD_BYTES + TRANSIT_BYTES * _dealTransitCount(deal)) {
            revert InvalidEntry(0);
        }
        total = _dealTotal(deal);
    }

    /// @inheritdoc IMarket
    function nonceFloorOf(address buyer) external view override returns (uint64) {
        return uint64(_accounts[buyer].nonceGeneration) << NONCE_STEP_BITS;
    }

    /// @inheritdoc IMarket
    function transitTariffOf(address operator) external view override returns (uint256) {
        uint256 seatPlusOne = _seatPlusOne(operator);
        return seatPlusOne == 0 ? 0 : _tariffOfSeat(seatPlusOne - 1);
    }

    /// @inheritdoc IMarket
    function matchSigned(bytes calldata entry) external override returns (bytes32 id) {
        bytes memory failure;
        (id, failure,) = _matchEntries(entry, true);
        if (failure.length != 0) _revertWith(failure);
    }

    /// @inheritdoc IMarket
    function matchSignedBatch(bytes calldata entries) external override returns (uint256 matched) {
        (,, matched) = _matchEntries(entries, false);
    }

    /// @dev The packed entries back to back, each matched on its own (one code path for a single match and
    ///  a batch, so the match is compiled once). `single`: exactly one entry, whose id and failure are
    ///  returned (nothing may follow it); else each failure is emitted (MatchFailed) and successes counted.
    function _matchEntries(bytes calldata entries, bool single)
        private
        returns (bytes32 id, bytes memory failure, uint256 matched)
    {
        Ctx memory c = _ctx();
        uint256 at;
        uint256 scratch;
        assembly ("memory-safe") {
            at := entries.offset
            scratch := mload(0x40)
        }
        uint256 end = at + entries.length;
        for (uint256 i; at < end;) {
            uint256 next;
            (id, failure, next) = _matchEntry(c, at, end, i);
            if (single) {
                if (next != end) revert InvalidEntry(0);
                return (id, failure, 0);
            }
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
        // An empty single entry: nothing to match.
        if (single) revert InvalidEntry(0);
    }

    /// @inheritdoc IMarket
    function matchPosted(Order calldata order, uint256 locked, bytes calldata bill)
        external
        override
        returns (bytes32 id)
    {
        id = _orderId(order);
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
        // The stage compared with a constant, not a balance (slither's incorrect-equality false positive).
        // slither-disable-next-line incorrect-equality
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
        uint256 seen = 0;
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
        // A bit of a seat mask, not a balance (slither's incorrect-equality false positive).
        // slither-disable-next-line incorrect-equality
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
    function arbiterOf(bytes32 id, bytes calldata deal) external view override returns (address) {
        (, Status status,) = _load(id, deal);
        // A status compared with a constant (slither's incorrect-equality false positive).
        // slither-disable-next-line incorrect-equality
        return status == Status.Disputed ? _drawArbiter(id, deal) : address(0);
    }

    // ---------------------------------------------- in the extension (MarketExtension, by delegatecall)
    // Each runs MarketExtension's code of the same name on this market's storage: see _delegate.

    /// @inheritdoc IMarket
    function postOrder(Order calldata) external override returns (bytes32) {
        _delegate();
    }

    /// @inheritdoc IMarket
    function cancelOrder(Order calldata, uint256) external override {
        _delegate();
    }

    /// @inheritdoc IMarket
    function expireOrder(Order calldata, uint256) external override {
        _delegate();
    }

    /// @inheritdoc IMarket
    function cancelAllOrders() external override {
        _delegate();
    }

    /// @inheritdoc IMarket
    function setTransitTariff(uint96) external override {
        _delegate();
    }

    /// @inheritdoc IMarket
    function dispute(bytes32, bytes calldata) external override {
        _delegate();
    }

    /// @inheritdoc IMarket
    function resolve(bytes32, bytes calldata, bool) external override {
        _delegate();
    }

    /// @inheritdoc IMarket
    function timeout(bytes32, bytes calldata) external override {
        _delegate();
    }

    /// @inheritdoc IMarket
    function reportSlaBreach(bytes32, bytes calldata, uint32) external override {
        _delegate();
    }

    /// @inheritdoc IMarketSync
    function syncRoles(address, uint8) external override {
        _delegate();
    }

    /// @inheritdoc IMarketSync
    function syncParams(uint8, uint16, uint32) external override {
        _delegate();
    }

    /// @inheritdoc IMarketSync
    function syncNode(uint256, address, INodeRegistry.NodeSpec calldata, INodeRegistry.NodeStatus) external override {
        _delegate();
    }

    /// @inheritdoc IMarketSync
    function syncNodeStatus(uint256, INodeRegistry.NodeStatus) external override {
        _delegate();
    }

    /// @inheritdoc IMarketSync
    function syncRequiredStake(address, uint256) external override {
        _delegate();
    }

    /// @inheritdoc IEscrow
    function depositWithPermit(address, uint256, uint256, uint8, bytes32, bytes32) external override {
        _delegate();
    }

    /// @inheritdoc IEscrow
    function requestUnstake(uint256) external override {
        _delegate();
    }

    /// @inheritdoc IEscrow
    function claimUnstake() external override {
        _delegate();
    }

    /// @inheritdoc IEscrow
    function withdrawFees() external override {
        _delegate();
    }

    /// @dev Runs this call's calldata as MarketExtension's code on this contract's storage and ends the call
    ///  with what it returned or reverted with. The extension is this market's own, created in its
    ///  constructor: no one can point the delegatecall elsewhere.
    function _delegate() private {
        address target = extension;
        assembly ("memory-safe") {
            let p := mload(0x40)
            calldatacopy(p, 0, calldatasize())
            // slither-disable-next-line controlled-delegatecall
            let ok := delegatecall(gas(), target, p, calldatasize(), 0, 0)
            returndatacopy(p, 0, returndatasize())
            if iszero(ok) { revert(p, returndatasize()) }
            return(p, returndatasize())
        }
    }
}
