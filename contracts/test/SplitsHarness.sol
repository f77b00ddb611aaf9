// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Splits} from "../libraries/Splits.sol";

/// @notice Test-only: Splits' internal functions made callable, so the Python copy of the fee arithmetic
///  (backend/suanwang/fees.py) can be checked against the library itself
///  (tests/contracts/test_fees_differential.py). Never deployed.
contract SplitsHarness {
    function computeFee(uint96 pricePerCuHour, uint128 totalMcu, uint32 duration) external pure returns (uint256) {
        return Splits.computeFee(pricePerCuHour, totalMcu, duration);
    }

    function platformFee(uint240 amount, uint16 feeBps) external pure returns (uint256) {
        return Splits.platformFee(amount, feeBps);
    }

    function slashShares(uint256 slashed) external pure returns (uint256 toBuyer, uint256 toPlatform) {
        return Splits.slashShares(slashed);
    }
}
