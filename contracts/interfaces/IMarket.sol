// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {INodeRegistry} from "./INodeRegistry.sol";

/// @title The market: orders, matches with their bills, the deal lifecycle, escrow and settlement.
/// @notice Lifecycle (seed 2.2.2; docs/contracts.md):
///  post (escrowed on chain) or sign (EIP-712, drawn from a deposit) an order
///  -> a matcher (the one the order names, or any) submits a match carrying the bill: the compute fee at the
///     node's price, each transit operator's fee at the tariff it published, the platform fee; the seller's
///     stake locks the deal's largest slash (its compute fee) until the deal is final
///  -> Proposed (the buyer accepts or rejects) or Accepted directly (order.autoAccept)
///  -> Started by the seller (or declined before its start deadline) -> Completed with a result CID, no
///     earlier than the order's minRunSeconds after the start (capacity released); the time used is
///     min(complete - start, duration), at least minRunSeconds
///  -> Settled by the buyer's confirmation or after the dispute window: the compute and platform fees are
///     prorated to the time used, transit is paid in full (the bandwidth was reserved for the duration),
///     the rest is refunded; or Disputed (the buyer posts a bond) and ruled by the arbiter the chain draws,
///     or split half and half when no arbiter rules in time.
///  Every non-final state has a deadline; `timeout` returns funds and capacity and slashes the locked stake
///  of a seller that missed its start or delivery deadline (and only then).
/// @dev To keep each step cheap, matches and deals travel packed (big-endian, no padding between fields)
///  instead of as ABI structs, whose words are mostly zero bytes:
///  - an entry of matchSigned / matchSignedBatch is the order (230 bytes, the Order's fields in order, each
///    exactly its type's width: buyer 20 | matcher 20 | logicMcu 8 | parallelMcu 8 | neuralMcu 8 |
///    memoryMib 4 | gpuModel 2 | gpuCount 2 | gpuMilli 2 | minTier 1 | duration 4 | minRunSeconds 4 |
///    maxPricePerCuHour 16 | maxTotal 16 | maxTransit 16 | maxLatencyMs 4 | minBandwidthMbps 4 |
///    autoAccept 1 | expiry 5 | nonce 8 | epoch 4 | specDigest 32 | serviceId 32 | apnId 8 | apnSlaClass 1),
///    the signature's length (2) and the signature, then the bill;
///  - a bill is nodeId 32 | computeFee 16 | platformFee 16 | n 1 | n transit operators by seat (1 each:
///    IEscrow.transitOperators) | n transit fees (16 each): 65 + 17n bytes. computeFee = price * (logic +
///    parallel + neural mCU) * duration / (1000 * 3600), platformFee = computeFee * platformFeeBps / 10000
///    and each transit fee = its operator's tariff (per Gbps-hour) * minBandwidthMbps * duration /
///    (1000 * 3600), all rounded down; 1 to MAX_TRANSIT distinct seats, each held by an OPERATOR member,
///    one of them the node's network operator; transit <= maxTransit and the whole bill <= maxTotal;
///  - a deal is the `deal` bytes of its Matched event (layout there). A deal is stored as one slot: status
///    (bits 0-7), the current deadline (bits 8-47), the seconds used (bits 48-79, set at completion), an
///    SLA-breach flag (bit 80) and the top 168 bits of keccak256(id ++ deal) (bits 88-255); every later call
///    passes the id and the deal bytes back and the contract checks them against that hash.
interface IMarket {
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
    /// @notice Emitted when a deal is paid out: the deal is now Settled (final). The seller was paid
    ///  `computeFee` (prorated), the operators `transitTotal`, the platform `platformFee`, and `refunded` went
    ///  back to the buyer. `valueless` deals record the same split without tokens.
    event Settled(
        bytes32 indexed id, uint256 computeFee, uint256 transitTotal, uint256 platformFee, uint256 refunded, bool valueless
    );
    /// @notice Emitted when a buyer gets its funds back from a deal.
    event Refunded(bytes32 indexed id, address indexed buyer, uint256 amount);
    /// @notice Emitted when a seller is slashed: `toBuyer` + `toPlatform` == the slashed amount.
    event Slashed(bytes32 indexed id, address indexed seller, uint256 toBuyer, uint256 toPlatform);

    /// @notice Posts `order` on chain (caller = order.buyer), locking order.maxTotal from the caller's
    ///  escrow balance and pulling any shortfall from its token allowance. Stage 1 locks nothing.
    function postOrder(Order calldata order) external returns (bytes32 id);
    /// @notice Cancels an unmatched order: a posted one (refunding its lock) or a signed one (so it can
    ///  never be matched). Buyer only.
    function cancelOrder(Order calldata order, uint256 locked) external;
    /// @notice Returns a posted order's lock after its expiry. Anyone.
    function expireOrder(Order calldata order, uint256 locked) external;
    /// @notice Voids every order the caller signed with a nonce below the next multiple of 2**40 above its
    ///  current floor: the floor rises by one step (NonceFloorRaised). Sign orders with
    ///  nonce = (nonceFloorOf(buyer) >> 40 << 40) + a counter below 2**40.
    function cancelAllOrders() external;

    /// @notice Matches a buyer-signed order (EIP-712) with its bill, drawing on the buyer's deposit. Matcher only.
    /// @param entry the packed order, signature and bill (layout above); nothing may follow it.
    /// @return id the order's EIP-712 digest, also the deal's id.
    function matchSigned(bytes calldata entry) external returns (bytes32 id);
    /// @notice Matches many signed orders in one transaction; each succeeds or fails on its own (a failure
    ///  emits MatchFailed with the revert data matchSigned would have reverted with). Matcher only (checked
    ///  per match); the matcher's role, the stage, the fee and the epoch are read once per batch. An entry
    ///  that does not fit its bytes reverts the whole batch (InvalidEntry: the next entry cannot be found).
    /// @param entries packed entries (layout above), back to back.
    /// @return matched how many succeeded.
    function matchSignedBatch(bytes calldata entries) external returns (uint256 matched);
    /// @notice Matches a posted order with a packed `bill` (layout above; `locked` from OrderPosted). Matcher only.
    function matchPosted(Order calldata order, uint256 locked, bytes calldata bill) external returns (bytes32 id);

    /// @notice The buyer accepts a proposed bill. `deal` is the deal's Matched bytes, here and below.
    function accept(bytes32 id, bytes calldata deal) external;
    /// @notice The buyer rejects a proposed bill: refund and capacity release.
    function reject(bytes32 id, bytes calldata deal) external;
    /// @notice The seller declines an accepted deal before its start deadline: refund and capacity release,
    ///  no slash. After the deadline only `timeout` (which slashes) remains.
    function decline(bytes32 id, bytes calldata deal) external;
    /// @notice The seller starts the work.
    function start(bytes32 id, bytes calldata deal) external;
    /// @notice The seller reports completion with the result's content id (a job that ran to its end is
    ///  delivered whatever its exit code; the result says how it ended), no earlier than minRunSeconds after
    ///  the start; capacity is released and the time used is fixed.
    function complete(bytes32 id, bytes calldata deal, string calldata resultCid) external;
    /// @notice Pays out a completed deal: by the buyer (confirmation) any time, by anyone after the dispute window.
    function settle(bytes32 id, bytes calldata deal) external;
    /// @notice The buyer disputes a completed deal within the dispute window, posting a bond of
    ///  disputeBondBps of the deal's total from its escrow balance (none in stage 1); the loser forfeits it.
    function dispute(bytes32 id, bytes calldata deal) external;
    /// @notice The drawn arbiter (arbiterOf) rules on a disputed deal. Seller wins: paid out as `settle`,
    ///  and the buyer's bond goes to the seller. Buyer wins: compute and platform fees refunded, the bond
    ///  returned, transit paid (the path is not in dispute: see reportSlaBreach), nobody slashed.
    function resolve(bytes32 id, bytes calldata deal, bool sellerWins) external;
    /// @notice After the deadline: Proposed -> refund; Accepted or Started (the seller missed its start or
    ///  delivery deadline) -> refund and slash of the locked stake; Disputed (no arbiter ruled) -> the bond
    ///  returned, the compute and platform fees of the time used split half and half between seller and
    ///  buyer, transit paid. Anyone.
    function timeout(bytes32 id, bytes calldata deal) external;
    /// @notice A transit operator named in the deal reports that the lease's measured latency,
    ///  `measuredUs` microseconds, broke the order's maxLatencyMs, while the deal is Started or Completed:
    ///  every transit fee of the deal is refunded to the buyer at payout instead of paid. Trust: docs/security.md.
    function reportSlaBreach(bytes32 id, bytes calldata deal, uint32 measuredUs) external;
    /// @notice A transit operator (a seated OPERATOR member) publishes its transit tariff, in token base
    ///  units per Gbps-hour of reserved bandwidth; matched bills must charge exactly it from then on.
    function setTransitTariff(uint96 perGbpsHour) external;

    /// @notice The status and current deadline of order or deal `id`.
    function statusOf(bytes32 id) external view returns (Status status, uint40 deadline);
    /// @notice The EIP-712 digest of `order`: its id.
    function orderId(Order calldata order) external view returns (bytes32);
    /// @notice The arbiter drawn now for disputed deal `id` (address(0) before the block after the dispute,
    ///  or when no arbiter is eligible): drawn from the hash of a block mined after the dispute, among the
    ///  ARBITER members that are none of the deal's buyer, seller, matcher, transit operators and the fee
    ///  recipient; a new draw every 256 blocks (the hashes the EVM keeps).
    function arbiterOf(bytes32 id, bytes calldata deal) external view returns (address);
    /// @notice `operator`'s published transit tariff per Gbps-hour (0 if none).
    function transitTariffOf(address operator) external view returns (uint256);
    /// @notice Orders of `buyer` with a nonce below this are void.
    function nonceFloorOf(address buyer) external view returns (uint64);
}
