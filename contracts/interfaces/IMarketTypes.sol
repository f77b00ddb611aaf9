// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {INodeRegistry} from "./INodeRegistry.sol";

/// @title The market's types, errors and events (IMarket has its calls and the layouts).
/// @dev Apart from IMarket so that MarketBase, which the market and its extension share, can use them
///  without declaring the calls only one of the two implements.
interface IMarketTypes {
    /// @notice What a buyer asks for and the limits of what it will pay. Signed with EIP-712 (type
    ///  string in docs/contracts.md) or posted on chain. `maxLatencyMs` and `minBandwidthMbps` are the
    ///  network SLA from the buyer's access point: the matcher checks the path against them, the bandwidth
    ///  prices the transit, and a measured breach of the latency refunds the transit (reportSlaBreach).
    struct Order {
        address buyer;
        address matcher; // the only matcher that may match it; address(0) = any MATCHER member
        uint64 logicMcu;
        uint64 parallelMcu;
        uint64 neuralMcu;
        uint32 memoryMib;
        uint16 gpuModel; // 0 = any
        uint16 gpuCount; // whole GPUs
        uint16 gpuMilli; // a share of one GPU in milli-GPU (OpenB gpu_milli), 0..1000; 0 = none
        uint8 minTier;
        uint32 duration; // seconds
        uint32 minRunSeconds; // complete no earlier; billed at least this long; <= duration
        uint128 maxPricePerCuHour;
        uint128 maxTotal; // the whole bill: compute + transit + platform
        uint128 maxTransit; // the transit fees alone
        uint32 maxLatencyMs;
        uint32 minBandwidthMbps; // the bandwidth reserved on the path, and what transit is priced on
        bool autoAccept; // accept any bill within these limits without another signature
        uint40 expiry; // unix time after which the order cannot be matched
        uint64 nonce; // distinguishes otherwise equal orders; void below the buyer's nonce floor
        uint32 epoch; // the value epoch it was signed in (IFederation.epoch): matched only in it
        bytes32 specDigest; // sha2-256 digest of the job specification (the bytes behind its CID)
        bytes32 serviceId; // CFN/CATS anycast service id; 0 = none
        uint64 apnId; // APN6 APN ID (APP-GROUP-ID 32 | USER-GROUP-ID 32); 0 = none
        uint8 apnSlaClass; // APN6 SLA class the path must honour; 0 = none
    }

    enum Status {
        None,
        Posted, // on-chain order, funds locked, waiting for a match
        Proposed, // matched, waiting for the buyer's acceptance
        Accepted, // waiting for the seller to start
        Started, // running, waiting for completion
        Completed, // result delivered, dispute window open
        Disputed, // waiting for an arbiter
        Settled, // final: paid out
        Refunded, // final: buyer refunded (rejection, cancellation, timeout, dispute lost by the seller)
        Cancelled // final: the buyer withdrew an unmatched order
    }

    /// @notice The stored state of `id` does not match the Deal or Order passed in.
    error UnknownDeal(bytes32 id);
    /// @notice `id` is in `status`, which does not allow this call.
    error InvalidStatus(bytes32 id, Status status);
    /// @notice Order `id` was already used (matched, posted or cancelled): it is in `status`.
    error OrderAlreadyUsed(bytes32 id, Status status);
    /// @notice Order `id` expired at `expiry`.
    error OrderExpired(bytes32 id, uint40 expiry);
    /// @notice The signature is not the buyer's.
    error InvalidSignature(bytes32 id, address buyer);
    /// @notice `caller` may not do this on `id` (it must be `expected`).
    error Unauthorized(bytes32 id, address caller, address expected);
    /// @notice The deadline `deadline` of `id` has not passed yet.
    error DeadlineNotReached(bytes32 id, uint40 deadline);
    /// @notice The deadline `deadline` of `id` has passed.
    error DeadlinePassed(bytes32 id, uint40 deadline);
    /// @notice The billed compute fee differs from price x CU x hours.
    error ComputeFeeMismatch(uint256 expected, uint256 billed);
    /// @notice The billed platform fee differs from the compute fee x platform fee.
    error PlatformFeeMismatch(uint256 expected, uint256 billed);
    /// @notice The bill's total exceeds the order's limit.
    error BillAboveLimit(uint256 total, uint256 maxTotal);
    /// @notice The bill's transit fees together exceed the order's transit limit.
    error TransitAboveLimit(uint256 transit, uint256 maxTransit);
    /// @notice The fee billed for the operator in `seat` differs from its tariff x bandwidth x hours.
    error TransitFeeMismatch(uint256 seat, uint256 expected, uint256 billed);
    /// @notice `seat` appears twice in the bill.
    error DuplicateTransitSeat(uint256 seat);
    /// @notice The node's network operator (in `seat`) is not among the bill's transit operators.
    error NodeOperatorNotOnPath(uint256 nodeId, uint256 seat);
    /// @notice The node's price exceeds the order's limit.
    error PriceAboveLimit(uint256 nodeId, uint256 price, uint256 maxPrice);
    /// @notice The node does not meet the order's memory, GPU or tier requirement: `what` names it.
    error NodeDoesNotFit(uint256 nodeId, string what, uint256 has, uint256 needs);
    /// @notice The bill names no transit operator, or more than `max` (operators == fees in a packed bill).
    error InvalidTransit(uint256 operators, uint256 fees, uint256 max);
    /// @notice The order asks for no compute or no time.
    error EmptyOrder(bytes32 id);
    /// @notice Order field `field` is out of range (minRunSeconds above duration, gpuMilli above 1000).
    error InvalidOrderField(bytes32 id, string field);
    /// @notice The order was signed in value epoch `signed`; the market is in `current` (the stage or the
    ///  platform fee changed since).
    error EpochMismatch(bytes32 id, uint32 signed, uint32 current);
    /// @notice The order names `allowed` as its only matcher; `matcher` is another.
    error MatcherNotAllowed(bytes32 id, address matcher, address allowed);
    /// @notice The order's nonce is below its buyer's nonce floor (cancelAllOrders).
    error NonceBelowFloor(bytes32 id, uint64 nonce, uint64 floor);
    /// @notice `seller`'s unlocked stake is `free`; its nodes require `required` and this deal locks `lock`.
    error InsufficientStake(address seller, uint256 free, uint256 required, uint256 lock);
    /// @notice `account` lacks every role in `required`; it holds `held` (as IFederation.MissingRole).
    error MissingRole(address account, uint8 required, uint8 held);
    /// @notice No node has id `nodeId` (as INodeRegistry.UnknownNode).
    error UnknownNode(uint256 nodeId);
    /// @notice Node `nodeId` is in `status` and takes no orders (as INodeRegistry.InvalidNodeStatus).
    error InvalidNodeStatus(uint256 nodeId, INodeRegistry.NodeStatus status);
    /// @notice Node `nodeId` has `free` mCU of class `class` (0 logic, 1 parallel, 2 neural); `requested` asked.
    error InsufficientCapacity(uint256 nodeId, uint8 class, uint64 requested, uint64 free);
    /// @notice A node update would leave class `class` of node `nodeId` below its `reserved` mCU.
    error CapacityBelowReserved(uint256 nodeId, uint8 class, uint64 capacity, uint64 reserved);
    /// @notice Returning a deal's capacity would carry node `nodeId`'s free capacity of some class past
    ///  2**48 - 1 (a market bug: a deal returns exactly what it reserved, once).
    error FreeCapacityOverflow(uint256 nodeId);
    /// @notice Packed match entry `index` does not fit its bytes (cut short, or bytes left after it).
    error InvalidEntry(uint256 index);
    /// @notice `complete` came before the order's minimum running time: not before `earliest`.
    error TooEarlyToComplete(bytes32 id, uint40 earliest);
    /// @notice Only the arbiter drawn for disputed deal `id` may rule now: `drawn` (address(0) while none is
    ///  drawn yet, or when no eligible arbiter exists); `caller` is another.
    error NotDrawnArbiter(bytes32 id, address caller, address drawn);
    /// @notice The reported latency `measuredUs` (microseconds) does not break the order's bound `boundMs`.
    error SlaNotBroken(bytes32 id, uint32 measuredUs, uint32 boundMs);
    /// @notice Parameter `field` (0 acceptWindow, 1 startWindow, 2 deliveryGrace, 3 disputeWindow,
    ///  4 arbitrationPeriod, 5 unstakeDelay, 6 disputeBondBps) is out of range.
    error InvalidTerms(uint256 field);

    /// @notice Emitted when a buyer posts an order on chain, locking `locked`.
    event OrderPosted(bytes32 indexed id, address indexed buyer, Order order, uint256 locked);
    /// @notice Emitted when a buyer cancels an unmatched order (signed or posted).
    event OrderCancelled(bytes32 indexed id, address indexed buyer, uint256 refunded);
    /// @notice Emitted when `buyer` voids every order it signed with a nonce below `floor`.
    event NonceFloorRaised(address indexed buyer, uint64 floor);
    /// @notice Emitted when a match is recorded. `deal` packs, big-endian with no padding between fields:
    ///  buyer (20 bytes) | seller (20) | matcher (20) | nodeId (32) | logicMcu (8) | parallelMcu (8) |
    ///  neuralMcu (8) | duration (4) | minRunSeconds (4) | maxLatencyMs (4) | valueless (1) | computeFee (16) |
    ///  platformFee (16) | status (1) | deadline (5) | n (1) | n transit operators by seat (1 each) | n transit
    ///  fees (16 each): 168 + 17n bytes. Every later call of the deal passes `id` and these bytes back
    ///  verbatim; `status` and `deadline` are the deal's first (its current ones are in the contract:
    ///  statusOf). From stage 2 the seller's stake locks `computeFee` until the deal is final.
    event Matched(bytes32 indexed id, bytes deal);
    /// @notice Emitted for each match of a batch that failed, with the revert data of the failure.
    event MatchFailed(bytes32 indexed id, uint256 index, bytes reason);
    /// @notice Emitted on every status change after the match, except to Completed and to Settled, which
    ///  their own events (Completed, Settled) announce; `deadline` is the new status's deadline (0 when final).
    event DealStatusChanged(bytes32 indexed id, Status status, uint40 deadline);
    /// @notice Emitted when the seller completes the work: the deal is now Completed, open to dispute until
    ///  `deadline`; `usedSeconds` is the time billed; `resultCid` is the result's content id.
    event Completed(bytes32 indexed id, uint40 deadline, uint32 usedSeconds, string resultCid);
    /// @notice Emitted when the buyer disputes a completed deal with `bond`; the arbiter is drawn from the
    ///  hash of the block after `blockNumber` (arbiterOf).
    event Disputed(bytes32 indexed id, uint256 bond, uint256 blockNumber);
    /// @notice Emitted when a transit operator of the deal reports that the lease's measured latency broke
    ///  the order's bound: the deal's transit fees go back to the buyer when it is paid out.
    event SlaBreached(bytes32 indexed id, address indexed reporter, uint32 measuredUs, uint32 boundMs);
    /// @notice Emitted when a deal is paid out: the deal is now Settled (final), or Refunded when the buyer
    ///  won its dispute (a DealStatusChanged to Refunded comes first then). The seller was paid `computeFee`
    ///  (prorated), the operators `transitTotal`, the platform `platformFee`, and `refunded` went back to the
    ///  buyer (its dispute bond included when returned). `valueless` deals record the same split without tokens.
    event Settled(
        bytes32 indexed id, uint256 computeFee, uint256 transitTotal, uint256 platformFee, uint256 refunded, bool valueless
    );
    /// @notice Emitted when a buyer gets its funds back from a deal.
    event Refunded(bytes32 indexed id, address indexed buyer, uint256 amount);
    /// @notice Emitted when a seller is slashed: `toBuyer` + `toPlatform` == the slashed amount.
    event Slashed(bytes32 indexed id, address indexed seller, uint256 toBuyer, uint256 toPlatform);

    /// @notice Only the Federation pushes roles, stage and fee (IMarketSync); `caller` is not it.
    error NotFederation(address caller);
    /// @notice Only the NodeRegistry pushes nodes and stake requirements (IMarketSync); `caller` is not it.
    error NotRegistry(address caller);
    /// @notice The extension's code runs only inside the market (delegatecall); it was called directly.
    error NotDelegated();
}
