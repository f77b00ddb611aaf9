// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CheatCodes, Vm} from "./Vm.sol";
import {Federation} from "../../contracts/Federation.sol";
import {NodeRegistry} from "../../contracts/NodeRegistry.sol";
import {Market} from "../../contracts/Market.sol";
import {SettlementToken} from "../../contracts/SettlementToken.sol";
import {IMarket} from "../../contracts/interfaces/IMarket.sol";
import {INodeRegistry} from "../../contracts/interfaces/INodeRegistry.sol";

interface IMinter {
    function mintFor(address to, uint256 amount) external;
}

/// @notice Drives the market through random sequences of every action by every actor, and keeps the
///  ghost state the invariants compare against. Counts the calls that did not revert, per function.
contract MarketHandler is CheatCodes {
    /// @dev A bill as the handler builds it; packed for the market by _packBill (IMarket's layout).
    struct Bill {
        uint256 nodeId;
        uint128 computeFee;
        uint128 platformFee;
        address[] transitOperators;
        uint128[] transitFees;
    }

    /// @dev A matched deal's fields (ghost state) and its Matched bytes, which every lifecycle call takes.
    struct Deal {
        bytes32 id;
        address buyer;
        address seller;
        uint256 nodeId;
        uint64 logicMcu;
        uint64 parallelMcu;
        uint64 neuralMcu;
        bool valueless;
        uint128 computeFee;
        uint128 platformFee;
        uint128[] transitFees;
        bytes packed;
    }

    Federation public immutable federation;
    NodeRegistry public immutable registry;
    Market public immutable market;
    SettlementToken public immutable token;

    uint8 internal constant OPERATOR_ROLE = 1; // Roles.OPERATOR
    uint8 internal constant BUYER_ROLE = 8; // Roles.BUYER
    uint256 internal constant NBUYERS = 3;
    uint256[NBUYERS] internal buyerKeys = [uint256(0xB0B1), 0xB0B2, 0xB0B3];
    address[] public buyers;
    address[] public sellers;
    address[] public operators;
    address[] public matchers;
    address public arbiter; // also the token minter (the test contract)
    address internal immutable minter;
    uint256[] public nodes;

    // Every account that can hold an escrow balance or stake.
    address[] public actors;

    // ---- ghosts
    Deal[] internal _deals;
    mapping(bytes32 id => bool) public open; // matched and not final
    mapping(bytes32 id => uint256) public finalizations; // times a deal reached a final state
    mapping(bytes32 id => uint256) public matchesOf; // times an order id was matched
    bytes32[] public matchedIds;
    uint256 public lockedTotal; // sum of open value deals' totals
    mapping(uint256 nodeId => uint256[3]) internal _ghostReserved;
    uint256 public splitMismatches; // settlements whose parts did not sum to the released amount
    uint256 public doubleFinalizations;
    uint256 public doubleMatches;

    // signed orders kept for replays
    IMarket.Order[] internal _usedOrders;
    bytes[] internal _usedSigs;
    Bill[] internal _usedBills;
    uint256 internal _nonce;

    mapping(string name => uint256) public okCalls;
    string[] public callNames;

    constructor(Federation f, NodeRegistry r, Market m, SettlementToken t, address[] memory sellers_, address[] memory operators_, address[] memory matchers_, address arbiter_, uint256[] memory nodes_) {
        federation = f;
        registry = r;
        market = m;
        token = t;
        for (uint256 i; i < NBUYERS; ++i) buyers.push(vm.addr(buyerKeys[i]));
        sellers = sellers_;
        operators = operators_;
        matchers = matchers_;
        arbiter = arbiter_;
        minter = arbiter_;
        nodes = nodes_;
        for (uint256 i; i < buyers.length; ++i) actors.push(buyers[i]);
        for (uint256 i; i < sellers.length; ++i) actors.push(sellers[i]);
        for (uint256 i; i < operators.length; ++i) actors.push(operators[i]);
        string[14] memory names = ["deposit", "withdraw", "stake", "unstake", "matchSigned", "replaySigned", "matchBatch", "accept", "reject", "decline", "start", "complete", "settle", "dispute"];
        for (uint256 i; i < names.length; ++i) callNames.push(names[i]);
        callNames.push("resolve");
        callNames.push("timeout");
        callNames.push("warp");
        callNames.push("toggleOperator");
    }

    function buyerList() external view returns (address[] memory) {
        return buyers;
    }

    function actorList() external view returns (address[] memory) {
        return actors;
    }

    function nodeList() external view returns (uint256[] memory) {
        return nodes;
    }

    function dealCount() external view returns (uint256) {
        return _deals.length;
    }

    function ghostReserved(uint256 nodeId) external view returns (uint256[3] memory) {
        return _ghostReserved[nodeId];
    }

    function callNameCount() external view returns (uint256) {
        return callNames.length;
    }

    // ------------------------------------------------------------- escrow

    function deposit(uint256 who, uint256 amount) external {
        address a = actors[who % actors.length];
        amount = bound(amount, 1, 1_000e18);
        IMinter(minter).mintFor(a, amount);
        vm.startPrank(a);
        token.approve(address(market), amount);
        market.deposit(amount);
        vm.stopPrank();
        ++okCalls["deposit"];
    }

    function withdraw(uint256 who, uint256 amount) external {
        address a = actors[who % actors.length];
        uint256 bal = market.balanceOf(a);
        amount = bound(amount, 1, bal);
        vm.prank(a);
        market.withdraw(amount);
        ++okCalls["withdraw"];
    }

    function stake(uint256 who, uint256 amount) external {
        address s = sellers[who % sellers.length];
        uint256 bal = market.balanceOf(s);
        vm.prank(s);
        market.stake(bound(amount, 1, bal));
        ++okCalls["stake"];
    }

    function unstake(uint256 who, uint256 amount) external {
        address s = sellers[who % sellers.length];
        vm.prank(s);
        market.unstake(bound(amount, 1, 1_000e18));
        ++okCalls["unstake"];
    }

    // ------------------------------------------------------------ matching

    function _order(uint256 seed) internal returns (IMarket.Order memory o, uint256 key) {
        uint256 b = seed % NBUYERS;
        key = buyerKeys[b];
        o = IMarket.Order({
            buyer: buyers[b],
            logicMcu: uint64(bound(seed >> 8, 0, 3000)),
            parallelMcu: uint64(bound(seed >> 24, 0, 3000)),
            neuralMcu: uint64(bound(seed >> 40, 1, 3000)),
            memoryMib: 0,
            gpuModel: 0,
            gpuCount: 0,
            minTier: 0,
            duration: uint32(bound(seed >> 56, 60, 7200)),
            maxPricePerCuHour: type(uint128).max,
            maxTotal: type(uint128).max,
            maxLatencyMs: 0,
            minBandwidthMbps: 0,
            autoAccept: (seed >> 80) % 3 != 0,
            expiry: uint40(block.timestamp + 1 days),
            nonce: uint64(++_nonce)
        });
    }

    function _bill(IMarket.Order memory o, uint256 nodeId, uint256 seed) internal view returns (Bill memory bill) {
        (INodeRegistry.NodeSpec memory spec,,) = registry.getNode(nodeId);
        uint256 mcu = uint256(o.logicMcu) + o.parallelMcu + o.neuralMcu;
        uint256 compute = spec.pricePerCuHour * mcu * o.duration / 3_600_000;
        uint256 nOps = seed % 3;
        address[] memory ops = new address[](nOps);
        uint128[] memory fees = new uint128[](nOps);
        for (uint256 i; i < nOps; ++i) {
            ops[i] = operators[(seed >> (8 + i)) % operators.length];
            fees[i] = uint128(bound(seed >> (16 + 8 * i), 0, 5e18));
        }
        bill = Bill({
            nodeId: nodeId,
            computeFee: uint128(compute),
            platformFee: uint128(compute * federation.platformFeeBps() / 10_000),
            transitOperators: ops,
            transitFees: fees
        });
    }

    function _sign(IMarket.Order memory o, uint256 key) internal returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, market.orderId(o));
        return abi.encodePacked(r, s, v);
    }

    /// @dev IMarket's packed entry: the order's fields at their widths, the signature's length and the
    ///  signature, the packed bill.
    function _packEntry(IMarket.Order memory o, bytes memory sig, Bill memory bill) internal view returns (bytes memory) {
        bytes memory order = abi.encodePacked(
            o.buyer, o.logicMcu, o.parallelMcu, o.neuralMcu, o.memoryMib, o.gpuModel, o.gpuCount, o.minTier, o.duration
        );
        order = abi.encodePacked(
            order, o.maxPricePerCuHour, o.maxTotal, o.maxLatencyMs, o.minBandwidthMbps, o.autoAccept, o.expiry, o.nonce
        );
        return abi.encodePacked(order, uint16(sig.length), sig, _packBill(bill));
    }

    function _packBill(Bill memory bill) internal view returns (bytes memory packed) {
        uint256 n = bill.transitOperators.length;
        packed = abi.encodePacked(bill.nodeId, bill.computeFee, bill.platformFee, uint8(n));
        for (uint256 i; i < n; ++i) {
            (bool seated, uint8 seat) = market.seatOf(bill.transitOperators[i]); // a bill names it by its seat
            require(seated, "transit operator without a seat");
            packed = abi.encodePacked(packed, seat);
        }
        for (uint256 i; i < n; ++i) packed = abi.encodePacked(packed, bill.transitFees[i]);
    }

    /// @dev The Matched bytes of `id` among the logs recorded since vm.recordLogs (empty if none).
    function _matchedBytes(Vm.Log[] memory logs, bytes32 id) internal view returns (bytes memory) {
        for (uint256 i; i < logs.length; ++i) {
            Vm.Log memory l = logs[i];
            if (l.emitter == address(market) && l.topics.length == 2 && l.topics[0] == IMarket.Matched.selector
                && l.topics[1] == id) return abi.decode(l.data, (bytes));
        }
        return "";
    }

    function matchSigned(uint256 seed, uint256 nodeSeed, uint256 matcherSeed) external {
        (IMarket.Order memory o, uint256 key) = _order(seed);
        Bill memory bill = _bill(o, nodes[nodeSeed % nodes.length], seed >> 100);
        bytes memory sig = _sign(o, key);
        vm.prank(matchers[matcherSeed % matchers.length]);
        vm.recordLogs();
        bytes32 id = market.matchSigned(_packEntry(o, sig, bill));
        _recordMatch(id, o, bill, _matchedBytes(vm.getRecordedLogs(), id));
        _usedOrders.push(o);
        _usedSigs.push(sig);
        _usedBills.push(bill);
        ++okCalls["matchSigned"];
    }

    /// @dev Replays an order that was already matched: must never succeed.
    function replaySigned(uint256 index, uint256 matcherSeed) external {
        require(_usedOrders.length != 0, "nothing to replay");
        index %= _usedOrders.length;
        IMarket.Order memory o = _usedOrders[index];
        Bill memory bill = _usedBills[index];
        vm.prank(matchers[matcherSeed % matchers.length]);
        vm.recordLogs();
        bytes32 id = market.matchSigned(_packEntry(o, _usedSigs[index], bill));
        _recordMatch(id, o, bill, _matchedBytes(vm.getRecordedLogs(), id));
        ++okCalls["replaySigned"];
    }

    function matchBatch(uint256 seed, uint256 nodeSeed) external {
        IMarket.Order[] memory orders = new IMarket.Order[](3);
        Bill[] memory bills = new Bill[](3);
        bytes memory entries;
        for (uint256 i; i < 3; ++i) {
            uint256 key;
            (orders[i], key) = _order(uint256(keccak256(abi.encode(seed, i))));
            bills[i] = _bill(orders[i], nodes[(nodeSeed + i) % nodes.length], seed >> i);
            entries = abi.encodePacked(entries, _packEntry(orders[i], _sign(orders[i], key), bills[i]));
        }
        vm.prank(matchers[seed % matchers.length]);
        vm.recordLogs();
        market.matchSignedBatch(entries);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < 3; ++i) {
            bytes32 id = market.orderId(orders[i]);
            (IMarket.Status st,) = market.statusOf(id);
            if (st != IMarket.Status.None && matchesOf[id] == 0) {
                _recordMatch(id, orders[i], bills[i], _matchedBytes(logs, id));
            }
        }
        ++okCalls["matchBatch"];
    }

    function _recordMatch(bytes32 id, IMarket.Order memory o, Bill memory bill, bytes memory packed) internal {
        if (++matchesOf[id] > 1) ++doubleMatches;
        matchedIds.push(id);
        (, address owner,) = registry.getNode(bill.nodeId);
        Deal memory d = Deal({
            id: id,
            buyer: o.buyer,
            seller: owner,
            nodeId: bill.nodeId,
            logicMcu: o.logicMcu,
            parallelMcu: o.parallelMcu,
            neuralMcu: o.neuralMcu,
            valueless: federation.stage() == 1,
            computeFee: bill.computeFee,
            platformFee: bill.platformFee,
            transitFees: bill.transitFees,
            packed: packed
        });
        _deals.push(d);
        open[id] = true;
        if (!d.valueless) lockedTotal += _total(d);
        uint256[3] storage g = _ghostReserved[d.nodeId];
        g[0] += d.logicMcu;
        g[1] += d.parallelMcu;
        g[2] += d.neuralMcu;
    }

    // ----------------------------------------------------------- lifecycle
    // Each action picks, from a random offset, the first deal in the status the action needs (so the
    // campaign gets deep into the lifecycle), else any deal. A call that reverts reverts the handler
    // call, so Foundry's metrics (calls - reverts) count the non-reverting calls per function.

    function _pick(uint256 seed, IMarket.Status want) internal view returns (Deal memory) {
        uint256 n = _deals.length;
        require(n != 0, "no deals yet");
        for (uint256 k; k < n; ++k) {
            Deal memory d = _deals[(seed + k) % n];
            (IMarket.Status st,) = market.statusOf(d.id);
            if (st == want) return d;
        }
        return _deals[seed % n];
    }

    function accept(uint256 seed) external {
        Deal memory d = _pick(seed, IMarket.Status.Proposed);
        vm.prank(d.buyer);
        market.accept(d.id, d.packed);
        ++okCalls["accept"];
    }

    function reject(uint256 seed) external {
        _finalizing(_pick(seed, IMarket.Status.Proposed), 0, false, "reject");
    }

    function decline(uint256 seed) external {
        _finalizing(_pick(seed, IMarket.Status.Accepted), 1, false, "decline");
    }

    function start(uint256 seed) external {
        Deal memory d = _pick(seed, IMarket.Status.Accepted);
        vm.prank(d.seller);
        market.start(d.id, d.packed);
        ++okCalls["start"];
    }

    function complete(uint256 seed) external {
        Deal memory d = _pick(seed, IMarket.Status.Started);
        vm.prank(d.seller);
        market.complete(d.id, d.packed, "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e");
        _releaseGhost(d);
        ++okCalls["complete"];
    }

    /// @dev Any status on purpose: settling a settled deal must fail.
    function settle(uint256 seed, bool asBuyer, bool anyStatus) external {
        Deal memory d = anyStatus ? _deals[seed % _deals.length] : _pick(seed, IMarket.Status.Completed);
        _finalizing(d, asBuyer ? 2 : 3, false, "settle");
    }

    function dispute(uint256 seed) external {
        Deal memory d = _pick(seed, IMarket.Status.Completed);
        vm.prank(d.buyer);
        market.dispute(d.id, d.packed);
        ++okCalls["dispute"];
    }

    function resolve(uint256 seed, bool sellerWins) external {
        _finalizing(_pick(seed, IMarket.Status.Disputed), 4, sellerWins, "resolve");
    }

    function timeout(uint256 seed, uint8 want) external {
        _finalizing(_pick(seed, IMarket.Status(bound(want, 2, 6))), 5, false, "timeout");
    }

    /// @dev Governance (the founder, before stage 3) takes OPERATOR from a transit operator, leaving it a
    ///  buyer, or gives it back. Its seat and credits stay: deals already billed still pay it, it withdraws
    ///  what it earned, and new bills naming it are refused while it lacks the role.
    function toggleOperator(uint256 seed) external {
        address op = operators[seed % operators.length];
        uint8 roles = federation.rolesOf(op);
        vm.prank(arbiter);
        federation.setRoles(op, roles & OPERATOR_ROLE != 0 ? BUYER_ROLE : OPERATOR_ROLE);
        ++okCalls["toggleOperator"];
    }

    function warp(uint256 secondsForward) external {
        vm.warp(block.timestamp + bound(secondsForward, 1, 3 hours));
        ++okCalls["warp"];
    }

    /// @dev Runs a call that may end a deal, then checks its split: every token the deal released went
    ///  to some balance, stake change or fee, exactly.
    function _finalizing(Deal memory d, uint8 kind, bool flag, string memory name) internal {
        (IMarket.Status before,) = market.statusOf(d.id);
        bool reservedBefore = before == IMarket.Status.Proposed || before == IMarket.Status.Accepted
            || before == IMarket.Status.Started;
        int256 owedBefore = _owed();
        if (kind == 0) {
            vm.prank(d.buyer);
            market.reject(d.id, d.packed);
        } else if (kind == 1) {
            vm.prank(d.seller);
            market.decline(d.id, d.packed);
        } else if (kind == 2 || kind == 3) {
            vm.prank(kind == 2 ? d.buyer : arbiter);
            market.settle(d.id, d.packed);
        } else if (kind == 4) {
            vm.prank(arbiter);
            market.resolve(d.id, d.packed, flag);
        } else {
            vm.prank(arbiter);
            market.timeout(d.id, d.packed);
        }
        ++okCalls[name];
        if (++finalizations[d.id] > 1) ++doubleFinalizations;
        if (open[d.id]) {
            open[d.id] = false;
            if (!d.valueless) lockedTotal -= _total(d);
        }
        if (reservedBefore) _releaseGhost(d);
        // What the escrow owes outside locks rose by exactly the released total.
        int256 released = d.valueless ? int256(0) : int256(_total(d));
        if (_owed() - owedBefore != released) ++splitMismatches;
    }

    function _releaseGhost(Deal memory d) internal {
        uint256[3] storage g = _ghostReserved[d.nodeId];
        g[0] -= d.logicMcu;
        g[1] -= d.parallelMcu;
        g[2] -= d.neuralMcu;
    }

    /// @notice Everything the escrow owes outside open deals: balances, stakes, platform fees.
    function owedOutsideLocks() public view returns (uint256 sum) {
        for (uint256 i; i < actors.length; ++i) {
            sum += market.balanceOf(actors[i]) + market.stakeOf(actors[i]);
        }
        sum += market.platformFees();
    }

    function _owed() internal view returns (int256) {
        return int256(owedOutsideLocks());
    }

    function _total(Deal memory d) internal pure returns (uint256 t) {
        t = uint256(d.computeFee) + d.platformFee;
        for (uint256 i; i < d.transitFees.length; ++i) t += d.transitFees[i];
    }
}
