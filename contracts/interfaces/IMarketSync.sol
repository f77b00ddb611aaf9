// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {INodeRegistry} from "./INodeRegistry.sol";

/// @title What the Federation and the NodeRegistry push into the market.
/// @notice The market keeps its own copy of everything a match reads (member roles, stage, platform
///  fee, each node's terms and free capacity), so matching makes no call to another contract and reads
///  each party's role from the same slot as its balance or stake. The Federation and the registry stay
///  the source of truth and push every change in the same transaction (and everything they already hold
///  when the market is wired), so the copy can never be stale.
interface IMarketSync {
    // Its refusals (NotFederation, NotRegistry) are declared with the market's (IMarketTypes).

    /// @notice `member` now holds `roles` (0 when removed). Federation only. A member first holding OPERATOR
    ///  is given a transit-operator seat (IEscrow.OperatorSeated); reverts IEscrow.TooManyOperators when
    ///  every seat is taken.
    function syncRoles(address member, uint8 roles) external;
    /// @notice Whether `member` has a transit-operator seat or one is left for it.
    function hasSeatFor(address member) external view returns (bool);
    /// @notice The stage or the platform fee changed, and with it the value epoch (IFederation.epoch): signed
    ///  orders carry the epoch they were signed in and match only in it. Federation only.
    function syncParams(uint8 stage, uint16 platformFeeBps, uint32 epoch) external;
    /// @notice Node `nodeId` (owned by `owner`) now offers `spec` and is in `status`. Reverts
    ///  CapacityBelowReserved when `spec` leaves a class below what open deals reserve, and
    ///  IEscrow.NotSeatedOperator while its network operator has no transit seat (the Federation is not wired
    ///  to the market yet). Registry only.
    function syncNode(uint256 nodeId, address owner, INodeRegistry.NodeSpec calldata spec, INodeRegistry.NodeStatus status)
        external;
    /// @notice Node `nodeId` is now in `status` (paused, resumed, retired). Registry only.
    function syncNodeStatus(uint256 nodeId, INodeRegistry.NodeStatus status) external;
    /// @notice `owner`'s nodes now require `required` stake from stage 2. Registry only.
    function syncRequiredStake(address owner, uint256 required) external;
    /// @notice Capacity reserved by open deals on node `nodeId`, per class (mCU).
    function reservedOf(uint256 nodeId) external view returns (uint64 logicMcu, uint64 parallelMcu, uint64 neuralMcu);
}
