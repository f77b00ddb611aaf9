// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IEscrow} from "./interfaces/IEscrow.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {Federation} from "./Federation.sol";
import {MarketBase} from "./MarketBase.sol";
import {NodeRegistry} from "./NodeRegistry.sol";
import {Roles} from "./libraries/Roles.sol";
import {Splits} from "./libraries/Splits.sol";

/// @title MarketExtension
/// @notice The market's rarely needed calls (IMarket, IMarketSync, IEscrow document them): posted orders,
///  disputes and their arbiter, timeouts, SLA reports, tariffs, the nonce floor, stake exits, permits, fee
///  withdrawal and the state the Federation and the registry push. The market (Market) creates it and runs
///  its code by delegatecall on the market's own storage (MarketBase's layout); called directly, every
///  call reverts NotDelegated.
contract MarketExtension is MarketBase {
    using SafeCast for uint256;

    /// @dev This contract's own address: a call running here directly, not inside the market.
    address private immutable _self;

    /// @dev Deployed by the market (msg.sender), whose storage and EIP-712 domain it works on.
    constructor(Federation federation_, NodeRegistry registry_, IERC20 token_, Terms memory terms)
        MarketBase(federation_, registry_, token_, terms, msg.sender)
    {
        _self = address(this);
    }

    modifier onlyDelegated() {
        if (address(this) == _self) revert NotDelegated();
        _;
    }

    /// @dev IMarket.postOrder, run inside the market.
    function postOrder(Order calldata order) external onlyDelegated nonReentrant returns (bytes32 id) {
        if (msg.sender != order.buyer) revert Unauthorized(bytes32(0), msg.sender, order.buyer);
        id = _orderId(order);
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

    /// @dev IMarket.cancelOrder, run inside the market.
    function cancelOrder(Order calldata order, uint256 locked) external onlyDelegated {
        bytes32 id = _orderId(order);
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

    /// @dev IMarket.expireOrder, run inside the market.
    function expireOrder(Order calldata order, uint256 locked) external onlyDelegated {
        bytes32 id = _orderId(order);
        uint256 slot = _slots[id];
        if (block.timestamp <= order.expiry) revert DeadlineNotReached(id, order.expiry);
        _closePosted(id, slot, order.buyer, locked);
    }

    /// @dev IMarket.cancelAllOrders, run inside the market.
    function cancelAllOrders() external onlyDelegated {
        Account storage a = _accounts[msg.sender];
        uint24 generation = a.nonceGeneration + 1;
        a.nonceGeneration = generation;
        emit NonceFloorRaised(msg.sender, uint64(generation) << NONCE_STEP_BITS);
    }

    /// @dev IMarket.setTransitTariff, run inside the market.
    function setTransitTariff(uint96 perGbpsHour) external onlyDelegated {
        uint8 seat = _setTariff(msg.sender, perGbpsHour);
        emit TransitTariffSet(msg.sender, seat, perGbpsHour);
    }

    /// @dev IMarket.dispute, run inside the market.
    function dispute(bytes32 id, bytes calldata deal) external onlyDelegated {
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

    /// @dev IMarket.resolve, run inside the market.
    function resolve(bytes32 id, bytes calldata deal, bool sellerWins) external onlyDelegated {
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

    /// @dev IMarket.timeout, run inside the market.
    function timeout(bytes32 id, bytes calldata deal) external onlyDelegated {
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

    /// @dev IMarket.reportSlaBreach, run inside the market.
    function reportSlaBreach(bytes32 id, bytes calldata deal, uint32 measuredUs) external onlyDelegated {
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

    /// @dev IMarketSync.syncRoles, run inside the market.
    function syncRoles(address member, uint8 roles) external onlyDelegated onlyFederation {
        _accounts[member].roles = roles;
        _syncSeat(member, roles & Roles.OPERATOR != 0);
        _syncArbiter(member, roles & Roles.ARBITER != 0);
    }

    /// @dev IMarketSync.syncParams, run inside the market.
    function syncParams(uint8 stage_, uint16 platformFeeBps_, uint32 epoch_) external onlyDelegated onlyFederation {
        _stage = stage_;
        _feeBps = platformFeeBps_;
        _epoch = epoch_;
    }

    /// @dev IMarketSync.syncNode, run inside the market.
    function syncNode(uint256 nodeId, address owner, INodeRegistry.NodeSpec calldata spec, INodeRegistry.NodeStatus status)
        external onlyDelegated
       
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
        // The registry checked the operator holds OPERATOR, so it is seated once the Federation is wired; a
        // node pushed before that (the registry wired first, with nodes already registered) would keep no
        // seat and never match: refused, so the Federation is wired first.
        uint256 seatPlusOne = _seatPlusOne(spec.operator);
        if (seatPlusOne == 0) revert NotSeatedOperator(spec.operator, _accounts[spec.operator].roles);
        uint256 seat = seatPlusOne - 1;
        n.state = free | (uint256(spec.memoryMib) << 144) | (uint256(spec.gpuModel) << 176)
            | (uint256(spec.gpuCount) << 192) | (uint256(spec.tier) << 208) | (uint256(uint8(status)) << 216)
            | (seat << 224);
        // The registry checked price < 2**96 and each capacity < 2**48.
        n.terms = uint256(uint160(owner)) | (uint256(spec.pricePerCuHour) << 160);
        n.capacity = uint256(spec.logicMcu) | (uint256(spec.parallelMcu) << 64) | (uint256(spec.neuralMcu) << 128);
    }

    /// @dev IMarketSync.syncNodeStatus, run inside the market.
    function syncNodeStatus(uint256 nodeId, INodeRegistry.NodeStatus status) external onlyDelegated onlyRegistry {
        NodeWords storage n = _nodes[nodeId];
        n.state = (n.state & ~(uint256(0xff) << 216)) | (uint256(uint8(status)) << 216);
    }

    /// @dev IMarketSync.syncRequiredStake, run inside the market.
    function syncRequiredStake(address owner, uint256 required) external onlyDelegated onlyRegistry {
        _setRequiredStake(owner, required);
    }

    // ---------------------------------------------------------------- escrow

    /// @inheritdoc IEscrow
    function depositWithPermit(address owner, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external onlyDelegated
        override
        nonReentrant
    {
        // Someone else may submit the owner's permit (a matcher, so the buyer sends no transaction).
        // If the permit fails (e.g. it was front-run), only the owner itself may go on with its allowance.
        // A permit counts only if it consumed one of the owner's nonces: a token without ERC-2612 whose
        // fallback accepts any call would otherwise "succeed" and let anyone spend the owner's allowance.
        if (!_permitConsumed(owner, amount, deadline, v, r, s) && msg.sender != owner) {
            revert PermitFailed(owner, msg.sender);
        }
        _pull(owner, amount);
        _credit(owner, amount);
        emit Deposited(owner, msg.sender, amount);
    }

    /// @dev Whether `owner`'s permit ran and consumed exactly one of its ERC-2612 nonces. Low-level calls: a
    ///  token without `nonces` may answer with no data, which a typed call would fail to decode (reverting
    ///  the owner's own deposit too).
    function _permitConsumed(address owner, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        private
        returns (bool)
    {
        (bool known, uint256 before) = _nonceOf(owner);
        if (!known) return false;
        // slither-disable-next-line low-level-calls
        (bool ok,) = address(token).call(
            abi.encodeCall(IERC20Permit.permit, (owner, address(this), amount, deadline, v, r, s))
        );
        if (!ok) return false;
        (bool still, uint256 afterwards) = _nonceOf(owner);
        return still && afterwards == before + 1;
    }

    /// @dev The token's ERC-2612 nonce of `owner`, if it answers with one.
    function _nonceOf(address owner) private view returns (bool known, uint256 nonce) {
        // slither-disable-next-line low-level-calls
        (bool ok, bytes memory answer) = address(token).staticcall(abi.encodeCall(IERC20Permit.nonces, (owner)));
        if (!ok || answer.length != 32) return (false, 0);
        return (true, abi.decode(answer, (uint256)));
    }

    /// @inheritdoc IEscrow
    function requestUnstake(uint256 amount) external onlyDelegated override {
        if (amount == 0) revert ZeroAmount();
        Account storage a = _accounts[msg.sender];
        int256 spare = a.spareStake;
        if (spare < 0 || amount > uint256(spare)) {
            uint256 required = _requiredStake[msg.sender];
            revert StakeRequired(msg.sender, uint256(spare + required.toInt256()), required, amount);
        }
        unchecked {
            // amount <= spare (checked above).
            a.spareStake = int96(spare - int256(amount));
        }
        uint256 pending = uint96(_unstaking[msg.sender]) + amount;
        uint40 readyAt = uint40(block.timestamp) + unstakeDelay;
        _unstaking[msg.sender] = pending.toUint96() | (uint256(readyAt) << 96);
        emit UnstakeRequested(msg.sender, pending, readyAt);
    }

    /// @inheritdoc IEscrow
    function claimUnstake() external onlyDelegated override {
        uint256 word = _unstaking[msg.sender];
        uint256 amount = uint96(word);
        uint40 readyAt = uint40(word >> 96);
        if (amount == 0 || block.timestamp < readyAt) revert UnstakeNotReady(msg.sender, amount, readyAt);
        delete _unstaking[msg.sender];
        _credit(msg.sender, amount);
        emit Unstaked(msg.sender, amount);
    }

    /// @inheritdoc IEscrow
    function withdrawFees() external onlyDelegated override nonReentrant {
        address recipient = feeRecipient;
        if (msg.sender != recipient) revert NotFeeRecipient(msg.sender);
        uint256 fees = _platformFees;
        if (fees == 0) revert ZeroAmount();
        _platformFees = 0;
        emit FeesWithdrawn(recipient, fees);
        _push(recipient, fees);
    }
}
