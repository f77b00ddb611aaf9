// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {IMarketSync} from "./interfaces/IMarketSync.sol";
import {Federation} from "./Federation.sol";
import {Roles} from "./libraries/Roles.sol";

/// @title NodeRegistry
/// @notice Compute nodes, their network attachment, price, stake requirement and reserved capacity.
/// @dev Who may register per stage is Federation.sellerRoles(stage). Every change is pushed to the
///  market (set once by the founder), which keeps what a match reads and reserves and releases capacity. From stage 2 a node takes orders only while its
///  owner's stake (held by the market's escrow) covers `requiredStake(owner)`: the sum over the owner's
///  non-retired nodes of the minimum stake of each node's tier.
contract NodeRegistry is INodeRegistry {
    /// @notice The price does not fit the 96-bit storage field (max `maxPrice`).
    error PriceTooHigh(uint128 price, uint128 maxPrice);
    /// @notice Only the founder wires the market, once, to a non-zero address; `market` was given.
    error NotMarket(address market);
    /// @notice The market is already wired (`market`).
    error MarketAlreadySet(address market);
    /// @notice Only the founder wires the market.
    error NotFounder(address caller);
    /// @notice A class of capacity (0 logic, 1 parallel, 2 neural) of `mcu` exceeds the `max` a node may offer.
    error CapacityTooLarge(uint8 class, uint64 mcu, uint64 max);

    /// @notice Emitted once, when the founder wires the market.
    event MarketSet(address indexed market);

    /// @notice The most mCU a node may offer per class (the market packs free capacity in 48 bits).
    uint64 public constant MAX_CAPACITY_MCU = type(uint48).max;

    /// @dev Storage layout of a node (7 slots; the market keeps its own copy of what a match reads):
    ///  slot 0: logicMcu 64 | parallelMcu 64 | neuralMcu 64 | memoryMib 32 | gpuModel 16 | gpuCount 16
    ///  slot 1: tier 8 | status 8 | locatorLength 8
    ///  slot 2: owner 160 | pricePerCuHour 96
    ///  slot 3: operator 160; slot 4: router; slot 5: locator 128; slot 6: encryptionKey
    struct Node {
        uint64 logicMcu;
        uint64 parallelMcu;
        uint64 neuralMcu;
        uint32 memoryMib;
        uint16 gpuModel;
        uint16 gpuCount;
        uint8 tier;
        NodeStatus status;
        uint8 locatorLength;
        address owner;
        uint96 pricePerCuHour;
        address operator;
        bytes32 router;
        bytes16 locator;
        bytes32 encryptionKey;
    }

    Federation public immutable federation;
    /// @notice Minimum stake (token base units) per tier 0..3, from stage 2.
    uint256 public immutable minStakeTier0;
    uint256 public immutable minStakeTier1;
    uint256 public immutable minStakeTier2;
    uint256 public immutable minStakeTier3;

    /// @notice The market: it keeps each node's terms and free capacity (pushed on every change here)
    ///  and reserves and releases capacity itself, so a match calls no other contract.
    IMarketSync public market;
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

    /// @notice Wires the market, once, and pushes every node registered so far (and its owner's stake
    ///  requirement) to it. Founder only.
    function setMarket(IMarketSync market_) external {
        if (msg.sender != federation.founder()) revert NotFounder(msg.sender);
        if (address(market) != address(0)) revert MarketAlreadySet(address(market));
        if (address(market_) == address(0)) revert NotMarket(address(0));
        market = market_;
        emit MarketSet(address(market_));
        uint256 count = _nodeCount;
        for (uint256 id = 1; id <= count; ++id) {
            _pushNode(id);
            address owner = _nodes[id].owner;
            market_.syncRequiredStake(owner, requiredStake[owner]);
        }
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
        uint256 required = requiredStake[msg.sender] + minStake(spec.tier);
        requiredStake[msg.sender] = required;
        emit NodeRegistered(nodeId, msg.sender, spec);
        _pushNode(nodeId);
        _pushRequired(msg.sender, required);
    }

    /// @inheritdoc INodeRegistry
    function updateNode(uint256 nodeId, NodeSpec calldata spec) external override {
        Node storage n = _owned(nodeId);
        if (n.status == NodeStatus.Retired) revert InvalidNodeStatus(nodeId, NodeStatus.Retired);
        _validate(spec);
        uint8 oldTier = n.tier;
        _write(n, spec);
        emit NodeUpdated(nodeId, spec);
        // The market refuses (CapacityBelowReserved) a capacity below what its open deals reserve.
        _pushNode(nodeId);
        if (oldTier != spec.tier) {
            uint256 required = requiredStake[msg.sender] - minStake(oldTier) + minStake(spec.tier);
            requiredStake[msg.sender] = required;
            _pushRequired(msg.sender, required);
        }
    }

    /// @inheritdoc INodeRegistry
    function setPaused(uint256 nodeId, bool paused) external override {
        Node storage n = _owned(nodeId);
        NodeStatus status = n.status;
        if (status != (paused ? NodeStatus.Active : NodeStatus.Paused)) revert InvalidNodeStatus(nodeId, status);
        NodeStatus next = paused ? NodeStatus.Paused : NodeStatus.Active;
        n.status = next;
        emit NodePauseChanged(nodeId, paused);
        _pushStatus(nodeId, next);
    }

    /// @inheritdoc INodeRegistry
    function retireNode(uint256 nodeId) external override {
        Node storage n = _owned(nodeId);
        if (n.status == NodeStatus.Retired) revert InvalidNodeStatus(nodeId, NodeStatus.Retired);
        n.status = NodeStatus.Retired;
        uint256 required = requiredStake[msg.sender] - minStake(n.tier);
        requiredStake[msg.sender] = required;
        emit NodeRetired(nodeId);
        _pushStatus(nodeId, NodeStatus.Retired);
        _pushRequired(msg.sender, required);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc INodeRegistry
    function getNode(uint256 nodeId)
        external
        view
        override
        returns (NodeSpec memory spec, address owner, NodeStatus status)
    {
        if (_nodes[nodeId].status == NodeStatus.None) revert UnknownNode(nodeId);
        return _spec(nodeId);
    }

    function _spec(uint256 nodeId) private view returns (NodeSpec memory spec, address owner, NodeStatus status) {
        Node storage n = _nodes[nodeId];
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
            locatorLength: n.locatorLength,
            encryptionKey: n.encryptionKey
        });
        return (spec, n.owner, n.status);
    }

    /// @notice Capacity reserved by open deals on node `nodeId`, per class (mCU), as the market holds it.
    function reservedOf(uint256 nodeId) external view returns (uint64 logicMcu, uint64 parallelMcu, uint64 neuralMcu) {
        if (address(market) == address(0)) return (0, 0, 0);
        return market.reservedOf(nodeId);
    }

    /// @inheritdoc INodeRegistry
    function nodeCount() external view override returns (uint256) {
        return _nodeCount;
    }

    // ---------------------------------------------------------------- market

    function _pushNode(uint256 nodeId) private {
        IMarketSync m = market;
        if (address(m) == address(0)) return;
        (NodeSpec memory spec, address owner, NodeStatus status) = _spec(nodeId);
        m.syncNode(nodeId, owner, spec, status);
    }

    function _pushStatus(uint256 nodeId, NodeStatus status) private {
        IMarketSync m = market;
        if (address(m) != address(0)) m.syncNodeStatus(nodeId, status);
    }

    function _pushRequired(address owner, uint256 required) private {
        IMarketSync m = market;
        if (address(m) != address(0)) m.syncRequiredStake(owner, required);
    }

    // ------------------------------------------------------------ internals

    function _owned(uint256 nodeId) private view returns (Node storage n) {
        n = _nodes[nodeId];
        if (n.status == NodeStatus.None) revert UnknownNode(nodeId);
        if (n.owner != msg.sender) revert NotNodeOwner(nodeId, msg.sender, n.owner);
    }

    function _validate(NodeSpec calldata spec) private view {
        if (spec.logicMcu == 0 && spec.parallelMcu == 0 && spec.neuralMcu == 0) revert ZeroCapacity();
        if (spec.logicMcu > MAX_CAPACITY_MCU) revert CapacityTooLarge(0, spec.logicMcu, MAX_CAPACITY_MCU);
        if (spec.parallelMcu > MAX_CAPACITY_MCU) revert CapacityTooLarge(1, spec.parallelMcu, MAX_CAPACITY_MCU);
        if (spec.neuralMcu > MAX_CAPACITY_MCU) revert CapacityTooLarge(2, spec.neuralMcu, MAX_CAPACITY_MCU);
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
        n.encryptionKey = spec.encryptionKey;
    }
}
