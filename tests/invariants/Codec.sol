// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IMarket} from "../../contracts/interfaces/IMarket.sol";

/// @notice The packed layouts of IMarket written the plain way, with abi.encodePacked field by field: the
///  reference the market's hand-written encoders and decoders are compared against (CodecDifferential.t.sol)
///  and the way the handlers build what they submit.
library Codec {
    bytes32 internal constant ORDER_TYPEHASH = keccak256(
        "Order(address buyer,address matcher,uint64 logicMcu,uint64 parallelMcu,uint64 neuralMcu,uint32 memoryMib,uint16 gpuModel,uint16 gpuCount,uint16 gpuMilli,uint8 minTier,uint32 duration,uint32 minRunSeconds,uint128 maxPricePerCuHour,uint128 maxTotal,uint128 maxTransit,uint32 maxLatencyMs,uint32 minBandwidthMbps,bool autoAccept,uint40 expiry,uint64 nonce,uint32 epoch,bytes32 specDigest,bytes32 serviceId,uint64 apnId,uint8 apnSlaClass)"
    );

    /// @dev A deal's fields in the order of its Matched bytes.
    struct Deal {
        address buyer;
        address seller;
        address matcher;
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
        uint8 status;
        uint40 deadline;
        uint8[] seats;
        uint128[] fees;
    }

    /// @notice The 230-byte packed order: the 25 fields in order, each its type's width.
    function order(IMarket.Order memory o) internal pure returns (bytes memory) {
        return bytes.concat(
            abi.encodePacked(
                o.buyer, o.matcher, o.logicMcu, o.parallelMcu, o.neuralMcu, o.memoryMib, o.gpuModel, o.gpuCount,
                o.gpuMilli, o.minTier
            ),
            abi.encodePacked(
                o.duration, o.minRunSeconds, o.maxPricePerCuHour, o.maxTotal, o.maxTransit, o.maxLatencyMs,
                o.minBandwidthMbps, o.autoAccept
            ),
            abi.encodePacked(o.expiry, o.nonce, o.epoch, o.specDigest, o.serviceId, o.apnId, o.apnSlaClass)
        );
    }

    /// @notice The order's EIP-712 digest from the ABI encoder: hashStruct = keccak256(typeHash ++ the 25
    ///  words), every member being static.
    function digest(IMarket.Order memory o, bytes32 domainSeparator) internal pure returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(ORDER_TYPEHASH, o));
        return keccak256(abi.encodePacked(hex"1901", domainSeparator, structHash));
    }

    /// @notice A bill: nodeId 32 | computeFee 16 | platformFee 16 | n 1 | n seats | n fees (65 + 17n bytes).
    function bill(uint256 nodeId, uint128 computeFee, uint128 platformFee, uint8[] memory seats, uint128[] memory fees)
        internal
        pure
        returns (bytes memory packed)
    {
        packed = abi.encodePacked(nodeId, computeFee, platformFee, uint8(seats.length));
        for (uint256 i; i < seats.length; ++i) packed = abi.encodePacked(packed, seats[i]);
        for (uint256 i; i < fees.length; ++i) packed = abi.encodePacked(packed, fees[i]);
    }

    /// @notice An entry: order | signature length 2 | signature | bill.
    function entry(IMarket.Order memory o, bytes memory signature, bytes memory packedBill)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodePacked(order(o), uint16(signature.length), signature, packedBill);
    }

    /// @notice A deal's Matched bytes (168 + 17n).
    function deal(Deal memory d) internal pure returns (bytes memory packed) {
        packed = bytes.concat(
            abi.encodePacked(d.buyer, d.seller, d.matcher, d.nodeId, d.logicMcu, d.parallelMcu, d.neuralMcu),
            abi.encodePacked(
                d.duration, d.minRunSeconds, d.maxLatencyMs, d.valueless, d.computeFee, d.platformFee, d.status,
                d.deadline, uint8(d.seats.length)
            )
        );
        for (uint256 i; i < d.seats.length; ++i) packed = abi.encodePacked(packed, d.seats[i]);
        for (uint256 i; i < d.fees.length; ++i) packed = abi.encodePacked(packed, d.fees[i]);
    }

    /// @notice The custom error selector at the head of revert data (0 when shorter than 4 bytes).
    function selector(bytes memory revertData) internal pure returns (bytes4 s) {
        if (revertData.length < 4) return 0;
        assembly ("memory-safe") {
            s := mload(add(revertData, 0x20))
        }
    }
}
