// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CheatCodes, Vm} from "./Vm.sol";
import {Codec} from "./Codec.sol";
import {Federation} from "../../contracts/Federation.sol";
import {NodeRegistry} from "../../contracts/NodeRegistry.sol";
import {Market} from "../../contracts/Market.sol";
import {SettlementToken} from "../../contracts/SettlementToken.sol";
import {IMarket} from "../../contracts/interfaces/IMarket.sol";
import {IMarketTypes} from "../../contracts/interfaces/IMarketTypes.sol";
import {INodeRegistry} from "../../contracts/interfaces/INodeRegistry.sol";

interface IMinter {
    function mintFor(address to, uint256 amount) external;
}

/// @notice Who the handler acts as (MarketSetup deploys them).
struct Cast {
    address founder;
    address[] buyers;
    uint256[] buyerKeys;
    address[] sellers;
    address[] operators;
    address[] matchers;
    address[] arbiters;
    address[] candidates;
    address malicious;
    uint256[] nodes;
}

/// @notice Drives the market through random sequences of every action by every actor, including issue 14's
///  handler groups (posted orders, registry actions while deals are open, stage changes, fee and tariff
///  changes, stage-3 operator votes, a malicious matcher), and keeps the ghost state the invariants compare
///  against. A handler call that the market refuses reverts as a whole (so Foundry's metrics count the
///  non-reverting calls per function), except the malicious matcher's, whose refusal is the expected outcome.
///  Every value-moving call is checked party by party: each tracked account's balance, unlocked stake and
///  unstaking amount, and the platform fees, must move by exactly what the rules give it.
contract MarketHandler is CheatCodes {
    /// @dev A matched deal (ghost) and its Matched bytes, which every lifecycle call takes.
    struct Deal {
        bytes32 id;
        address buyer;
        address seller;
        uint256 nodeId;
        uint64 logicMcu;
        uint64 parallelMcu;
        uint64 neuralMcu;
        uint32 duration;
        uint32 minRunSeconds;
        uint32 maxLatencyMs;
        bool valueless;
        uint128 computeFee;
        uint128 platformFee;
        uint128 maxTotal;
        uint8[] seats;
        uint128[] fees;
        bytes packed;
    }

    /// @dev An honest bill for an order on a node: every fee at its rule, the node's operator on the path.
    struct Plan {
        uint256 nodeId;
        address seller;
        uint128 computeFee;
        uint128 platformFee;
        uint8[] seats;
        uint128[] fees;
        uint256 transit;
    }

    /// @dev What each tracked account holds in the escrow (balance with transit credits, unlocked stake,
    ///  unstaking amount) and the platform fees; as a snapshot, or as the moves a call should make.
    struct Books {
        int256[] balance;
        int256[] stake;
        int256[] unstaking;
        int256 fees;
    }

    struct Posted {
        IMarket.Order order;
        uint256 locked;
        uint256 nodeId; // the node its limits were planned on
    }

    uint8 internal constant OPERATOR_ROLE = 1;
    uint8 internal constant BUYER_ROLE = 8;
    uint256 internal constant MAX_NODES = 10;
    uint256 internal constant MBPS_SECONDS_PER_GBPS_HOUR = 3_600_000;
    uint256 internal constant BPS = 10_000;

    // finalizing calls
    uint8 internal constant REJECT = 0;
    uint8 internal constant DECLINE = 1;
    uint8 internal constant SETTLE_BUYER = 2;
    uint8 internal constant SETTLE_ANYONE = 3;
    uint8 internal constant RESOLVE = 4;
    uint8 internal constant TIMEOUT = 5;

    Federation public immutable federation;
    NodeRegistry public immutable registry;
    Market public immutable market;
    SettlementToken public immutable token;
    address public immutable founder;
    address internal immutable _minter;
    address internal immutable _malicious;
    uint32 internal immutable _window;
    uint16 internal immutable _bondBps;

    address[] internal _buyers;
    uint256[] internal _buyerKeys;
    address[] internal _sellers;
    address[] internal _operators; // every account that may hold OPERATOR: founder, internal, candidates
    address[] internal _matchers;
    address[] internal _arbiters;
    uint256[] internal _nodes;
    /// @notice Every account whose escrow books are checked after each call (the whole cast).
    address[] public actors;
    mapping(address => uint256) internal _actorIndexPlusOne;

    // ---- ghosts
    Deal[] internal _deals;
    mapping(bytes32 id => uint256) public finalizations;
    mapping(bytes32 id => uint256) public matchesOf;
    mapping(bytes32 id => uint256) internal _startedAt;
    mapping(bytes32 id => uint256) internal _used;
    mapping(bytes32 id => uint256) internal _bond;
    mapping(bytes32 id => uint256) internal _disputedAt; // block number
    mapping(bytes32 id => bool) internal _breached;
    mapping(bytes32 id => uint256) internal _paidAtMatch;
    Posted[] internal _posted;
    mapping(uint256 nodeId => uint256[3]) internal _ghostReserved;

    /// @notice Tokens the escrow holds for open value deals (the buyer's bill and the seller's stake lock),
    ///  posted orders' locks and dispute bonds.
    uint256 public heldForDealsAndOrders;
    uint256 public splitMismatches;
    uint256 public doubleFinalizations;
    uint256 public doubleMatches;
    /// @notice Calls after which some tracked account's books moved other than by its exact share.
    uint256 public partyMismatches;
    string public firstPartyMismatch;
    /// @notice Deals whose buyer was debited above what it signed (at the match, or net after payout).
    uint256 public buyerOverpaid;
    /// @notice Matched events whose bytes differ from the deal packed from the same fields with encodePacked.
    uint256 public dealCodecMismatches;
    /// @notice Malicious bills the market accepted, and refusals with another error than the defect's.
    uint256 public maliciousAccepted;
    uint256 public maliciousWrongError;
    string public firstWrongError;
    /// @notice Orders matched after their epoch ended, their buyer cancelled them, or their nonce fell
    ///  below the buyer's floor.
    uint256 public staleOrdersMatched;

    mapping(string name => uint256) public okCalls;
    string[] public callNames;

    constructor(Federation f, NodeRegistry r, Market m, SettlementToken t, Cast memory cast, uint32 window, uint16 bondBps) {
        federation = f;
        registry = r;
        market = m;
        token = t;
        founder = cast.founder;
        _minter = cast.founder;
        _malicious = cast.malicious;
        _window = window;
        _bondBps = bondBps;
        _buyers = cast.buyers;
        _buyerKeys = cast.buyerKeys;
        _sellers = cast.sellers;
        _matchers = cast.matchers;
        _arbiters = cast.arbiters;
        _nodes = cast.nodes;
        _operators.push(cast.founder);
        for (uint256 i; i < cast.operators.length; ++i) _operators.push(cast.operators[i]);
        for (uint256 i; i < cast.candidates.length; ++i) _operators.push(cast.candidates[i]);
        _track(_buyers);
        _track(_sellers);
        _track(_operators);
        _track(_matchers);
        _track(_arbiters);
        address[] memory one = new address[](1);
        one[0] = cast.malicious;
        _track(one);
        string[38] memory names = [
            "deposit", "withdraw", "stake", "requestUnstake", "claimUnstake", "withdrawFees", "matchSigned",
            "replaySigned", "matchBatch", "cancelAllOrders", "accept", "reject", "decline", "start", "complete",
            "settle", "dispute", "resolve", "timeout", "reportSlaBreach", "exitPastDeadline", "warp",
            "toggleOperator", "postOrder", "cancelOrder", "expireOrder", "matchPosted", "registerNode", "updateNode",
            "pauseNode", "retireNode", "advanceStage", "setPlatformFee", "setTariff", "proposeOperator",
            "proposeOperatorRemoval", "vote", "maliciousMatch"
        ];
        for (uint256 i; i < names.length; ++i) callNames.push(names[i]);
    }

    function _track(address[] memory accounts) internal {
        for (uint256 i; i < accounts.length; ++i) {
            if (_actorIndexPlusOne[accounts[i]] != 0) continue;
            actors.push(accounts[i]);
            _actorIndexPlusOne[accounts[i]] = actors.length;
        }
    }

    // ------------------------------------------------------------------ views for the invariants

    function actorList() external view returns (address[] memory) {
        return actors;
    }

    function nodeList() external view returns (uint256[] memory) {
        return _nodes;
    }

    function operatorList() external view returns (address[] memory) {
        return _operators;
    }

    function dealCount() external view returns (uint256) {
        return _deals.length;
    }

    function postedCount() external view returns (uint256) {
        return _posted.length;
    }

    function ghostReserved(uint256 nodeId) external view returns (uint256[3] memory) {
        return _ghostReserved[nodeId];
    }

    function callNameCount() external view returns (uint256) {
        return callNames.length;
    }

    /// @notice Everything the escrow owes the tracked accounts and the platform outside deals and orders.
    function owedOutsideDeals() public view returns (uint256 sum) {
        for (uint256 i; i < actors.length; ++i) {
            (uint256 unstaking,) = market.unstakingOf(actors[i]);
            sum += market.balanceOf(actors[i]) + market.stakeOf(actors[i]) + unstaking;
        }
        sum += market.platformFees();
    }

    // ------------------------------------------------------------------ escrow

    function deposit(uint256 who, uint256 amount) external {
        address a = actors[who % actors.length];
        amount = bound(amount, 1, 1_000e18);
        IMinter(_minter).mintFor(a, amount);
        Books memory before = _snap();
        Books memory e = _none();
        _add(e.balance, a, int256(amount));
        vm.startPrank(a);
        token.approve(address(market), type(uint256).max);
        market.deposit(amount);
        vm.stopPrank();
        _checkMoves(before, e, "deposit");
        ++okCalls["deposit"];
    }

    function withdraw(uint256 who, uint256 amount) external {
        address a = actors[who % actors.length];
        amount = bound(amount, 1, market.balanceOf(a));
        Books memory before = _snap();
        Books memory e = _none();
        _add(e.balance, a, -int256(amount));
        vm.prank(a);
        market.withdraw(amount);
        _checkMoves(before, e, "withdraw");
        ++okCalls["withdraw"];
    }

    function stake(uint256 who, uint256 amount) external {
        address s = _sellers[who % _sellers.length];
        amount = bound(amount, 1, market.balanceOf(s));
        Books memory before = _snap();
        Books memory e = _none();
        _add(e.balance, s, -int256(amount));
        _add(e.stake, s, int256(amount));
        vm.prank(s);
        market.stake(amount);
        _checkMoves(before, e, "stake");
        ++okCalls["stake"];
    }

    function requestUnstake(uint256 who, uint256 amount) external {
        address s = _sellers[who % _sellers.length];
        int256 spare = int256(market.stakeOf(s)) - int256(market.requiredStakeOf(s));
        amount = bound(amount, 1, spare > 0 ? uint256(spare) : 1);
        Books memory before = _snap();
        Books memory e = _none();
        _add(e.stake, s, -int256(amount));
        _add(e.unstaking, s, int256(amount));
        vm.prank(s);
        market.requestUnstake(amount);
        _checkMoves(before, e, "requestUnstake");
        ++okCalls["requestUnstake"];
    }

    function claimUnstake(uint256 who) external {
        address s = _sellers[who % _sellers.length];
        (uint256 amount, uint40 readyAt) = market.unstakingOf(s);
        if (amount != 0 && block.timestamp < readyAt && readyAt - block.timestamp <= _window) vm.warp(readyAt);
        Books memory before = _snap();
        Books memory e = _none();
        _add(e.balance, s, int256(amount));
        _add(e.unstaking, s, -int256(amount));
        vm.prank(s);
        market.claimUnstake();
        _checkMoves(before, e, "claimUnstake");
        ++okCalls["claimUnstake"];
    }

    function withdrawFees() external {
        Books memory before = _snap();
        Books memory e = _none();
        e.fees = -int256(market.platformFees());
        vm.prank(founder);
        market.withdrawFees();
        _checkMoves(before, e, "withdrawFees");
        ++okCalls["withdrawFees"];
    }

    // ------------------------------------------------------------------ orders and bills

    /// @dev A fresh order of a random buyer (limits filled in by _fit), signed in the current epoch.
    function _order(uint256 seed) internal returns (IMarket.Order memory o, uint256 key) {
        uint256 b = seed % _buyers.length;
        key = _buyerKeys[b];
        uint32 duration = uint32(bound(seed >> 56, 60, 7200));
        o.buyer = _buyers[b];
        o.logicMcu = uint64(bound(seed >> 8, 0, 3000));
        o.parallelMcu = uint64(bound(seed >> 24, 0, 3000));
        o.neuralMcu = uint64(bound(seed >> 40, 1, 3000));
        o.memoryMib = uint32(bound(seed >> 88, 0, 1024));
        o.duration = duration;
        o.minRunSeconds = uint32(bound(seed >> 120, 0, duration / 4));
        o.maxPricePerCuHour = type(uint128).max;
        o.maxLatencyMs = uint32(bound(seed >> 152, 1, 200));
        o.minBandwidthMbps = uint32(bound(seed >> 168, 1, 1000));
        o.autoAccept = (seed >> 80) % 3 != 0;
        o.expiry = uint40(block.timestamp + 1 days);
        o.nonce = market.nonceFloorOf(o.buyer) + uint64(_orderCount++);
        o.epoch = federation.epoch();
        o.specDigest = keccak256(abi.encode(seed, "spec"));
        o.serviceId = (seed >> 184) % 2 == 0 ? bytes32(0) : keccak256(abi.encode(seed, "service"));
        o.apnId = uint64(seed >> 192);
        o.apnSlaClass = uint8(seed >> 248);
    }

    uint256 internal _orderCount;

    /// @dev The honest bill for `o` on `nodeId`: the node operator's seat and up to two more active seats,
    ///  in a random order, each fee its tariff x bandwidth x seconds / 3.6e6.
    function _plan(IMarket.Order memory o, uint256 nodeId, uint256 seed) internal view returns (Plan memory p) {
        (INodeRegistry.NodeSpec memory spec, address owner,) = registry.getNode(nodeId);
        p.nodeId = nodeId;
        p.seller = owner;
        uint256 mcu = uint256(o.logicMcu) + o.parallelMcu + o.neuralMcu;
        uint256 compute = uint256(spec.pricePerCuHour) * mcu * o.duration / 3_600_000;
        p.computeFee = uint128(compute);
        p.platformFee = uint128(compute * federation.platformFeeBps() / BPS);
        (, uint8 nodeSeat) = market.seatOf(spec.operator);
        address[] memory seated = market.transitOperators();
        uint8[] memory pick = new uint8[](3);
        uint256 k = 0;
        uint256 extra = seed % 3;
        for (uint256 j; j < seated.length && k < extra; ++j) {
            uint256 s = (seed >> 8 + j) % seated.length;
            if (s == nodeSeat || !federation.hasRole(seated[s], OPERATOR_ROLE)) continue;
            bool dup;
            for (uint256 q; q < k; ++q) dup = dup || pick[q] == s;
            if (!dup) pick[k++] = uint8(s);
        }
        uint256 at = (seed >> 32) % (k + 1);
        p.seats = new uint8[](k + 1);
        p.fees = new uint128[](k + 1);
        uint256 from;
        for (uint256 i; i <= k; ++i) {
            p.seats[i] = i == at ? nodeSeat : pick[from++];
            p.fees[i] = _transitFee(seated[p.seats[i]], o);
            p.transit += p.fees[i];
        }
    }

    function _transitFee(address operator, IMarket.Order memory o) internal view returns (uint128) {
        return uint128(
            market.transitTariffOf(operator) * uint256(o.minBandwidthMbps) * o.duration / MBPS_SECONDS_PER_GBPS_HOUR
        );
    }

    function _total(Plan memory p) internal pure returns (uint256) {
        return uint256(p.computeFee) + p.platformFee + p.transit;
    }

    /// @dev Sets the order's limits to the plan's bill, with some slack or none.
    function _fit(IMarket.Order memory o, Plan memory p, uint256 seed) internal pure {
        o.maxTransit = uint128(p.transit + (seed % 2 == 0 ? 0 : bound(seed >> 8, 0, 1e18)));
        o.maxTotal = uint128(_total(p) + (seed % 3 == 0 ? 0 : bound(seed >> 16, 0, 5e18)));
    }

    function _bill(Plan memory p) internal pure returns (bytes memory) {
        return Codec.bill(p.nodeId, p.computeFee, p.platformFee, p.seats, p.fees);
    }

    function _sign(IMarket.Order memory o, uint256 key) internal returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, market.orderId(o));
        return abi.encodePacked(r, s, v);
    }

    function _keyOf(address buyer) internal view returns (uint256) {
        for (uint256 i; i < _buyers.length; ++i) {
            if (_buyers[i] == buyer) return _buyerKeys[i];
        }
        revert("not a buyer");
    }

    /// @dev The Matched bytes of `id` among `logs` (empty if none).
    function _matchedBytes(Vm.Log[] memory logs, bytes32 id) internal view returns (bytes memory) {
        for (uint256 i; i < logs.length; ++i) {
            Vm.Log memory l = logs[i];
            if (
                l.emitter == address(market) && l.topics.length == 2 && l.topics[0] == IMarketTypes.Matched.selector
                    && l.topics[1] == id
            ) return abi.decode(l.data, (bytes));
        }
        return "";
    }

    /// @dev The revert data of the MatchFailed event of `id` among `logs` (empty if none).
    function _matchFailure(Vm.Log[] memory logs, bytes32 id) internal view returns (bytes memory) {
        for (uint256 i; i < logs.length; ++i) {
            Vm.Log memory l = logs[i];
            if (
                l.emitter == address(market) && l.topics.length == 2
                    && l.topics[0] == IMarketTypes.MatchFailed.selector && l.topics[1] == id
            ) {
                (, bytes memory reason) = abi.decode(l.data, (uint256, bytes));
                return reason;
            }
        }
        return "";
    }

    // ------------------------------------------------------------------ matching

    function matchSigned(uint256 seed, uint256 nodeSeed, uint256 matcherSeed) external {
        (IMarket.Order memory o, uint256 key) = _order(seed);
        Plan memory p = _plan(o, _nodes[nodeSeed % _nodes.length], seed >> 100);
        _fit(o, p, seed >> 60);
        address matcher = _matchers[matcherSeed % _matchers.length];
        if ((seed >> 200) % 4 == 0) o.matcher = matcher; // pinned to the matcher that submits it
        _matchSignedAs(matcher, o, _sign(o, key), p);
        ++okCalls["matchSigned"];
    }

    function _matchSignedAs(address matcher, IMarket.Order memory o, bytes memory sig, Plan memory p) internal {
        Books memory before = _snap();
        vm.recordLogs();
        vm.prank(matcher);
        bytes32 id = market.matchSigned(Codec.entry(o, sig, _bill(p)));
        _recordMatch(id, matcher, o, p, _matchedBytes(vm.getRecordedLogs(), id), before, 0);
        _usedOrders.push(o);
        _usedSigs.push(sig);
        _usedPlans.push(p);
    }

    IMarket.Order[] internal _usedOrders;
    bytes[] internal _usedSigs;
    Plan[] internal _usedPlans;

    /// @dev Replays an order that was already matched: must never succeed.
    function replaySigned(uint256 index, uint256 matcherSeed) external {
        require(_usedOrders.length != 0, "nothing to replay");
        index %= _usedOrders.length;
        IMarket.Order memory o = _usedOrders[index];
        Plan memory p = _usedPlans[index];
        address matcher = o.matcher != address(0) ? o.matcher : _matchers[matcherSeed % _matchers.length];
        Books memory before = _snap();
        vm.recordLogs();
        vm.prank(matcher);
        bytes32 id = market.matchSigned(Codec.entry(o, _usedSigs[index], _bill(p)));
        _recordMatch(id, matcher, o, p, _matchedBytes(vm.getRecordedLogs(), id), before, 0);
        ++okCalls["replaySigned"];
    }

    function matchBatch(uint256 seed, uint256 nodeSeed) external {
        IMarket.Order[] memory orders = new IMarket.Order[](3);
        Plan[] memory plans = new Plan[](3);
        bytes memory entries;
        for (uint256 i; i < 3; ++i) {
            uint256 s = uint256(keccak256(abi.encode(seed, i)));
            uint256 key;
            (orders[i], key) = _order(s);
            plans[i] = _plan(orders[i], _nodes[(nodeSeed % _nodes.length + i) % _nodes.length], s >> 100);
            _fit(orders[i], plans[i], s >> 60);
            entries = abi.encodePacked(entries, Codec.entry(orders[i], _sign(orders[i], key), _bill(plans[i])));
        }
        address matcher = _matchers[seed % _matchers.length];
        // The books move for every entry at once: each match is checked against the snapshot taken before
        // it plus the moves of the matches before it, so the batch's moves are checked as one.
        Books memory before = _snap();
        vm.recordLogs();
        vm.prank(matcher);
        market.matchSignedBatch(entries);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        Books memory e = _none();
        for (uint256 i; i < 3; ++i) {
            bytes32 id = market.orderId(orders[i]);
            bytes memory packed = _matchedBytes(logs, id);
            if (packed.length != 0) {
                _addMatchMoves(e, orders[i], plans[i], 0);
                _recordDeal(id, matcher, orders[i], plans[i], packed);
            }
        }
        _checkMoves(before, e, "matchBatch");
        ++okCalls["matchBatch"];
    }

    /// @dev Records a successful match: the deal ghost, its books moves (checked against `before`), and the
    ///  differential check of the emitted deal bytes.
    function _recordMatch(
        bytes32 id,
        address matcher,
        IMarket.Order memory o,
        Plan memory p,
        bytes memory packed,
        Books memory before,
        uint256 prepaid
    ) internal {
        Books memory e = _none();
        _addMatchMoves(e, o, p, prepaid);
        uint256 buyerBefore = uint256(before.balance[_idx(o.buyer)]);
        _checkMoves(before, e, "match");
        uint256 buyerAfter = market.balanceOf(o.buyer);
        _recordDeal(id, matcher, o, p, packed);
        if (federation.stage() != 1 || prepaid != 0) {
            // What the buyer parted with for this deal: its balance's drop plus what its posted order locked.
            uint256 paid = buyerBefore + prepaid - buyerAfter;
            _paidAtMatch[id] = paid;
            if (paid > o.maxTotal || paid != _total(p)) ++buyerOverpaid;
        }
    }

    function _addMatchMoves(Books memory e, IMarket.Order memory o, Plan memory p, uint256 prepaid) internal view {
        if (federation.stage() == 1) {
            _add(e.balance, o.buyer, int256(prepaid));
            return;
        }
        _add(e.balance, o.buyer, int256(prepaid) - int256(_total(p)));
        _add(e.stake, p.seller, -int256(uint256(p.computeFee)));
    }

    function _recordDeal(bytes32 id, address matcher, IMarket.Order memory o, Plan memory p, bytes memory packed)
        internal
    {
        if (++matchesOf[id] > 1) ++doubleMatches;
        bool valueless = federation.stage() == 1;
        Codec.Deal memory ref = Codec.Deal({
            buyer: o.buyer,
            seller: p.seller,
            matcher: matcher,
            nodeId: p.nodeId,
            logicMcu: o.logicMcu,
            parallelMcu: o.parallelMcu,
            neuralMcu: o.neuralMcu,
            duration: o.duration,
            minRunSeconds: o.minRunSeconds,
            maxLatencyMs: o.maxLatencyMs,
            valueless: valueless,
            computeFee: p.computeFee,
            platformFee: p.platformFee,
            status: uint8(o.autoAccept ? IMarketTypes.Status.Accepted : IMarketTypes.Status.Proposed),
            deadline: uint40(block.timestamp + _window),
            seats: p.seats,
            fees: p.fees
        });
        if (keccak256(Codec.deal(ref)) != keccak256(packed)) ++dealCodecMismatches;
        if (market.dealTotal(packed) != _total(p)) ++dealCodecMismatches;
        _deals.push(
            Deal({
                id: id,
                buyer: o.buyer,
                seller: p.seller,
                nodeId: p.nodeId,
                logicMcu: o.logicMcu,
                parallelMcu: o.parallelMcu,
                neuralMcu: o.neuralMcu,
                duration: o.duration,
                minRunSeconds: o.minRunSeconds,
                maxLatencyMs: o.maxLatencyMs,
                valueless: valueless,
                computeFee: p.computeFee,
                platformFee: p.platformFee,
                maxTotal: o.maxTotal,
                seats: p.seats,
                fees: p.fees,
                packed: packed
            })
        );
        if (!valueless) heldForDealsAndOrders += _total(p) + p.computeFee;
        uint256[3] storage g = _ghostReserved[p.nodeId];
        g[0] += o.logicMcu;
        g[1] += o.parallelMcu;
        g[2] += o.neuralMcu;
    }

    /// @dev The buyer raises its nonce floor; an order it signed below the new floor must then be refused.
    function cancelAllOrders(uint256 seed, uint256 nodeSeed) external {
        (IMarket.Order memory o, uint256 key) = _order(seed);
        Plan memory p = _plan(o, _nodes[nodeSeed % _nodes.length], seed >> 100);
        _fit(o, p, seed >> 60);
        bytes memory sig = _sign(o, key);
        vm.prank(o.buyer);
        market.cancelAllOrders();
        require(market.nonceFloorOf(o.buyer) > o.nonce, "floor did not rise above the order");
        vm.prank(_matchers[0]);
        try market.matchSigned(Codec.entry(o, sig, _bill(p))) {
            ++staleOrdersMatched;
        } catch {}
        ++okCalls["cancelAllOrders"];
    }

    // ------------------------------------------------------------------ the malicious matcher

    /// @notice A matcher proposes a bill with one defect: an inactive or unknown seat, a repeated seat, a
    ///  transit fee off its tariff, the node's operator left off the path, an inflated compute or platform
    ///  fee, or another matcher's pinned order. It must be refused with that defect's error (through
    ///  matchSigned or in a batch's MatchFailed); the honest bill for the same order then matches, so the
    ///  refusal was the defect's doing. Counts only attacks whose honest twin matched.
    function maliciousMatch(uint256 seed, uint256 nodeSeed, uint8 kind) external {
        (IMarket.Order memory o, uint256 key) = _order(seed);
        Plan memory p = _plan(o, _nodes[nodeSeed % _nodes.length], seed >> 100);
        _fit(o, p, seed >> 60);
        kind %= 7;
        address honest = _matchers[seed % _matchers.length];
        if (kind == 6) o.matcher = honest;
        bytes memory sig = _sign(o, key);
        (bytes memory bad, bytes4 expected) = _corrupt(o, p, kind, seed);
        bytes32 id = market.orderId(o);
        bytes memory entry = Codec.entry(o, sig, bad);
        bool accepted;
        bytes memory reason;
        if ((seed >> 250) % 2 == 0) {
            vm.prank(_malicious);
            try market.matchSigned(entry) {
                accepted = true;
            } catch (bytes memory r) {
                reason = r;
            }
        } else {
            vm.recordLogs();
            vm.prank(_malicious);
            uint256 matched = market.matchSignedBatch(entry);
            accepted = matched != 0;
            reason = _matchFailure(vm.getRecordedLogs(), id);
        }
        if (accepted) {
            // Left out of the ghosts: invariant_maliciousBillsAlwaysRevert fails the campaign.
            ++maliciousAccepted;
            ++okCalls["maliciousMatch"];
            return;
        }
        if (Codec.selector(reason) != expected) {
            ++maliciousWrongError;
            if (bytes(firstWrongError).length == 0) {
                firstWrongError = string.concat("kind ", _itoa(kind), ": ", _hex(reason));
            }
        }
        (IMarketTypes.Status st,) = market.statusOf(id);
        require(st == IMarketTypes.Status.None, "a refused match left a trace");
        _matchSignedAs(honest, o, sig, p);
        ++okCalls["maliciousMatch"];
    }

    /// @dev The plan's bill with defect `kind`, and the error it must be refused with.
    function _corrupt(IMarket.Order memory o, Plan memory p, uint256 kind, uint256 seed)
        internal
        view
        returns (bytes memory, bytes4)
    {
        uint256 n = p.seats.length;
        uint256 j = (seed >> 40) % n;
        uint128 delta = uint128(bound(seed >> 48, 1, 1e18));
        (, uint8 nodeSeat) = _nodeSeat(p.nodeId);
        if (kind == 0) {
            // A seat that is not an active operator's: never seated, or whose holder lost OPERATOR.
            uint8 seat = _inactiveSeat(seed);
            return (_withExtra(p, seat, 0, seed), IMarketTypes.MissingRole.selector);
        }
        if (kind == 1) {
            return (_withExtra(p, p.seats[j], p.fees[j], seed), IMarketTypes.DuplicateTransitSeat.selector);
        }
        if (kind == 3) {
            address[] memory seated = market.transitOperators();
            for (uint256 s; s < seated.length; ++s) {
                bool onPath;
                for (uint256 i; i < n; ++i) onPath = onPath || p.seats[i] == s;
                if (s == nodeSeat || onPath || !federation.hasRole(seated[s], OPERATOR_ROLE)) continue;
                // The node's operator replaced by another active operator at its right fee.
                uint8[] memory seats = new uint8[](n);
                uint128[] memory fees = new uint128[](n);
                for (uint256 i; i < n; ++i) {
                    bool swap = p.seats[i] == nodeSeat;
                    seats[i] = swap ? uint8(s) : p.seats[i];
                    fees[i] = swap ? _transitFee(seated[s], o) : p.fees[i];
                }
                return (
                    Codec.bill(p.nodeId, p.computeFee, p.platformFee, seats, fees),
                    IMarketTypes.NodeOperatorNotOnPath.selector
                );
            }
            kind = 2; // no other active operator to put in its place
        }
        if (kind == 2) {
            uint128[] memory fees = new uint128[](n);
            for (uint256 i; i < n; ++i) fees[i] = p.fees[i];
            fees[j] = (seed >> 56) % 2 == 0 || fees[j] < delta ? fees[j] + delta : fees[j] - delta;
            return (
                Codec.bill(p.nodeId, p.computeFee, p.platformFee, p.seats, fees),
                IMarketTypes.TransitFeeMismatch.selector
            );
        }
        if (kind == 4) {
            return (
                Codec.bill(p.nodeId, p.computeFee + delta, p.platformFee, p.seats, p.fees),
                IMarketTypes.ComputeFeeMismatch.selector
            );
        }
        if (kind == 5) {
            return (
                Codec.bill(p.nodeId, p.computeFee, p.platformFee + delta, p.seats, p.fees),
                IMarketTypes.PlatformFeeMismatch.selector
            );
        }
        return (_bill(p), IMarketTypes.MatcherNotAllowed.selector);
    }

    function _withExtra(Plan memory p, uint8 seat, uint128 fee, uint256 seed) internal pure returns (bytes memory) {
        uint256 n = p.seats.length;
        uint8[] memory seats = new uint8[](n + 1);
        uint128[] memory fees = new uint128[](n + 1);
        uint256 at = (seed >> 64) % (n + 1);
        // After the original when it repeats one, so the refusal names the second appearance.
        uint256 from;
        for (uint256 i; i <= n; ++i) {
            if (i == at) {
                seats[i] = seat;
                fees[i] = fee;
            } else {
                seats[i] = p.seats[from];
                fees[i] = p.fees[from++];
            }
        }
        return Codec.bill(p.nodeId, p.computeFee, p.platformFee, seats, fees);
    }

    function _inactiveSeat(uint256 seed) internal view returns (uint8) {
        address[] memory seated = market.transitOperators();
        for (uint256 s; s < seated.length; ++s) {
            if (!federation.hasRole(seated[s], OPERATOR_ROLE) && (seed >> 72) % 2 == 0) return uint8(s);
        }
        return uint8(bound(seed >> 80, seated.length, 255));
    }

    function _nodeSeat(uint256 nodeId) internal view returns (bool, uint8) {
        (INodeRegistry.NodeSpec memory spec,,) = registry.getNode(nodeId);
        return market.seatOf(spec.operator);
    }

    // ------------------------------------------------------------------ posted orders

    function postOrder(uint256 seed, uint256 nodeSeed) external {
        (IMarket.Order memory o,) = _order(seed);
        uint256 nodeId = _nodes[nodeSeed % _nodes.length];
        Plan memory p = _plan(o, nodeId, seed >> 100);
        _fit(o, p, seed >> 60);
        // Room for the tariff, price and fee changes a posted order may wait through.
        o.maxTransit = uint128(2 * uint256(o.maxTransit) + 1e18);
        o.maxTotal = uint128(2 * uint256(o.maxTotal) + o.maxTransit);
        o.expiry = uint40(block.timestamp + bound(seed >> 208, 60, 4 hours));
        uint256 locked = federation.stage() == 1 ? 0 : o.maxTotal;
        Books memory before = _snap();
        Books memory e = _none();
        uint256 balance = market.balanceOf(o.buyer);
        _add(e.balance, o.buyer, -int256(locked < balance ? locked : balance));
        vm.prank(o.buyer);
        market.postOrder(o);
        _checkMoves(before, e, "postOrder");
        _posted.push(Posted({order: o, locked: locked, nodeId: nodeId}));
        heldForDealsAndOrders += locked;
        ++okCalls["postOrder"];
    }

    function _pickPosted(uint256 seed) internal view returns (uint256 index) {
        uint256 n = _posted.length;
        require(n != 0, "nothing posted");
        for (uint256 k; k < n; ++k) {
            index = (seed % n + k) % n;
            (IMarketTypes.Status st,) = market.statusOf(market.orderId(_posted[index].order));
            if (st == IMarketTypes.Status.Posted) return index;
        }
        revert("no open posted order");
    }

    /// @dev An open posted order of the current epoch, not expired (the others are refused: see advanceStage).
    function _pickMatchable(uint256 seed) internal view returns (uint256 index) {
        uint256 n = _posted.length;
        uint32 epoch = federation.epoch();
        for (uint256 k; k < n; ++k) {
            index = (seed % n + k) % n;
            IMarket.Order storage o = _posted[index].order;
            (IMarketTypes.Status st,) = market.statusOf(market.orderId(o));
            if (st == IMarketTypes.Status.Posted && o.epoch == epoch && o.expiry >= block.timestamp) return index;
        }
        revert("no matchable posted order");
    }

    /// @notice The buyer cancels a posted order (its lock comes back), or a signed order it never submitted,
    ///  which must then be refused.
    function cancelOrder(uint256 seed, uint256 nodeSeed) external {
        if (seed % 2 == 0 && _posted.length != 0) {
            Posted memory po = _posted[_pickPosted(seed >> 1)];
            _closePosted(po, true);
        } else {
            (IMarket.Order memory o, uint256 key) = _order(seed);
            Plan memory p = _plan(o, _nodes[nodeSeed % _nodes.length], seed >> 100);
            _fit(o, p, seed >> 60);
            bytes memory sig = _sign(o, key);
            vm.prank(o.buyer);
            market.cancelOrder(o, 0);
            vm.prank(_matchers[0]);
            try market.matchSigned(Codec.entry(o, sig, _bill(p))) {
                ++staleOrdersMatched;
            } catch {}
        }
        ++okCalls["cancelOrder"];
    }

    function expireOrder(uint256 seed) external {
        Posted memory po = _posted[_pickPosted(seed)];
        if (block.timestamp <= po.order.expiry && po.order.expiry - block.timestamp <= 1 hours) {
            vm.warp(uint256(po.order.expiry) + 1);
        }
        _closePosted(po, false);
        ++okCalls["expireOrder"];
    }

    function _closePosted(Posted memory po, bool byBuyer) internal {
        Books memory before = _snap();
        Books memory e = _none();
        _add(e.balance, po.order.buyer, int256(po.locked));
        vm.prank(byBuyer ? po.order.buyer : _arbiters[0]);
        if (byBuyer) market.cancelOrder(po.order, po.locked);
        else market.expireOrder(po.order, po.locked);
        _checkMoves(before, e, byBuyer ? "cancelOrder" : "expireOrder");
        heldForDealsAndOrders -= po.locked;
    }

    function matchPosted(uint256 seed, uint256 nodeSeed, uint256 matcherSeed) external {
        Posted memory po = _posted[_pickMatchable(seed)];
        IMarket.Order memory o = po.order;
        Plan memory p = _plan(o, nodeSeed % 4 == 0 ? _nodes[(nodeSeed >> 2) % _nodes.length] : po.nodeId, seed >> 100);
        address matcher = _matchers[matcherSeed % _matchers.length];
        Books memory before = _snap();
        vm.recordLogs();
        vm.prank(matcher);
        bytes32 id = market.matchPosted(o, po.locked, _bill(p));
        heldForDealsAndOrders -= po.locked;
        _recordMatch(id, matcher, o, p, _matchedBytes(vm.getRecordedLogs(), id), before, po.locked);
        ++okCalls["matchPosted"];
    }

    // ------------------------------------------------------------------ lifecycle
    // A call the market refuses reverts the handler call (Foundry's metrics count the non-reverting ones).

    /// @dev A deal in status `want`: the first found from a random offset, else one brought there from the
    ///  status before it by the step between (accept, start, complete, dispute), so a campaign of many
    ///  kinds of calls still reaches deep into the lifecycle. Each step is checked as when called alone.
    function _reach(uint256 seed, IMarketTypes.Status want) internal returns (Deal memory d) {
        (bool found, uint256 index) = _find(seed, want);
        if (found) return _deals[index];
        if (want == IMarketTypes.Status.Accepted) {
            d = _reach(seed, IMarketTypes.Status.Proposed);
            _accept(d);
        } else if (want == IMarketTypes.Status.Started) {
            d = _reach(seed, IMarketTypes.Status.Accepted);
            _start(d);
        } else if (want == IMarketTypes.Status.Completed) {
            d = _reach(seed, IMarketTypes.Status.Started);
            _complete(d, 0);
        } else if (want == IMarketTypes.Status.Disputed) {
            d = _reach(seed, IMarketTypes.Status.Completed);
            _dispute(d);
        } else {
            revert("no deal in that status");
        }
    }

    function _find(uint256 seed, IMarketTypes.Status want) internal view returns (bool, uint256) {
        uint256 n = _deals.length;
        for (uint256 k; k < n; ++k) {
            uint256 index = (seed % n + k) % n;
            (IMarketTypes.Status st,) = market.statusOf(_deals[index].id);
            if (st == want) return (true, index);
        }
        return (false, 0);
    }

    function accept(uint256 seed) external {
        _accept(_reach(seed, IMarketTypes.Status.Proposed));
        ++okCalls["accept"];
    }

    function _accept(Deal memory d) internal {
        Books memory before = _snap();
        vm.prank(d.buyer);
        market.accept(d.id, d.packed);
        _checkMoves(before, _none(), "accept");
    }

    function reject(uint256 seed) external {
        _finalizing(_reach(seed, IMarketTypes.Status.Proposed), REJECT, false);
        ++okCalls["reject"];
    }

    function decline(uint256 seed) external {
        _finalizing(_reach(seed, IMarketTypes.Status.Accepted), DECLINE, false);
        ++okCalls["decline"];
    }

    function start(uint256 seed) external {
        _start(_reach(seed, IMarketTypes.Status.Accepted));
        ++okCalls["start"];
    }

    function _start(Deal memory d) internal {
        Books memory before = _snap();
        vm.prank(d.seller);
        market.start(d.id, d.packed);
        _checkMoves(before, _none(), "start");
        _startedAt[d.id] = block.timestamp;
    }

    /// @dev Completes at a random time between the minimum running time and the deadline (at times too
    ///  early: refused).
    function complete(uint256 seed, uint32 ranFor) external {
        _complete(_reach(seed, IMarketTypes.Status.Started), ranFor);
        ++okCalls["complete"];
    }

    function _complete(Deal memory d, uint256 ranFor) internal {
        uint256 at = _startedAt[d.id] + bound(ranFor, ranFor % 8 == 0 ? 0 : d.minRunSeconds, d.duration + 600);
        if (at > block.timestamp) vm.warp(at);
        Books memory before = _snap();
        vm.prank(d.seller);
        market.complete(d.id, d.packed, "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e");
        _checkMoves(before, _none(), "complete");
        uint256 used = block.timestamp - _startedAt[d.id];
        _used[d.id] = used > d.duration ? d.duration : used;
        _releaseGhost(d);
    }

    /// @dev Any status on purpose now and then: settling a settled deal must fail.
    function settle(uint256 seed, bool asBuyer, bool anyStatus) external {
        require(_deals.length != 0, "no deals yet");
        Deal memory d = anyStatus ? _deals[seed % _deals.length] : _reach(seed, IMarketTypes.Status.Completed);
        if (!asBuyer) {
            (, uint40 deadline) = market.statusOf(d.id);
            if (block.timestamp <= deadline && seed % 2 == 0) vm.warp(uint256(deadline) + 1);
        }
        _finalizing(d, asBuyer ? SETTLE_BUYER : SETTLE_ANYONE, false);
        ++okCalls["settle"];
    }

    function dispute(uint256 seed) external {
        _dispute(_reach(seed, IMarketTypes.Status.Completed));
        ++okCalls["dispute"];
    }

    function _dispute(Deal memory d) internal {
        uint256 bond = d.valueless ? 0 : _dealTotal(d) * _bondBps / BPS;
        Books memory before = _snap();
        Books memory e = _none();
        _add(e.balance, d.buyer, -int256(bond));
        vm.prank(d.buyer);
        market.dispute(d.id, d.packed);
        _checkMoves(before, e, "dispute");
        _bond[d.id] = bond;
        _disputedAt[d.id] = block.number;
        heldForDealsAndOrders += bond;
    }

    function resolve(uint256 seed, bool sellerWins) external {
        _finalizing(_reach(seed, IMarketTypes.Status.Disputed), RESOLVE, sellerWins);
        ++okCalls["resolve"];
    }

    /// @dev Times out a deal in a random status, at times first moving past its deadline.
    function timeout(uint256 seed, uint8 want) external {
        Deal memory d = _reach(seed, IMarketTypes.Status(bound(want, 2, 6)));
        (, uint40 deadline) = market.statusOf(d.id);
        if (block.timestamp <= deadline && seed % 2 == 0) vm.warp(uint256(deadline) + 1);
        _finalizing(d, TIMEOUT, false);
        ++okCalls["timeout"];
    }

    /// @notice A transit operator of the deal reports a latency above the order's bound: its transit is
    ///  refunded at payout.
    function reportSlaBreach(uint256 seed, uint32 measuredUs) external {
        Deal memory d = _reach(seed, IMarketTypes.Status.Started);
        address reporter = market.transitOperators()[d.seats[seed % d.seats.length]];
        measuredUs = uint32(bound(measuredUs, uint256(d.maxLatencyMs) * 1000 + 1, type(uint32).max));
        Books memory before = _snap();
        vm.prank(reporter);
        market.reportSlaBreach(d.id, d.packed, measuredUs);
        _checkMoves(before, _none(), "reportSlaBreach");
        _breached[d.id] = true;
        ++okCalls["reportSlaBreach"];
    }

    /// @notice Liveness: takes an open deal (or posted order) past its deadline, where `timeout` (`settle`
    ///  for a completed deal, `expireOrder` for a posted order) must succeed for anyone. Does nothing when
    ///  nothing is open; never reverts otherwise unless the exit does.
    function exitPastDeadline(uint256 seed) external {
        uint256 n = _deals.length;
        for (uint256 k; k < n; ++k) {
            Deal memory d = _deals[(seed % n + k) % n];
            (IMarketTypes.Status st, uint40 deadline) = market.statusOf(d.id);
            if (st < IMarketTypes.Status.Proposed || st > IMarketTypes.Status.Disputed) continue;
            if (block.timestamp <= deadline) vm.warp(uint256(deadline) + 1);
            _finalizing(d, st == IMarketTypes.Status.Completed ? SETTLE_ANYONE : TIMEOUT, false);
            ++okCalls["exitPastDeadline"];
            return;
        }
        for (uint256 k; k < _posted.length; ++k) {
            Posted memory po = _posted[(seed % _posted.length + k) % _posted.length];
            (IMarketTypes.Status st,) = market.statusOf(market.orderId(po.order));
            if (st != IMarketTypes.Status.Posted) continue;
            if (block.timestamp <= po.order.expiry) vm.warp(uint256(po.order.expiry) + 1);
            _closePosted(po, false);
            ++okCalls["exitPastDeadline"];
            return;
        }
    }

    function warp(uint256 secondsForward) external {
        uint256 step = secondsForward % 8 == 0 ? bound(secondsForward >> 3, 1, 3 hours) : bound(secondsForward >> 3, 1, 300);
        vm.warp(block.timestamp + step);
        vm.roll(block.number + 1 + step / 12);
        ++okCalls["warp"];
    }

    /// @dev Runs a call that may end a deal and checks every party's share (Books), that the parts sum to
    ///  what the deal released, and what the buyer paid in the end.
    function _finalizing(Deal memory d, uint8 kind, bool sellerWins) internal {
        (IMarketTypes.Status before,) = market.statusOf(d.id);
        bool reservedBefore = before == IMarketTypes.Status.Proposed || before == IMarketTypes.Status.Accepted
            || before == IMarketTypes.Status.Started;
        Books memory snap = _snap();
        uint256 owedBefore = owedOutsideDeals();
        Books memory e = _expectFinal(d, before, kind, sellerWins);
        uint256 buyerBefore = market.balanceOf(d.buyer);
        _callFinal(d, kind, sellerWins);
        _checkMoves(snap, e, _finalName(kind));
        if (++finalizations[d.id] > 1) ++doubleFinalizations;
        uint256 released = d.valueless ? 0 : _dealTotal(d) + d.computeFee + _bond[d.id];
        heldForDealsAndOrders -= released;
        if (reservedBefore) _releaseGhost(d);
        if (owedOutsideDeals() != owedBefore + released) ++splitMismatches;
        if (!d.valueless) {
            // Net paid: the match's debit plus the bond, less everything credited back now. At most the
            // signed maxTotal, plus the bond when the buyer lost its dispute (it posted that itself).
            int256 net = int256(_paidAtMatch[d.id] + _bond[d.id]) - (int256(market.balanceOf(d.buyer)) - int256(buyerBefore));
            uint256 allowed = uint256(d.maxTotal) + (kind == RESOLVE && sellerWins ? _bond[d.id] : 0);
            if (net > int256(allowed) || _paidAtMatch[d.id] > d.maxTotal) ++buyerOverpaid;
        }
    }

    function _callFinal(Deal memory d, uint8 kind, bool sellerWins) internal {
        if (kind == REJECT) {
            vm.prank(d.buyer);
            market.reject(d.id, d.packed);
        } else if (kind == DECLINE) {
            vm.prank(d.seller);
            market.decline(d.id, d.packed);
        } else if (kind == SETTLE_BUYER || kind == SETTLE_ANYONE) {
            vm.prank(kind == SETTLE_BUYER ? d.buyer : _arbiters[1]);
            market.settle(d.id, d.packed);
        } else if (kind == RESOLVE) {
            if (block.number < _disputedAt[d.id] + 2) vm.roll(_disputedAt[d.id] + 2);
            address drawn = market.arbiterOf(d.id, d.packed);
            vm.prank(drawn);
            market.resolve(d.id, d.packed, sellerWins);
        } else {
            vm.prank(_matchers[1]);
            market.timeout(d.id, d.packed);
        }
    }

    function _finalName(uint8 kind) internal pure returns (string memory) {
        if (kind == REJECT) return "reject";
        if (kind == DECLINE) return "decline";
        if (kind == SETTLE_BUYER || kind == SETTLE_ANYONE) return "settle";
        if (kind == RESOLVE) return "resolve";
        return "timeout";
    }

    /// @dev Each party's share when `kind` ends deal `d` from status `before` (docs/contracts.md): a refund
    ///  returns the bill (and the stake lock, or slashes it half to the buyer, half to the platform); a payout
    ///  pays compute and platform fees prorated to the time used (halved when no arbiter ruled, none when
    ///  the buyer won), transit in full unless breached, the bond to the winner, the rest to the buyer.
    function _expectFinal(Deal memory d, IMarketTypes.Status before, uint8 kind, bool sellerWins)
        internal
        view
        returns (Books memory e)
    {
        e = _none();
        if (d.valueless) return e;
        uint256 cf = d.computeFee;
        bool payout = kind == SETTLE_BUYER || kind == SETTLE_ANYONE || kind == RESOLVE
            || (kind == TIMEOUT && before == IMarketTypes.Status.Disputed);
        if (!payout) {
            _add(e.balance, d.buyer, int256(_dealTotal(d)));
            if (kind == TIMEOUT && (before == IMarketTypes.Status.Accepted || before == IMarketTypes.Status.Started)) {
                _add(e.balance, d.buyer, int256(cf / 2));
                e.fees += int256(cf - cf / 2);
            } else {
                _add(e.stake, d.seller, int256(cf));
            }
            return e;
        }
        uint256 used = _used[d.id];
        uint256 cp = cf * used / d.duration;
        uint256 pp = uint256(d.platformFee) * used / d.duration;
        uint256 bond = _bond[d.id];
        uint256 bondBack = 0;
        if (kind == TIMEOUT) {
            cp /= 2;
            pp /= 2;
            bondBack = bond;
        } else if (kind == RESOLVE && !sellerWins) {
            cp = 0;
            pp = 0;
            bondBack = bond;
        } else if (kind == RESOLVE) {
            _add(e.balance, d.seller, int256(bond));
        }
        uint256 refund = cf - cp + d.platformFee - pp + bondBack;
        address[] memory seated = market.transitOperators();
        for (uint256 i; i < d.seats.length; ++i) {
            if (_breached[d.id]) refund += d.fees[i];
            else _add(e.balance, seated[d.seats[i]], int256(uint256(d.fees[i])));
        }
        _add(e.balance, d.seller, int256(cp));
        _add(e.stake, d.seller, int256(cf));
        e.fees += int256(pp);
        _add(e.balance, d.buyer, int256(refund));
    }

    function _releaseGhost(Deal memory d) internal {
        uint256[3] storage g = _ghostReserved[d.nodeId];
        g[0] -= d.logicMcu;
        g[1] -= d.parallelMcu;
        g[2] -= d.neuralMcu;
    }

    function _dealTotal(Deal memory d) internal pure returns (uint256 t) {
        t = uint256(d.computeFee) + d.platformFee;
        for (uint256 i; i < d.fees.length; ++i) t += d.fees[i];
    }

    // ------------------------------------------------------------------ registry, while deals are open

    function registerNode(uint256 sellerSeed, uint256 seed) external {
        require(_nodes.length < MAX_NODES, "enough nodes");
        address seller = _sellers[sellerSeed % _sellers.length];
        INodeRegistry.NodeSpec memory spec = _spec(seed);
        Books memory before = _snap();
        vm.prank(seller);
        uint256 id = registry.registerNode(spec);
        _checkMoves(before, _none(), "registerNode");
        _nodes.push(id);
        ++okCalls["registerNode"];
    }

    /// @dev Changes price, tier, capacity (at times below what open deals reserve: refused) and operator.
    function updateNode(uint256 nodeSeed, uint256 seed) external {
        uint256 nodeId = _nodes[nodeSeed % _nodes.length];
        (, address owner,) = registry.getNode(nodeId);
        INodeRegistry.NodeSpec memory spec = _spec(seed);
        Books memory before = _snap();
        vm.prank(owner);
        registry.updateNode(nodeId, spec);
        _checkMoves(before, _none(), "updateNode");
        ++okCalls["updateNode"];
    }

    function pauseNode(uint256 nodeSeed) external {
        uint256 nodeId = _nodes[nodeSeed % _nodes.length];
        (, address owner, INodeRegistry.NodeStatus status) = registry.getNode(nodeId);
        vm.prank(owner);
        registry.setPaused(nodeId, status == INodeRegistry.NodeStatus.Active);
        ++okCalls["pauseNode"];
    }

    /// @dev Retires a node, preferably one with open deals: they still run to their end.
    function retireNode(uint256 nodeSeed) external {
        uint256 n = _nodes.length;
        uint256 nodeId = _nodes[nodeSeed % n];
        for (uint256 k; k < n; ++k) {
            uint256 candidate = _nodes[(nodeSeed % n + k) % n];
            uint256[3] memory g = _ghostReserved[candidate];
            (,, INodeRegistry.NodeStatus st) = registry.getNode(candidate);
            if (g[0] + g[1] + g[2] != 0 && st != INodeRegistry.NodeStatus.Retired) {
                nodeId = candidate;
                break;
            }
        }
        (, address owner,) = registry.getNode(nodeId);
        Books memory before = _snap();
        vm.prank(owner);
        registry.retireNode(nodeId);
        _checkMoves(before, _none(), "retireNode");
        ++okCalls["retireNode"];
    }

    function _spec(uint256 seed) internal view returns (INodeRegistry.NodeSpec memory spec) {
        address operator = _activeOperator(seed);
        uint64 mcu = uint64(bound(seed >> 16, 5000, 60_000));
        spec = INodeRegistry.NodeSpec({
            logicMcu: mcu,
            parallelMcu: mcu,
            neuralMcu: mcu,
            memoryMib: 1024,
            gpuModel: 0,
            gpuCount: 0,
            tier: uint8(seed % 4),
            pricePerCuHour: uint128(bound(seed >> 80, 1e17, 3e18)),
            operator: operator,
            router: keccak256(abi.encode(operator, seed)),
            locator: bytes16(uint128(0x20010db8) << 96),
            locatorLength: 48,
            encryptionKey: keccak256(abi.encode(seed))
        });
    }

    /// @dev An operator holding OPERATOR now (the founder, who always does, when no other does).
    function _activeOperator(uint256 seed) internal view returns (address) {
        uint256 n = _operators.length;
        for (uint256 k; k < n; ++k) {
            address op = _operators[(seed % n + k) % n];
            if (federation.hasRole(op, OPERATOR_ROLE)) return op;
        }
        return founder;
    }

    // ------------------------------------------------------------------ stage and fee changes

    /// @notice The founder advances the stage (1 -> 2 -> 3); an order signed in the old epoch is then refused.
    function advanceStage(uint256 seed) external {
        (IMarket.Order memory o, uint256 key) = _order(seed);
        bytes memory sig = _sign(o, key);
        uint8 next = federation.stage() + 1; // before the prank, which the next call takes
        vm.prank(founder);
        federation.advanceStage(next);
        _matchStale(o, sig, seed);
        ++okCalls["advanceStage"];
    }

    function setPlatformFee(uint256 seed) external {
        (IMarket.Order memory o, uint256 key) = _order(seed);
        bytes memory sig = _sign(o, key);
        vm.prank(founder);
        federation.setPlatformFee(uint16(bound(seed >> 16, 0, 2000)));
        _matchStale(o, sig, seed);
        ++okCalls["setPlatformFee"];
    }

    function _matchStale(IMarket.Order memory o, bytes memory sig, uint256 seed) internal {
        Plan memory p = _plan(o, _nodes[seed % _nodes.length], seed >> 100);
        _fit(o, p, seed >> 60);
        vm.prank(_matchers[0]);
        try market.matchSigned(Codec.entry(o, sig, _bill(p))) {
            ++staleOrdersMatched;
        } catch {}
    }

    /// @notice A transit operator publishes a new tariff: bills from now on must charge it.
    function setTariff(uint256 seed) external {
        address op = _operators[seed % _operators.length];
        vm.prank(op);
        market.setTransitTariff(uint96(bound(seed >> 8, 1e15, 5e18)));
        ++okCalls["setTariff"];
    }

    // ------------------------------------------------------------------ governance of operators

    /// @dev Before stage 3 the founder takes OPERATOR from an internal operator, leaving it a buyer, or (in
    ///  stage 1 only) gives it back. Its seat and credits stay: deals already billed still pay it.
    function toggleOperator(uint256 seed) external {
        address op = _operators[1 + seed % (_operators.length - 1)];
        uint8 roles = federation.rolesOf(op);
        vm.prank(founder);
        federation.setRoles(op, roles & OPERATOR_ROLE != 0 ? BUYER_ROLE : OPERATOR_ROLE);
        ++okCalls["toggleOperator"];
    }

    /// @notice Stage 3: an operator proposes a non-member (a candidate, or an operator voted out) as operator.
    function proposeOperator(uint256 seed) external {
        address proposer = _activeOperator(seed);
        address candidate = _operators[1 + (seed >> 8) % (_operators.length - 1)];
        vm.prank(proposer);
        federation.proposeOperator(candidate, "candidate");
        ++okCalls["proposeOperator"];
    }

    function proposeOperatorRemoval(uint256 seed) external {
        address proposer = _activeOperator(seed);
        address target = _operators[1 + (seed >> 8) % (_operators.length - 1)];
        vm.prank(proposer);
        federation.proposeOperatorRemoval(target);
        ++okCalls["proposeOperatorRemoval"];
    }

    /// @notice An operator of the proposal's electorate votes on the latest open proposal.
    function vote(uint256 seed) external {
        uint256 count = federation.proposalCount();
        require(count != 0, "no proposal");
        for (uint256 k; k < count; ++k) {
            uint256 id = count - 1 - k;
            for (uint256 j; j < _operators.length; ++j) {
                address voter = _operators[(seed % _operators.length + j) % _operators.length];
                if (!federation.mayVote(id, voter)) continue;
                vm.prank(voter);
                federation.vote(id);
                ++okCalls["vote"];
                return;
            }
        }
        revert("nobody may vote");
    }

    // ------------------------------------------------------------------ books

    function _idx(address a) internal view returns (uint256) {
        uint256 i = _actorIndexPlusOne[a];
        require(i != 0, "untracked account");
        return i - 1;
    }

    function _none() internal view returns (Books memory e) {
        uint256 n = actors.length;
        e.balance = new int256[](n);
        e.stake = new int256[](n);
        e.unstaking = new int256[](n);
    }

    function _add(int256[] memory column, address a, int256 amount) internal view {
        column[_idx(a)] += amount;
    }

    function _snap() internal view returns (Books memory s) {
        s = _none();
        for (uint256 i; i < actors.length; ++i) {
            (uint256 unstaking,) = market.unstakingOf(actors[i]);
            s.balance[i] = int256(market.balanceOf(actors[i]));
            s.stake[i] = int256(market.stakeOf(actors[i]));
            s.unstaking[i] = int256(unstaking);
        }
        s.fees = int256(market.platformFees());
    }

    /// @dev Every tracked account's books and the fees moved by exactly `e` since `before`.
    function _checkMoves(Books memory before, Books memory e, string memory what) internal {
        Books memory now_ = _snap();
        string memory wrong;
        for (uint256 i; i < actors.length; ++i) {
            if (now_.balance[i] - before.balance[i] != e.balance[i]) wrong = "balance";
            else if (now_.stake[i] - before.stake[i] != e.stake[i]) wrong = "stake";
            else if (now_.unstaking[i] - before.unstaking[i] != e.unstaking[i]) wrong = "unstaking";
            if (bytes(wrong).length != 0) {
                _mismatch(string.concat(what, ": ", wrong, " of actor ", _itoa(i)));
                return;
            }
        }
        if (now_.fees - before.fees != e.fees) _mismatch(string.concat(what, ": platform fees"));
    }

    function _mismatch(string memory what) internal {
        ++partyMismatches;
        if (bytes(firstPartyMismatch).length == 0) firstPartyMismatch = what;
    }

    function _itoa(uint256 v) internal pure returns (string memory) {
        if (v == 0) return "0";
        bytes memory b;
        while (v != 0) {
            b = abi.encodePacked(bytes1(uint8(48 + v % 10)), b);
            v /= 10;
        }
        return string(b);
    }

    function _hex(bytes memory data) internal pure returns (string memory) {
        bytes memory digits = "0123456789abcdef";
        uint256 n = data.length < 36 ? data.length : 36;
        bytes memory out = new bytes(2 * n);
        for (uint256 i; i < n; ++i) {
            out[2 * i] = digits[uint8(data[i]) >> 4];
            out[2 * i + 1] = digits[uint8(data[i]) & 15];
        }
        return string(out);
    }
}
