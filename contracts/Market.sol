// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IMarket} from "./interfaces/IMarket.sol";
import {Escrow} from "./Escrow.sol";
import {Federation} from "./Federation.sol";
import {NodeRegistry} from "./NodeRegistry.sol";
import {Roles} from "./libraries/Roles.sol";
import {Splits} from "./libraries/Splits.sol";

/// @title Market
/// @notice Orders, matches, the deal lifecycle and settlement; holds the escrow (see Escrow).
contract Market is IMarket, Escrow, EIP712 {
    using SafeCast for uint256;

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

    Federation public immutable federation;
    NodeRegistry public immutable registry;
    uint32 public immutable acceptWindow;
    uint32 public immutable startWindow;
    uint32 public immutable deliveryGrace;
    uint32 public immutable disputeWindow;
    uint32 public immutable arbitrationPeriod;

    mapping(bytes32 id => uint256) private _slots;

    constructor(Federation federation_, NodeRegistry registry_, IERC20 token_, Timing memory timing)
        Escrow(token_, federation_.founder())
        EIP712("Suanwang Market", "1")
    {
        federation = federation_;
        registry = registry_;
        acceptWindow = timing.acceptWindow;
        startWindow = timing.startWindow;
        deliveryGrace = timing.deliveryGrace;
        disputeWindow = timing.disputeWindow;
        arbitrationPeriod = timing.arbitrationPeriod;
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IMarket
    function statusOf(bytes32 id) external view override returns (Status status, uint40 deadline) {
        uint256 slot = _slots[id];
        return (Status(uint8(slot)), uint40(slot >> 8));
    }

    /// @inheritdoc IMarket
    function orderId(Order calldata order) public view override returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(ORDER_TYPEHASH, order)));
    }

    /// @notice The EIP-712 domain separator (name "Suanwang Market", version "1", chain id, this contract).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
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
        federation.requireRole(msg.sender, Roles.BUYER);
        uint256 locked = federation.stage() == 1 ? 0 : order.maxTotal;
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
        returns (bytes32)
    {
        return _matchSigned(msg.sender, order, signature, bill);
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
        _match(msg.sender, id, order, bill, locked);
    }

    /// @notice Matches many signed orders in one transaction; each succeeds or fails on its own (a
    ///  failure emits MatchFailed with its revert data). Matcher only (checked per match).
    /// @return matched how many succeeded.
    function matchSignedBatch(SignedMatch[] calldata matches) external returns (uint256 matched) {
        for (uint256 i; i < matches.length; ++i) {
            try this.matchForBatch(msg.sender, matches[i]) {
                ++matched;
            } catch (bytes memory reason) {
                emit MatchFailed(orderId(matches[i].order), i, reason);
            }
        }
    }

    /// @notice The batch worker: only the market calls it (so a failing match reverts alone).
    function matchForBatch(address matcher, SignedMatch calldata m) external {
        if (msg.sender != address(this)) revert OnlySelf(msg.sender);
        _matchSigned(matcher, m.order, m.signature, m.bill);
    }

    function _matchSigned(address matcher, Order calldata order, bytes calldata signature, Bill calldata bill)
        private
        returns (bytes32 id)
    {
        id = orderId(order);
        uint256 slot = _slots[id];
        if (slot != 0) revert OrderAlreadyUsed(id, Status(uint8(slot)));
        if (!SignatureChecker.isValidSignatureNow(order.buyer, id, signature)) revert InvalidSignature(id, order.buyer);
        _match(matcher, id, order, bill, 0);
    }

    /// @dev Checks the bill against the order, the node and the stage, reserves capacity (atomically in
    ///  the registry), funds the deal and records it. `prepaid` is what a posted order already locked.
    function _match(address matcher, bytes32 id, Order calldata order, Bill calldata bill, uint256 prepaid) private {
        if (block.timestamp > order.expiry) revert OrderExpired(id, order.expiry);
        uint256 ops = bill.transitOperators.length;
        if (ops != bill.transitFees.length || ops > MAX_TRANSIT) revert InvalidTransit(ops, bill.transitFees.length, MAX_TRANSIT);
        if (order.duration == 0 || uint256(order.logicMcu) + order.parallelMcu + order.neuralMcu == 0) revert EmptyOrder(id);

        NodeRegistry.Reservation memory r =
            registry.reserve(bill.nodeId, order.logicMcu, order.parallelMcu, order.neuralMcu);
        (uint8 stage, uint16 feeBps) = federation.checkMatch(matcher, order.buyer, r.owner, bill.transitOperators);
        uint256 total = _checkBill(order, bill, r, feeBps);

        bool valueless = stage == 1;
        if (!valueless) {
            uint256 staked = stakeOf(r.owner);
            if (staked < r.requiredStake) revert InsufficientStake(r.owner, staked, r.requiredStake);
            if (prepaid >= total) {
                if (prepaid > total) _credit(order.buyer, prepaid - total);
            } else {
                _debit(order.buyer, total - prepaid);
            }
        } else if (prepaid != 0) {
            _credit(order.buyer, prepaid);
        }
        _record(matcher, id, order, bill, r.owner, valueless);
    }

    function _checkBill(Order calldata order, Bill calldata bill, NodeRegistry.Reservation memory r, uint16 feeBps)
        private
        pure
        returns (uint256 total)
    {
        uint256 nodeId = bill.nodeId;
        if (r.pricePerCuHour > order.maxPricePerCuHour) {
            revert PriceAboveLimit(nodeId, r.pricePerCuHour, order.maxPricePerCuHour);
        }
        if (r.memoryMib < order.memoryMib) revert NodeDoesNotFit(nodeId, "memoryMib", r.memoryMib, order.memoryMib);
        if (order.gpuModel != 0 && r.gpuModel != order.gpuModel) {
            revert NodeDoesNotFit(nodeId, "gpuModel", r.gpuModel, order.gpuModel);
        }
        if (r.gpuCount < order.gpuCount) revert NodeDoesNotFit(nodeId, "gpuCount", r.gpuCount, order.gpuCount);
        if (r.tier < order.minTier) revert NodeDoesNotFit(nodeId, "tier", r.tier, order.minTier);

        uint256 mcu = uint256(order.logicMcu) + order.parallelMcu + order.neuralMcu;
        uint256 computeFee = Splits.computeFee(r.pricePerCuHour, mcu, order.duration);
        if (bill.computeFee != computeFee) revert ComputeFeeMismatch(computeFee, bill.computeFee);
        uint256 platformFee = Splits.platformFee(computeFee, feeBps);
        if (bill.platformFee != platformFee) revert PlatformFeeMismatch(platformFee, bill.platformFee);
        total = computeFee + platformFee;
        for (uint256 i; i < bill.transitFees.length; ++i) {
            total += bill.transitFees[i];
        }
        if (total > order.maxTotal) revert BillAboveLimit(total, order.maxTotal);
    }

    function _record(address matcher, bytes32 id, Order calldata order, Bill calldata bill, address seller, bool valueless)
        private
    {
        Deal memory deal = Deal({
            id: id,
            buyer: order.buyer,
            seller: seller,
            nodeId: bill.nodeId,
            logicMcu: order.logicMcu,
            parallelMcu: order.parallelMcu,
            neuralMcu: order.neuralMcu,
            duration: order.duration,
            valueless: valueless,
            computeFee: bill.computeFee,
            platformFee: bill.platformFee,
            transitOperators: bill.transitOperators,
            transitFees: bill.transitFees
        });
        Status status = order.autoAccept ? Status.Accepted : Status.Proposed;
        uint40 deadline = uint40(block.timestamp) + (order.autoAccept ? startWindow : acceptWindow);
        _slots[id] = _pack(uint256(keccak256(abi.encode(deal))), status, deadline);
        emit Matched(id, order.buyer, seller, matcher, deal, status, deadline);
    }

    // ------------------------------------------------------------ lifecycle

    /// @inheritdoc IMarket
    function accept(Deal calldata deal) external override {
        (uint256 h, Status status, uint40 deadline) = _load(deal);
        _only(deal.id, deal.buyer);
        _expect(deal.id, status, Status.Proposed);
        _before(deal.id, deadline);
        _move(deal.id, h, Status.Accepted, uint40(block.timestamp) + startWindow);
    }

    /// @inheritdoc IMarket
    function reject(Deal calldata deal) external override {
        (, Status status,) = _load(deal);
        _only(deal.id, deal.buyer);
        _expect(deal.id, status, Status.Proposed);
        _refundAndRelease(deal, false);
    }

    /// @inheritdoc IMarket
    function decline(Deal calldata deal) external override {
        (, Status status,) = _load(deal);
        _only(deal.id, deal.seller);
        _expect(deal.id, status, Status.Accepted);
        _refundAndRelease(deal, false);
    }

    /// @inheritdoc IMarket
    function start(Deal calldata deal) external override {
        (uint256 h, Status status, uint40 deadline) = _load(deal);
        _only(deal.id, deal.seller);
        _expect(deal.id, status, Status.Accepted);
        _before(deal.id, deadline);
        _move(deal.id, h, Status.Started, uint40(block.timestamp) + deal.duration + deliveryGrace);
    }

    /// @inheritdoc IMarket
    function complete(Deal calldata deal, string calldata resultCid) external override {
        (uint256 h, Status status, uint40 deadline) = _load(deal);
        _only(deal.id, deal.seller);
        _expect(deal.id, status, Status.Started);
        _before(deal.id, deadline);
        _move(deal.id, h, Status.Completed, uint40(block.timestamp) + disputeWindow);
        emit Completed(deal.id, resultCid);
        registry.release(deal.nodeId, deal.logicMcu, deal.parallelMcu, deal.neuralMcu);
    }

    /// @inheritdoc IMarket
    function settle(Deal calldata deal) external override {
        (uint256 h, Status status, uint40 deadline) = _load(deal);
        _expect(deal.id, status, Status.Completed);
        if (msg.sender != deal.buyer && block.timestamp <= deadline) revert DeadlineNotReached(deal.id, deadline);
        _move(deal.id, h, Status.Settled, 0);
        _payout(deal);
    }

    /// @inheritdoc IMarket
    function dispute(Deal calldata deal) external override {
        (uint256 h, Status status, uint40 deadline) = _load(deal);
        _only(deal.id, deal.buyer);
        _expect(deal.id, status, Status.Completed);
        _before(deal.id, deadline);
        _move(deal.id, h, Status.Disputed, uint40(block.timestamp) + arbitrationPeriod);
    }

    /// @inheritdoc IMarket
    function resolve(Deal calldata deal, bool sellerWins) external override {
        (uint256 h, Status status, uint40 deadline) = _load(deal);
        federation.requireRole(msg.sender, Roles.ARBITER);
        if (msg.sender == deal.buyer || msg.sender == deal.seller) revert Unauthorized(deal.id, msg.sender, address(0));
        _expect(deal.id, status, Status.Disputed);
        _before(deal.id, deadline);
        if (sellerWins) {
            _move(deal.id, h, Status.Settled, 0);
            _payout(deal);
        } else {
            _move(deal.id, h, Status.Refunded, 0);
            _refund(deal);
            _slash(deal);
        }
    }

    /// @inheritdoc IMarket
    function timeout(Deal calldata deal) external override {
        (uint256 h, Status status, uint40 deadline) = _load(deal);
        if (block.timestamp <= deadline) revert DeadlineNotReached(deal.id, deadline);
        if (status == Status.Proposed) {
            _refundAndRelease(deal, false);
        } else if (status == Status.Accepted || status == Status.Started) {
            // The seller missed its start or delivery deadline.
            _refundAndRelease(deal, true);
        } else if (status == Status.Disputed) {
            // The arbiter did not rule in time: the buyer gets its money back, nobody is slashed.
            _move(deal.id, h, Status.Refunded, 0);
            _refund(deal);
        } else {
            revert InvalidStatus(deal.id, status);
        }
    }

    // ------------------------------------------------------------ internals

    function _refundAndRelease(Deal calldata deal, bool slash) private {
        _slots[deal.id] = _pack(_slots[deal.id], Status.Refunded, 0);
        emit DealStatusChanged(deal.id, Status.Refunded, 0);
        _refund(deal);
        if (slash) _slash(deal);
        registry.release(deal.nodeId, deal.logicMcu, deal.parallelMcu, deal.neuralMcu);
    }

    function _payout(Deal calldata deal) private {
        uint256 transitTotal = 0;
        if (!deal.valueless) {
            _credit(deal.seller, deal.computeFee);
            for (uint256 i; i < deal.transitOperators.length; ++i) {
                _credit(deal.transitOperators[i], deal.transitFees[i]);
                transitTotal += deal.transitFees[i];
            }
            _accrueFees(deal.platformFee);
        } else {
            for (uint256 i; i < deal.transitFees.length; ++i) {
                transitTotal += deal.transitFees[i];
            }
        }
        emit Settled(deal.id, deal.computeFee, transitTotal, deal.platformFee, deal.valueless);
    }

    function _refund(Deal calldata deal) private {
        uint256 amount = 0;
        if (!deal.valueless) {
            amount = dealTotal(deal);
            _credit(deal.buyer, amount);
        }
        emit Refunded(deal.id, deal.buyer, amount);
    }

    /// @dev The seller forfeits up to the compute fee from its stake: half to the buyer, the rest
    ///  (with the odd unit) to the platform. Stage-1 deals move nothing.
    function _slash(Deal calldata deal) private {
        if (deal.valueless) return;
        uint256 taken = _takeStake(deal.seller, deal.computeFee);
        (uint256 toBuyer, uint256 toPlatform) = Splits.slashShares(taken);
        if (toBuyer != 0) _credit(deal.buyer, toBuyer);
        if (toPlatform != 0) _accrueFees(toPlatform);
        emit Slashed(deal.id, deal.seller, toBuyer, toPlatform);
    }

    function _load(Deal calldata deal) private view returns (uint256 slot, Status status, uint40 deadline) {
        slot = _slots[deal.id];
        if (slot == 0 || slot & HASH_MASK != uint256(keccak256(abi.encode(deal))) & HASH_MASK) revert UnknownDeal(deal.id);
        status = Status(uint8(slot));
        deadline = uint40(slot >> 8);
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

    function _requiredStake(address account) internal view override returns (uint256) {
        return registry.requiredStake(account);
    }
}
