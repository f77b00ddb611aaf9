// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Exact splits: every part is rounded down and the remainder goes to the platform, so the parts
///  always sum to the whole.
library Splits {
    uint256 internal constant BPS = 10_000;
    uint256 internal constant MS_PER_HOUR_MCU = 1000 * 3600; // mCU -> CU and seconds -> hours

    /// @notice The compute fee: price per CU-hour x (mCU / 1000) x (seconds / 3600), rounded down.
    ///  The widths bound the product below 2**(96 + 128 + 32) = 2**256, so it is computed unchecked.
    function computeFee(uint96 pricePerCuHour, uint128 totalMcu, uint32 duration) internal pure returns (uint256) {
        unchecked {
            return (uint256(pricePerCuHour) * totalMcu * duration) / MS_PER_HOUR_MCU;
        }
    }

    /// @notice The platform fee on `amount`, rounded down.
    ///  The widths bound the product below 2**(240 + 16) (a compute fee is below 2**235), so unchecked.
    function platformFee(uint240 amount, uint16 feeBps) internal pure returns (uint256) {
        unchecked {
            return (uint256(amount) * feeBps) / BPS;
        }
    }

    /// @notice Splits a slash: half (rounded down) to the buyer, the rest to the platform.
    function slashShares(uint256 slashed) internal pure returns (uint256 toBuyer, uint256 toPlatform) {
        toBuyer = slashed / 2;
        // Cannot underflow: toBuyer <= slashed.
        unchecked {
            toPlatform = slashed - toBuyer;
        }
    }
}
