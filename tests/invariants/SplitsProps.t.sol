// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Splits} from "../../contracts/libraries/Splits.sol";

/// @notice Properties of the split rules, proved for every input by halmos
///  (`halmos --contract SplitsProps`, the `check_` functions) and fuzzed by forge (`testFuzz_`).
contract SplitsProps {
    /// @notice A slash's buyer and platform parts sum exactly to the slash; the buyer never gets more.
    function check_slashSharesSumToTheSlash(uint256 slashed) public pure {
        (uint256 toBuyer, uint256 toPlatform) = Splits.slashShares(slashed);
        assert(toBuyer + toPlatform == slashed);
        assert(toBuyer <= toPlatform);
    }

    /// @notice The platform fee never exceeds the amount at fee rates up to 100%. Fuzzed only: the
    ///  symbolic product times out in halmos' solver (60 s).
    function _platformFeeBounded(uint128 amount, uint16 feeBps) internal pure {
        if (feeBps > 10_000) return;
        assert(Splits.platformFee(amount, feeBps) <= amount);
    }

    function testFuzz_slashShares(uint256 slashed) public pure {
        check_slashSharesSumToTheSlash(slashed);
    }

    function testFuzz_platformFee(uint128 amount, uint16 feeBps) public pure {
        _platformFeeBounded(amount, feeBps);
    }
}
