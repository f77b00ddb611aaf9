// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IMarketTypes} from "./IMarketTypes.sol";

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
interface IMarket is IMarketTypes {
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
    ///  `measuredUs` microseconds, broke the order's maxLatencyMs, while the deal is Started, Completed or
    ///  Disputed:
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
