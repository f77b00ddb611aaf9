// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Vm} from "./Vm.sol";
import {Codec} from "./Codec.sol";
import {MarketSetup} from "./MarketSetup.sol";
import {IMarket} from "../../contracts/interfaces/IMarket.sol";
import {IMarketTypes} from "../../contracts/interfaces/IMarketTypes.sol";

/// @notice Differential fuzzing of the market's packed codecs against the plain reference (Codec.sol:
///  abi.encode / abi.encodePacked field by field): the 230-byte order the market decodes in assembly, the
///  entries of a batch, the bill's fields as the market reads them, and the deal bytes it emits.
contract CodecDifferential is MarketSetup {
    /// @dev nodes[0]'s price per CU-hour (MarketSetup: 1e18 + 7 * 0 + 1), its operator the founder (seat 0).
    uint256 internal constant NODE0_PRICE = 1e18 + 1;
    bytes internal constant EMPTY_BILL = hex"0000000000000000000000000000000000000000000000000000000000000000"
        hex"0000000000000000000000000000000000000000000000000000000000000000" hex"00";

    function setUp() public {
        _deploy();
        federation.advanceStage(2);
    }

    /// @notice Any 25 field values: the id the market's packed decoder hashes (reported by the refusal of a
    ///  signature that is not the buyer's) equals the ABI-encoded digest and Market.orderId, and the buyer it
    ///  decoded is the order's; one byte less and the entry does not fit.
    function testFuzz_orderDecodesAsTheAbiEncodedOrder(IMarket.Order memory o, bytes32 r) public {
        bytes32 expected = Codec.digest(o, market.domainSeparator());
        require(market.orderId(o) == expected, "orderId != ABI-encoded digest");
        bytes memory entry = Codec.entry(o, abi.encodePacked(r, bytes32(0), uint8(27)), EMPTY_BILL);
        require(entry.length == 230 + 2 + 65 + 65, "packed order is not 230 bytes");
        vm.prank(matchers[0]);
        try market.matchSigned(entry) {
            revert("a random signature matched");
        } catch (bytes memory reason) {
            require(Codec.selector(reason) == IMarketTypes.InvalidSignature.selector, "not InvalidSignature");
            (bytes32 id, address buyer) = abi.decode(_args(reason), (bytes32, address));
            require(id == expected, "decoded order hashes differently");
            require(buyer == o.buyer, "decoded buyer differs");
        }
        bytes memory cut = new bytes(entry.length - 1);
        for (uint256 i; i < cut.length; ++i) cut[i] = entry[i];
        vm.prank(matchers[0]);
        try market.matchSigned(cut) {
            revert("a cut entry matched");
        } catch (bytes memory reason) {
            require(keccak256(reason) == keccak256(abi.encodeWithSelector(IMarketTypes.InvalidEntry.selector, 0)), "cut");
        }
    }

    /// @notice Entries back to back, each with a signature of any length and a bill of any size: the batch
    ///  finds every entry where the reference put it (MatchFailed names each id at its index), and a batch
    ///  cut inside entry k reverts InvalidEntry(k).
    function testFuzz_entriesAreFoundWhereTheyWerePacked(uint256 seed, uint8 count, uint8 cutAt) public {
        count = uint8(bound(count, 1, 5));
        bytes memory entries;
        bytes32[] memory ids = new bytes32[](count);
        uint256[] memory ends = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            uint256 s = uint256(keccak256(abi.encode(seed, i)));
            IMarket.Order memory o = _randomOrder(s);
            ids[i] = Codec.digest(o, market.domainSeparator());
            bytes memory sig = _bytes(s >> 8, bound(s >> 16, 0, 200));
            uint256 n = bound(s >> 32, 0, 12);
            bytes memory bill = bytes.concat(_bytes(s >> 40, 64), abi.encodePacked(uint8(n)), _bytes(s >> 48, 17 * n));
            entries = bytes.concat(entries, Codec.entry(o, sig, bill));
            ends[i] = entries.length;
        }
        vm.recordLogs();
        vm.prank(matchers[0]);
        uint256 matched = market.matchSignedBatch(entries);
        require(matched == 0, "a random entry matched");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 seen;
        for (uint256 l; l < logs.length; ++l) {
            if (logs[l].topics[0] != IMarketTypes.MatchFailed.selector) continue;
            (uint256 index,) = abi.decode(logs[l].data, (uint256, bytes));
            require(index == seen && logs[l].topics[1] == ids[seen], "entry found elsewhere than packed");
            ++seen;
        }
        require(seen == count, "an entry was skipped");
        uint256 k = bound(cutAt, 0, count - 1);
        bytes memory cut = new bytes(ends[k] - 1);
        for (uint256 i; i < cut.length; ++i) cut[i] = entries[i];
        vm.prank(matchers[0]);
        try market.matchSignedBatch(cut) {
            revert("a cut batch was accepted");
        } catch (bytes memory reason) {
            require(keccak256(reason) == keccak256(abi.encodeWithSelector(IMarketTypes.InvalidEntry.selector, k)), "cut");
        }
    }

    /// @notice The bill's fields as the market reads them: a compute fee, a platform fee or the transit fee
    ///  of any seat that is off its rule is refused naming the value billed (as packed) and the rule's value
    ///  (as the reference computes it).
    function testFuzz_billFieldsReadAsPacked(uint256 seed, uint128 computeFee, uint128 platformFee, uint128 fee)
        public
    {
        (IMarket.Order memory o, uint8[] memory seats, uint128[] memory fees, uint128 cf, uint128 pf) = _honest(seed);
        bytes memory sig = _sign(o);
        if (computeFee != cf) {
            bytes memory reason = _refusal(Codec.entry(o, sig, Codec.bill(nodes[0], computeFee, pf, seats, fees)));
            require(keccak256(reason) == keccak256(abi.encodeWithSelector(IMarketTypes.ComputeFeeMismatch.selector, cf, computeFee)), "computeFee");
        }
        if (platformFee != pf) {
            bytes memory reason = _refusal(Codec.entry(o, sig, Codec.bill(nodes[0], cf, platformFee, seats, fees)));
            require(keccak256(reason) == keccak256(abi.encodeWithSelector(IMarketTypes.PlatformFeeMismatch.selector, pf, platformFee)), "platformFee");
        }
        uint256 j = seed % seats.length;
        if (fee != fees[j]) {
            uint128 right = fees[j];
            fees[j] = fee;
            bytes memory reason = _refusal(Codec.entry(o, sig, Codec.bill(nodes[0], cf, pf, seats, fees)));
            require(keccak256(reason) == keccak256(abi.encodeWithSelector(IMarketTypes.TransitFeeMismatch.selector, seats[j], right, fee)), "transit fee");
            fees[j] = right;
        }
    }

    /// @notice A match's Matched bytes equal the deal packed from the same fields with abi.encodePacked
    ///  (signed and posted orders, stage 1 and 2), dealTotal reads the reference total, and the lifecycle
    ///  takes exactly those bytes: any one byte changed is an UnknownDeal.
    function testFuzz_dealEmittedAsPacked(uint256 seed, bool posted, bool valueless, uint16 flip) public {
        if (valueless) {
            // A fresh stage-1 market: nothing moves, the deal says so.
            _freshStageOne();
        }
        (IMarket.Order memory o, uint8[] memory seats, uint128[] memory fees, uint128 cf, uint128 pf) = _honest(seed);
        bytes memory bill = Codec.bill(nodes[0], cf, pf, seats, fees);
        bytes32 id = market.orderId(o);
        vm.recordLogs();
        if (posted) {
            vm.prank(o.buyer);
            market.postOrder(o);
            uint256 locked = valueless ? 0 : o.maxTotal;
            vm.prank(matchers[1]);
            market.matchPosted(o, locked, bill);
        } else {
            bytes memory entry = Codec.entry(o, _sign(o), bill);
            vm.prank(matchers[1]);
            market.matchSigned(entry);
        }
        bytes memory emitted = _matched(vm.getRecordedLogs(), id);
        Codec.Deal memory d = Codec.Deal({
            buyer: o.buyer,
            seller: sellers[0],
            matcher: matchers[1],
            nodeId: nodes[0],
            logicMcu: o.logicMcu,
            parallelMcu: o.parallelMcu,
            neuralMcu: o.neuralMcu,
            duration: o.duration,
            minRunSeconds: o.minRunSeconds,
            maxLatencyMs: o.maxLatencyMs,
            valueless: valueless,
            computeFee: cf,
            platformFee: pf,
            status: uint8(o.autoAccept ? IMarketTypes.Status.Accepted : IMarketTypes.Status.Proposed),
            deadline: uint40(block.timestamp + WINDOW),
            seats: seats,
            fees: fees
        });
        bytes memory reference_ = Codec.deal(d);
        require(reference_.length == 168 + 17 * seats.length, "reference length");
        require(keccak256(emitted) == keccak256(reference_), "Matched deal != abi.encodePacked deal");
        uint256 total = uint256(cf) + pf;
        for (uint256 i; i < fees.length; ++i) total += fees[i];
        require(market.dealTotal(emitted) == total, "dealTotal != reference total");
        bytes memory changed = bytes.concat(emitted);
        uint256 at = bound(flip, 0, changed.length - 1);
        changed[at] = bytes1(uint8(changed[at]) ^ uint8(1 + seed % 255));
        address caller = o.autoAccept ? sellers[0] : o.buyer;
        vm.prank(caller);
        try this.lifecycleStep(o.autoAccept, id, changed) {
            revert("a changed deal was taken");
        } catch (bytes memory reason) {
            require(keccak256(reason) == keccak256(abi.encodeWithSelector(IMarketTypes.UnknownDeal.selector, id)), "not UnknownDeal");
        }
        vm.prank(caller);
        this.lifecycleStep(o.autoAccept, id, emitted);
    }

    /// @dev start (an accepted deal) or accept (a proposed one), as whoever pranked this call.
    function lifecycleStep(bool started, bytes32 id, bytes calldata deal) external {
        address caller = msg.sender;
        vm.prank(caller);
        if (started) market.start(id, deal);
        else market.accept(id, deal);
    }

    // ------------------------------------------------------------------ helpers

    /// @dev An order that matches nodes[0] (operator: the founder, seat 0) with an exact bill.
    function _honest(uint256 seed)
        internal
        view
        returns (IMarket.Order memory o, uint8[] memory seats, uint128[] memory fees, uint128 cf, uint128 pf)
    {
        o = _randomOrder(seed);
        o.buyer = buyers[seed % 3];
        o.matcher = (seed >> 4) % 2 == 0 ? address(0) : matchers[1];
        o.logicMcu = uint64(bound(seed >> 8, 0, 3000));
        o.parallelMcu = uint64(bound(seed >> 24, 0, 3000));
        o.neuralMcu = uint64(bound(seed >> 40, 1, 3000));
        o.memoryMib = uint32(bound(seed >> 56, 0, 1024));
        o.gpuModel = 0;
        o.gpuCount = 0;
        o.gpuMilli = 0;
        o.minTier = 0;
        o.duration = uint32(bound(seed >> 72, 1, 7200));
        o.minRunSeconds = uint32(bound(seed >> 88, 0, o.duration));
        o.maxPricePerCuHour = type(uint128).max;
        o.minBandwidthMbps = uint32(bound(seed >> 104, 0, 100_000));
        o.expiry = uint40(block.timestamp + bound(seed >> 120, 0, 365 days));
        o.nonce = uint64(seed >> 160);
        o.epoch = federation.epoch();
        uint256 mcu = uint256(o.logicMcu) + o.parallelMcu + o.neuralMcu;
        cf = uint128(NODE0_PRICE * mcu * o.duration / 3_600_000);
        pf = uint128(uint256(cf) * federation.platformFeeBps() / 10_000);
        // The founder's seat (the node's operator) and any of the other two, in a random order.
        uint256 n = 1 + (seed >> 176) % 3;
        seats = new uint8[](n);
        fees = new uint128[](n);
        uint256 first = (seed >> 180) % n;
        uint8 next = 1 + uint8((seed >> 184) % 2);
        for (uint256 i; i < n; ++i) {
            seats[i] = i == first ? 0 : next;
            if (i != first) next = next == 1 ? 2 : 1;
            fees[i] = uint128(
                market.transitTariffOf(market.transitOperators()[seats[i]]) * uint256(o.minBandwidthMbps) * o.duration
                    / 3_600_000
            );
        }
        uint256 transit;
        for (uint256 i; i < n; ++i) transit += fees[i];
        o.maxTransit = uint128(transit + bound(seed >> 192, 0, 1e18));
        o.maxTotal = uint128(uint256(cf) + pf + transit + bound(seed >> 200, 0, 1e18));
    }

    function _randomOrder(uint256 s) internal pure returns (IMarket.Order memory o) {
        o.buyer = address(uint160(uint256(keccak256(abi.encode(s, 1)))));
        o.matcher = address(uint160(uint256(keccak256(abi.encode(s, 2)))));
        o.logicMcu = uint64(s);
        o.parallelMcu = uint64(s >> 64);
        o.neuralMcu = uint64(s >> 128);
        o.memoryMib = uint32(s >> 192);
        o.gpuModel = uint16(s >> 224);
        o.gpuCount = uint16(s >> 240);
        uint256 t = uint256(keccak256(abi.encode(s, 3)));
        o.gpuMilli = uint16(t);
        o.minTier = uint8(t >> 16);
        o.duration = uint32(t >> 24);
        o.minRunSeconds = uint32(t >> 56);
        o.maxPricePerCuHour = uint128(t >> 88);
        o.maxLatencyMs = uint32(t >> 216);
        uint256 u = uint256(keccak256(abi.encode(s, 4)));
        o.maxTotal = uint128(u);
        o.maxTransit = uint128(u >> 128);
        uint256 v = uint256(keccak256(abi.encode(s, 5)));
        o.minBandwidthMbps = uint32(v);
        o.autoAccept = (v >> 32) % 2 == 1;
        o.expiry = uint40(v >> 40);
        o.nonce = uint64(v >> 80);
        o.epoch = uint32(v >> 144);
        o.apnId = uint64(v >> 176);
        o.apnSlaClass = uint8(v >> 240);
        o.specDigest = keccak256(abi.encode(s, 6));
        o.serviceId = keccak256(abi.encode(s, 7));
    }

    function _bytes(uint256 seed, uint256 n) internal pure returns (bytes memory b) {
        b = new bytes(n);
        for (uint256 i; i < n; ++i) b[i] = bytes1(uint8(uint256(keccak256(abi.encode(seed, i)))));
    }

    function _sign(IMarket.Order memory o) internal returns (bytes memory) {
        uint256 key;
        for (uint256 i; i < 3; ++i) {
            if (buyers[i] == o.buyer) key = buyerKeys[i];
        }
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, market.orderId(o));
        return abi.encodePacked(r, s, v);
    }

    function _refusal(bytes memory entry) internal returns (bytes memory reason) {
        vm.prank(matchers[1]);
        try market.matchSigned(entry) {
            revert("a wrong bill matched");
        } catch (bytes memory r) {
            reason = r;
        }
    }

    function _args(bytes memory reason) internal pure returns (bytes memory args) {
        args = new bytes(reason.length - 4);
        for (uint256 i; i < args.length; ++i) args[i] = reason[i + 4];
    }

    function _matched(Vm.Log[] memory logs, bytes32 id) internal view returns (bytes memory) {
        for (uint256 i; i < logs.length; ++i) {
            if (
                logs[i].emitter == address(market) && logs[i].topics[0] == IMarketTypes.Matched.selector
                    && logs[i].topics[1] == id
            ) return abi.decode(logs[i].data, (bytes));
        }
        revert("no Matched event");
    }

    /// @dev Redeploys everything in stage 1 (setUp advanced to stage 2).
    function _freshStageOne() internal {
        delete buyers;
        delete sellers;
        delete operators;
        delete matchers;
        delete arbiters;
        delete candidates;
        delete nodes;
        _deploy();
    }
}
