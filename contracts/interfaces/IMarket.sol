// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {INodeRegistry} from "./INodeRegistry.sol";

/// @title The market: orders, matches with their bills, the deal lifecycle, escrow and settlement.
/// @notice Lifecycle (seed 2.2.2; docs/contracts.md):
///  post (escrowed on chain) or sign (EIP-712, drawn from a deposit) an order
///  -> a matcher submits a match carrying the bill (compute fee, transit fee per operator, platform fee)
///  -> Proposed (the buyer accepts or rejects) or Accepted directly (order.autoAccept)
///  -> Started by the seller -> Completed with a result CID (capacity released)
///  -> Settled by the buyer's confirmation or after the dispute window, or Disputed and resolved by an
///     arbiter either way. Every non-final state has a deadline; `timeout` returns funds and capacity
///     (and slashes a seller that missed its start or delivery deadline).
/// @dev To keep each step cheap, matches and deals travel packed (big-endian, no padding between fields)
///  instead of as ABI structs, whose words are mostly zero bytes:
///  - an entry of matchSigned / matchSignedBatch is the order (111 bytes: buyer 20 | logicMcu 8 |
///    parallelMcu 8 | neuralMcu 8 | memoryMib 4 | gpuModel 2 | gpuCount 2 | minTier 1 | duration 4 |
///    maxPricePerCuHour 16 | maxTotal 16 | maxLatencyMs 4 | minBandwidthMbps 4 | autoAccept 1 | expiry 5 |
///    nonce 8, the Order's fields in order), the signature's length (2) and the signature, then the bill;
///  - a bill is nodeId 32 | computeFee 16 | platformFee 16 | n 1 | n transit operators by seat (1 each:
///    IEscrow.transitOperators) | n transit fees (16 each): 65 + 17n bytes. computeFee = price * (logic+parallel+neural mCU) * duration /
///    (1000 * 3600) and platformFee = computeFee * platformFeeBps / 10000, both rounded down; at most
///    MAX_TRANSIT operators, each an OPERATOR member; the buyer pays compute + platform + every transit fee;
///  - a deal is the `deal` bytes of its Matched event (layout there). A deal is stored as one slot: status
///    (bits 0-7), the current deadline (bits 8-47) and the top 208 bits of keccak256(id ++ deal); every
///    later call passes the id and the deal bytes back and the contract checks them against that hash.
interface IMarket {
    /// @notice What a buyer asks for and the limits of what it will pay. Signed with EIP-712 (type
    ///  string in docs/contracts.md) or posted on chain. `maxLatencyMs` and `minBandwidthMbps` are the
    ///  network SLA from the buyer's access point: checked off chain by the matcher, bound by the signature.
    struct Order {
        address buyer;
        uint64 logicMcu;
        uint64 parallelMcu;
        uint64 neuralMcu;
        uint32 memoryMib;
        uint16 gpuModel; // 0 = any
        uint16 gpuCount;
        uint8 minTier;
        uint32 duration; // seconds
        uint128 maxPricePerCuHour;
        uint128 maxTotal; // the whole bill: compute + transit + platform
        uint32 maxLatencyMs;
        uint32 minBandwidthMbps;
        bool autoAccept; // accept any bill within these limits without another signature
        uint40 expiry; // unix time after which the order cannot be matched
        uint64 nonce; // distinguishes otherwise equal orders
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
    /// @notice The node's price exceeds the order's limit.
    error PriceAboveLimit(uint256 nodeId, uint256 price, uint256 maxPrice);
    /// @notice The node does not meet the order's memory, GPU or tier requirement: `what` names it.
    error NodeDoesNotFit(uint256 nodeId, string what, uint256 has, uint256 needs);
    /// @notice The bill names more transit operators than `max` (operators == fees in a packed bill).
    error InvalidTransit(uint256 operators, uint256 fees, uint256 max);
    /// @notice The order asks for no compute or no time.
    error EmptyOrder(bytes32 id);
    /// @notice `seller` has `stake` staked; its nodes need `required` from stage 2.
    error InsufficientStake(address seller, uint256 stake, uint256 required);
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

    /// @notice Emitted when a buyer posts an order on chain, locking `locked`.
    event OrderPosted(bytes32 indexed id, address indexed buyer, Order order, uint256 locked);
    /// @notice Emitted when a buyer cancels an unmatched order (signed or posted).
    event OrderCancelled(bytes32 indexed id, address indexed buyer, uint256 refunded);
    /// @notice Emitted when a match is recorded. `deal` packs, big-endian with no padding between fields:
    ///  buyer (20 bytes) | seller (20) | matcher (20) | nodeId (32) | logicMcu (8) | parallelMcu (8) |
    ///  neuralMcu (8) | duration (4) | valueless (1) | computeFee (16) | platformFee (16) | status (1) |
    ///  deadline (5) | n (1) | n transit operators by seat (1 each) | n transit fees (16 each): 160 + 17n bytes.
    ///  Every later call of the deal passes `id` and these bytes back verbatim; `status` and `deadline` are
    ///  the deal's first (its current ones are in the contract: statusOf).
    event Matched(bytes32 indexed id, bytes deal);
    /// @notice Emitted for each match of a batch that failed, with the revert data of the failure.
    event MatchFailed(bytes32 indexed id, uint256 index, bytes reason);
    /// @notice Emitted on every status change after the match, except to Completed and to Settled, which
    ///  their own events (Completed, Settled) announce; `deadline` is the new status's deadline (0 when final).
    event DealStatusChanged(bytes32 indexed id, Status status, uint40 deadline);
    /// @notice Emitted when the seller completes the work: the deal is now Completed, open to dispute until
    ///  `deadline`; `resultCid` is the result's content id.
    event Completed(bytes32 indexed id, uint40 deadline, string resultCid);
    /// @notice Emitted when a deal is paid out: the deal is now Settled (final). `valueless` deals record
    ///  the same split without tokens.
    event Settled(bytes32 indexed id, uint256 computeFee, uint256 transitTotal, uint256 platformFee, bool valueless);
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

    /// @notice Matches a buyer-signed order (EIP-712) with its bill, drawing on the buyer's deposit. Matcher only.
    /// @param entry the packed order, signature and bill (layout above); nothing may follow it.
    /// @return id the order's EIP-712 digest, also the deal's id.
    function matchSigned(bytes calldata entry) external returns (bytes32 id);
    /// @notice Matches many signed orders in one transaction; each succeeds or fails on its own (a failure
    ///  emits MatchFailed with the revert data matchSigned would have reverted with). Matcher only (checked
    ///  per match); the matcher's role, the stage and the fee are read once per batch. An entry that does
    ///  not fit its bytes reverts the whole batch (InvalidEntry: the next entry cannot be found).
    /// @param entries packed entries (layout above), back to back.
    /// @return matched how many succeeded.
    function matchSignedBatch(bytes calldata entries) external returns (uint256 matched);
    /// @notice Matches a posted order with a packed `bill` (layout above; `locked` from OrderPosted). Matcher only.
    function matchPosted(Order calldata order, uint256 locked, bytes calldata bill) external returns (bytes32 id);

    /// @notice The buyer accepts a proposed bill. `deal` is the deal's Matched bytes, here and below.
    function accept(bytes32 id, bytes calldata deal) external;
    /// @notice The buyer rejects a proposed bill: refund and capacity release.
    function reject(bytes32 id, bytes calldata deal) external;
    /// @notice The seller declines an accepted deal before starting: refund and capacity release, no slash.
    function decline(bytes32 id, bytes calldata deal) external;
    /// @notice The seller starts the work.
    function start(bytes32 id, bytes calldata deal) external;
    /// @notice The seller reports completion with the result's content id; capacity is released.
    function complete(bytes32 id, bytes calldata deal, string calldata resultCid) external;
    /// @notice Pays out a completed deal: by the buyer (confirmation) any time, by anyone after the dispute window.
    function settle(bytes32 id, bytes calldata deal) external;
    /// @notice The buyer disputes a completed deal within the dispute window.
    function dispute(bytes32 id, bytes calldata deal) external;
    /// @notice An arbiter (not a party) rules on a disputed deal: pay the seller, or refund the buyer and slash.
    function resolve(bytes32 id, bytes calldata deal, bool sellerWins) external;
    /// @notice After the deadline of a Proposed, Accepted, Started or Disputed deal: refunds the buyer,
    ///  releases capacity, and slashes the seller when it missed its start or delivery deadline. Anyone.
    function timeout(bytes32 id, bytes calldata deal) external;

    /// @notice The status and current deadline of order or deal `id`.
    function statusOf(bytes32 id) external view returns (Status status, uint40 deadline);
    /// @notice The EIP-712 digest of `order`: its id.
    function orderId(Order calldata order) external view returns (bytes32);
}
