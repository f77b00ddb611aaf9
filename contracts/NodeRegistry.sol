// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {Federation} from "./Federation.sol";
import {Roles} from "./libraries/Roles.sol";

/// @title NodeRegistry
/// @notice Compute nodes, their network attachment, price, stake requirement and reserved capacity.
/// @dev Who may register per stage is Federation.sellerRoles(stage). Capacity is reserved and released
///  by the market only (set once by the founder). From stage 2 a node takes orders only while its
///  owner's stake (held by the market's escrow) covers `requiredStake(owner)`: the sum over the owner's
///  non-retired nodes of the minimum stake of each node's tier.
contract NodeRegistry is INodeRegistry {
    /// @notice The price does not fit the 96-bit storage field (max `maxPrice`).
    error PriceTooHigh(uint128 price, uint128 maxPrice);
    /// @notice Only the market may reserve and release capacity; `caller` is not it.
    error NotMarket(address caller);
    /// @notice The market is already wired (`market`).
    error MarketAlreadySet(address market);
    /// @notice Only the founder wires the market.
    error NotFounder(address caller);
    /// @notice Node `nodeId` has `free` mCU of class `class` (0 logic, 1 parallel, 2 neural); `requested` asked.
    error InsufficientCapacity(uint256 nodeId, uint8 class, uint64 requested, uint64 free);
    /// @notice The update would leave class `class` of node `nodeId` below its `reserved` mCU.
    error CapacityBelowReserved(uint256 nodeId, uint8 class, uint64 capacity, uint64 reserved);
    /// @notice A release larger than what is reserved (a market bug).
    error ReleaseExceedsReserved(uint256 nodeId, uint8 class, uint64 released, uint64 reserved);

    /// @notice Emitted when the market reserves capacity on node `nodeId`.
    event CapacityReserved(uint256 indexed nodeId, uint64 logicMcu, uint64 parallelMcu, uint64 neuralMcu);
    /// @notice Emitted when the market releases capacity on node `nodeId`.
    event CapacityReleased(uint256 indexed nodeId, uint64 logicMcu, uint64 parallelMcu, uint64 neuralMcu);
    /// @notice Emitted once, when the founder wires the market.
    event MarketSet(address indexed market);

    /// @notice What a reservation tells the market about the node.
    struct Reservation {
        address owner;
        uint96 pricePerCuHour;
        uint32 memoryMib;
        uint16 gpuModel;
        uint16 gpuCount;
        uint8 tier;
        uint256 requiredStake;
    }

    /// @dev Storage layout of a node (6 slots):
    ///  slot 0: logicMcu 64 | parallelMcu 64 | neuralMcu 64 | memoryMib 32 | gpuModel 16 | gpuCount 16
    ///  slot 1: reservedLogic 64 | reservedParallel 64 | reservedNeural 64 | tier 8 | status 8 | locatorLength 8
    ///  slot 2: owner 160 | pricePerCuHour 96 (read together at every match)
    ///  slot 3: operator 160; slot 4: router; slot 5: locator 128
    struct Node {
        uint64 logicMcu;
        uint64 parallelMcu;
        uint64 neuralMcu;
        uint32 memoryMib;
        uint16 gpuModel;
        uint16 gpuCount;
        uint64 reservedLogic;
        uint64 reservedParallel;
        uint64 reservedNeural;
        uint8 tier;
        NodeStatus status;
        uint8 locatorLength;
        address owner;
        uint96 pricePerCuHour;
        address operator;
        bytes32 router;
        bytes16 locator;
    }

    Federation public immutable federation;
    /// @notice Minimum stake (token base units) per tier 0..3, from stage 2.
    uint256 public immutable minStakeTier0;
    uint256 public immutable minStakeTier1;
    uint256 public immutable minStakeTier2;
    uint256 public immutable minStakeTier3;

    /// @notice The market allowed to reserve and release capacity.
    address public market;
    uint256 private _nodeCount;
    mapping(uint256 nodeId => Node) private _nodes;
    /// @notice The stake `owner` must hold for its nodes to take orders from stage 2.
    mapping(address owner => uint256) public requiredStake;

    constructor(Federation federation_, uint256[4] memory minStakePerTier) {
        federation = federation_;
        minStakeTier0 = minStakePerTier[0];
        minStakeTier1 = minStakePerTier[1];
        minStakeTier2 = minStakePerTier[2];
        minStakeTier3 = minStakePerTier[3];
    }

    /// @notice Wires the market, once. Founder only.
    function setMarket(address market_) external {
        if (msg.sender != federation.founder()) revert NotFounder(msg.sender);
        if (market != address(0)) revert MarketAlreadySet(market);
        if (market_ == address(0)) revert NotMarket(address(0));
        market = market_;
        emit MarketSet(market_);
    }

    /// @notice The minimum stake for a node of `tier` (0..3).
    function minStake(uint8 tier) public view returns (uint256) {
        if (tier == 0) return minStakeTier0;
        if (tier == 1) return minStakeTier1;
        if (tier == 2) return minStakeTier2;
        return minStakeTier3;
    }

    // ---------------------------------------------------------------- owner

    /// @inheritdoc INodeRegistry
    function registerNode(NodeSpec calldata spec) external override returns (uint256 nodeId) {
        uint8 stage = federation.stage();
        uint8 roles = federation.rolesOf(msg.sender);
        if (roles & federation.sellerRoles(stage) == 0) revert NotSeller(msg.sender, roles, stage);
        _validate(spec);
        unchecked {
            // A counter of registrations; 2**256 of them cannot happen.
            nodeId = ++_nodeCount;
        }
        Node storage n = _nodes[nodeId];
        _write(n, spec);
        n.status = NodeStatus.Active;
        n.owner = msg.sender;
        requiredStake[msg.sender] += minStake(spec.tier);
        emit NodeRegistered(nodeId, msg.sender, spec);
    }

    /// @inheritdoc INodeRegistry
    function updateNode(uint256 nodeId, NodeSpec calldata spec) external override {
        Node storage n = _owned(nodeId);
        if (n.status == NodeStatus.Retired) revert InvalidNodeStatus(nodeId, NodeStatus.Retired);
        _validate(spec);
        if (spec.logicMcu < n.reservedLogic) revert CapacityBelowReserved(nodeId, 0, spec.logicMcu, n.reservedLogic);
        if (spec.parallelMcu < n.reservedParallel) {
            revert CapacityBelowReserved(nodeId, 1, spec.parallelMcu, n.reservedParallel);
        }
        if (spec.neuralMcu < n.reservedNeural) revert CapacityBelowReserved(nodeId, 2, spec.neuralMcu, n.reservedNeural);
        uint8 oldTier = n.tier;
        if (oldTier != spec.tier) {
            requiredStake[msg.sender] = requiredStake[msg.sender] - minStake(oldTier) + minStake(spec.tier);
        }
        _write(n, spec);
        emit NodeUpdated(nodeId, spec);
    }

    /// @inheritdoc INodeRegistry
    function setPaused(uint256 nodeId, bool paused) external override {
        Node storage n = _owned(nodeId);
        NodeStatus status = n.status;
        if (status != (paused ? NodeStatus.Active : NodeStatus.Paused)) revert InvalidNodeStatus(nodeId, status);
        n.status = paused ? NodeStatus.Paused : NodeStatus.Active;
        emit NodePauseChanged(nodeId, paused);
    }

    /// @inheritdoc INodeRegistry
    function retireNode(uint256 nodeId) external override {
        Node storage n = _owned(nodeId);
        if (n.status == NodeStatus.Retired) revert InvalidNodeStatus(nodeId, NodeStatus.Retired);
        n.status = NodeStatus.Retired;
        requiredStake[msg.sender] -= minStake(n.tier);
        emit NodeRetired(nodeId);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc INodeRegistry
    function getNode(uint256 nodeId)
        external
        view
        override
        returns (NodeSpec memory spec, address owner, NodeStatus status)
    {
        Node storage n = _nodes[nodeId];
        if (n.status == NodeStatus.None) revert UnknownNode(nodeId);
        spec = NodeSpec({
            logicMcu: n.logicMcu,
            parallelMcu: n.parallelMcu,
            neuralMcu: n.neuralMcu,
            memoryMib: n.memoryMib,
            gpuModel: n.gpuModel,
            gpuCount: n.gpuCount,
            tier: n.tier,
            pricePerCuHour: n.pricePerCuHour,
            operator: n.operator,
            router: n.router,
            locator: n.locator,
            locatorLength: n.locatorLength
        });
        return (spec, n.owner, n.status);
    }

    /// @notice Capacity reserved by the market on node `nodeId`, per class (mCU).
    function reservedOf(uint256 nodeId) external view returns (uint64 logicMcu, uint64 parallelMcu, uint64 neuralMcu) {
        Node storage n = _nodes[nodeId];
        return (n.reservedLogic, n.reservedParallel, n.reservedNeural);
    }

    /// @inheritdoc INodeRegistry
    function nodeCount() external view override returns (uint256) {
        return _nodeCount;
    }

    // ---------------------------------------------------------------- market

    /// @notice Reserves capacity on an active node for a match, atomically: with several matchers racing,
    ///  the later reservation fails with InsufficientCapacity. Market only.
    /// @return r what the market checks the order and bill against (owner, price, memory, GPU, tier) and
    ///  the stake the owner must hold (checked by the market from stage 2).
    function reserve(uint256 nodeId, uint64 logicMcu, uint64 parallelMcu, uint64 neuralMcu)
        external
        returns (Reservation memory r)
    {
        if (msg.sender != market) revert NotMarket(msg.sender);
        Node storage n = _nodes[nodeId];
        NodeStatus status = n.status;
        if (status != NodeStatus.Active) {
            if (status == NodeStatus.None) revert UnknownNode(nodeId);
            revert InvalidNodeStatus(nodeId, status);
        }
        uint64 r0 = n.reservedLogic + logicMcu;
        uint64 r1 = n.reservedParallel + parallelMcu;
        uint64 r2 = n.reservedNeural + neuralMcu;
        if (r0 > n.logicMcu) revert InsufficientCapacity(nodeId, 0, logicMcu, n.logicMcu - n.reservedLogic);
        if (r1 > n.parallelMcu) revert InsufficientCapacity(nodeId, 1, parallelMcu, n.parallelMcu - n.reservedParallel);
        if (r2 > n.neuralMcu) revert InsufficientCapacity(nodeId, 2, neuralMcu, n.neuralMcu - n.reservedNeural);
        n.reservedLogic = r0;
        n.reservedParallel = r1;
        n.reservedNeural = r2;
        address owner = n.owner;
        emit CapacityReserved(nodeId, logicMcu, parallelMcu, neuralMcu);
        return Reservation({
            owner: owner,
            pricePerCuHour: n.pricePerCuHour,
            memoryMib: n.memoryMib,
            gpuModel: n.gpuModel,
            gpuCount: n.gpuCount,
            tier: n.tier,
            requiredStake: requiredStake[owner]
        });
    }

    /// @notice Releases capacity reserved earlier (completion, cancellation, timeout). Market only.
    ///  Works on paused and retired nodes too, so their running orders can finish.
    function release(uint256 nodeId, uint64 logicMcu, uint64 parallelMcu, uint64 neuralMcu) external {
        if (msg.sender != market) revert NotMarket(msg.sender);
        Node storage n = _nodes[nodeId];
        uint64 r0 = n.reservedLogic;
        uint64 r1 = n.reservedParallel;
        uint64 r2 = n.reservedNeural;
        if (logicMcu > r0) revert ReleaseExceedsReserved(nodeId, 0, logicMcu, r0);
        if (parallelMcu > r1) revert ReleaseExceedsReserved(nodeId, 1, parallelMcu, r1);
        if (neuralMcu > r2) revert ReleaseExceedsReserved(nodeId, 2, neuralMcu, r2);
        unchecked {
            // Each subtraction was just checked not to underflow.
            n.reservedLogic = r0 - logicMcu;
            n.reservedParallel = r1 - parallelMcu;
            n.reservedNeural = r2 - neuralMcu;
        }
        emit CapacityReleased(nodeId, logicMcu, parallelMcu, neuralMcu);
    }

    // ------------------------------------------------------------ internals

    function _owned(uint256 nodeId) private view returns (Node storage n) {
        n = _nodes[nodeId];
        if (n.status == NodeStatus.None) revert UnknownNode(nodeId);
        if (n.owner != msg.sender) revert NotNodeOwner(nodeId, msg.sender, n.owner);
    }

    function _validate(NodeSpec calldata spec) private view {
        if (spec.logicMcu == 0 && spec.parallelMcu == 0 && spec.neuralMcu == 0) revert ZeroCapacity();
        if (spec.tier > 3) revert InvalidTier(spec.tier);
        if ((spec.gpuModel == 0) != (spec.gpuCount == 0)) revert InvalidGpu(spec.gpuModel, spec.gpuCount);
        if (spec.locatorLength == 0 || spec.locatorLength > 128) revert InvalidLocatorLength(spec.locatorLength);
        if (spec.pricePerCuHour > type(uint96).max) revert PriceTooHigh(spec.pricePerCuHour, type(uint96).max);
        if (!federation.hasRole(spec.operator, Roles.OPERATOR)) revert NotAnOperator(spec.operator);
    }

    function _write(Node storage n, NodeSpec calldata spec) private {
        n.logicMcu = spec.logicMcu;
        n.parallelMcu = spec.parallelMcu;
        n.neuralMcu = spec.neuralMcu;
        n.memoryMib = spec.memoryMib;
        n.gpuModel = spec.gpuModel;
        n.gpuCount = spec.gpuCount;
        n.tier = spec.tier;
        n.locatorLength = spec.locatorLength;
        // The cast is safe: _validate checked the price fits 96 bits.
        n.pricePerCuHour = uint96(spec.pricePerCuHour);
        n.operator = spec.operator;
        n.router = spec.router;
        n.locator = spec.locator;
    }
}
