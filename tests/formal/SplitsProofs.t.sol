// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Splits} from "../../contracts/libraries/Splits.sol";

/// @notice Bytecode-level proofs (halmos, every input) of the split rules whose arithmetic is additions,
///  subtractions and halving. `make fuzz` runs them: `halmos --contract SplitsProofs` with FOUNDRY_TEST=tests/formal.
/// @dev The rules built on a multiplication and a division by a constant (the compute fee's / 3,600,000 and
///  the platform fee's / 10,000) are not here: their bit-precise queries time out in every solver available
///  (z3, yices, bitwuzla), even the bare `q = x / 3600000 implies q * 3600000 <= x` at 64 bits. They are
///  proved on an integer model by tests/formal/splits_model.py (docs/security.md).
contract SplitsProofs {
    /// @notice A slash splits exactly: the buyer's half (rounded down) and the platform's rest sum to the
    ///  slash, and the odd unit, if any, is the platform's (the remainder rule).
    function check_slashSharesSplitExactlyWithTheRemainderToThePlatform(uint256 slashed) public pure {
        (uint256 toBuyer, uint256 toPlatform) = Splits.slashShares(slashed);
        assert(toBuyer + toPlatform == slashed);
        assert(toBuyer <= toPlatform);
        assert(toPlatform - toBuyer <= 1);
        assert((toPlatform - toBuyer == 1) == (slashed & 1 == 1));
    }

    /// @notice No fee is charged for no work: a zero price, zero compute or zero time bills zero, and a
    ///  zero compute fee or a zero rate gives a zero platform fee. (Argument widths as Splits takes them.)
    function check_nothingBillsNothing(uint96 price, uint128 mcu, uint32 duration, uint240 amount, uint16 bps)
        public
        pure
    {
        assert(Splits.computeFee(0, mcu, duration) == 0);
        assert(Splits.computeFee(price, 0, duration) == 0);
        assert(Splits.computeFee(price, mcu, 0) == 0);
        assert(Splits.platformFee(0, bps) == 0);
        assert(Splits.platformFee(amount, 0) == 0);
    }
}
