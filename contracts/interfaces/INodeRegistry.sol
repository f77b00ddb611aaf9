// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title The registry of compute nodes offered on the marketplace.
/// @notice Units follow the shared data model (docs/CONVENTIONS.md): compute in milli-compute-units
///  (mCU) per class of work, memory in MiB, GPU model as an index into the device catalog
///  (0 = none), price in settlement-token base units per CU-hour, router = keccak256("<operator>/<label>"),
///  SRv6 locator = IPv6 prefix (bytes16) and its length.
interface INodeRegistry {
    /// @notice What a node offers and where it attaches to the network.
    struct NodeSpec {
        uint64 logicMcu; // scalar/integer work
        uint64 parallelMcu; // FP32/FP64 vector work
        uint64 neuralMcu; // tensor FP16/BF16/INT8 work
        uint32 memoryMib;
        uint16 gpuModel; // catalog index, 0 = none
        uint16 gpuCount;
        uint8 tier; // 0 small, 1 medium, 2 large, 3 super-large
        uint128 pricePerCuHour; // token base units per CU-hour
        address operator; // the network operator whose domain the node attaches to
        bytes32 router; // keccak256("<operator>/<router label>")
        bytes16 locator; // SRv6 locator prefix of the attachment router
        uint8 locatorLength; // prefix length, 48 by default
        bytes32 encryptionKey; // X25519 public key (RFC 7748) buyers seal job specifications to (RFC 9180 HPKE)
    }

    enum NodeStatus {
        None,
        Active,
        Paused,
        Retired
    }

    /// @notice The node has no compute in any class.
    error ZeroCapacity();
    /// @notice `tier` is not 0..3.
    error InvalidTier(uint8 tier);
    /// @notice The GPU count and model disagree (a count without a model or a model without a count).
    error InvalidGpu(uint16 gpuModel, uint16 gpuCount);
    /// @notice The locator length is not 1..128.
    error InvalidLocatorLength(uint8 locatorLength);
    /// @notice `operator` is not an operator member.
    error NotAnOperator(address operator);
    /// @notice `caller` may not register nodes (not a member, or its roles cannot sell at this stage).
    error NotSeller(address caller, uint8 roles, uint8 stage);
    /// @notice No node has id `nodeId`.
    error UnknownNode(uint256 nodeId);
    /// @notice `caller` is not the owner `owner` of node `nodeId`.
    error NotNodeOwner(uint256 nodeId, address caller, address owner);
    /// @notice Node `nodeId` is in `status`, which does not allow this call.
    error InvalidNodeStatus(uint256 nodeId, NodeStatus status);

    /// @notice Emitted when `owner` registers node `nodeId`.
    event NodeRegistered(uint256 indexed nodeId, address indexed owner, NodeSpec spec);
    /// @notice Emitted when the owner changes what node `nodeId` offers.
    event NodeUpdated(uint256 indexed nodeId, NodeSpec spec);
    /// @notice Emitted when node `nodeId` stops (`paused` true) or resumes taking new orders.
    event NodePauseChanged(uint256 indexed nodeId, bool paused);
    /// @notice Emitted when node `nodeId` leaves the market for good.
    event NodeRetired(uint256 indexed nodeId);

    /// @notice Registers a node owned by the caller; returns its id (ids start at 1).
    function registerNode(NodeSpec calldata spec) external returns (uint256 nodeId);
    /// @notice Replaces what node `nodeId` offers. Owner only.
    function updateNode(uint256 nodeId, NodeSpec calldata spec) external;
    /// @notice Stops (`paused` true) or resumes new orders on node `nodeId`. Owner only.
    function setPaused(uint256 nodeId, bool paused) external;
    /// @notice Retires node `nodeId` for good. Owner only.
    function retireNode(uint256 nodeId) external;

    /// @notice The node's spec, owner and status.
    function getNode(uint256 nodeId) external view returns (NodeSpec memory spec, address owner, NodeStatus status);
    /// @notice The number of nodes ever registered (the highest id).
    function nodeCount() external view returns (uint256);
}
