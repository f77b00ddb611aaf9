// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title The escrow: deposits, locks, credits, stakes and platform fees in the settlement token.
/// @notice Pull payments: settlement credits each party's escrow balance; parties withdraw.
///  Conservation: token.balanceOf(escrow) == sum(balanceOf) (balances and transit credits) + sum(stakes) +
///  locked in open deals + platform fees. Transit credits are withdrawn (withdraw draws on them once the
///  plain balance is used up); paying for an order draws on the plain balance only.
interface IEscrow {
    /// @notice `account` has `balance` available; `needed` was asked.
    error InsufficientBalance(address account, uint256 balance, uint256 needed);
    /// @notice The token delivered `received` for a transfer of `expected` (fee-on-transfer tokens are refused).
    error FeeOnTransferToken(uint256 expected, uint256 received);
    /// @notice The amount is zero.
    error ZeroAmount();
    /// @notice Unstaking `requested` would leave `account` below `required` (it has `stake`).
    error StakeRequired(address account, uint256 stake, uint256 required, uint256 requested);
    /// @notice Only the platform fee recipient (the founder) may withdraw fees; `caller` is not it.
    error NotFeeRecipient(address caller);
    /// @notice `owner`'s permit failed and `caller` is not `owner`, so its allowance may not be used.
    error PermitFailed(address owner, address caller);
    /// @notice The accrued platform fees would exceed their 96-bit field.
    error FeesOverflow(uint256 fees);
    /// @notice Every one of the `max` transit-operator seats is taken.
    error TooManyOperators(uint256 max);

    /// @notice Emitted when `account`'s escrow balance receives `amount` tokens from `from`.
    event Deposited(address indexed account, address indexed from, uint256 amount);
    /// @notice Emitted when `operator` first holds OPERATOR: bills and deals name it by `seat` from then on.
    event OperatorSeated(address indexed operator, uint8 seat);
    /// @notice Emitted when `account` withdraws `amount` to itself.
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice Emitted when `account` adds `amount` to its stake.
    event Staked(address indexed account, uint256 amount);
    /// @notice Emitted when `account` takes `amount` of stake back to its balance.
    event Unstaked(address indexed account, uint256 amount);
    /// @notice Emitted when the fee recipient withdraws `amount` of platform fees.
    event FeesWithdrawn(address indexed recipient, uint256 amount);

    /// @notice Deposits `amount` tokens (approved beforehand) into the caller's escrow balance.
    function deposit(uint256 amount) external;
    /// @notice Deposits for `owner` with an ERC-2612 permit it signed (anyone may submit it, e.g. a matcher).
    function depositWithPermit(address owner, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;
    /// @notice Withdraws `amount` of the caller's escrow balance (deposits, earnings, refunds).
    function withdraw(uint256 amount) external;
    /// @notice Moves `amount` of the caller's escrow balance into its stake (deposit first).
    function stake(uint256 amount) external;
    /// @notice Moves `amount` of stake back to the balance, keeping at least what its nodes require.
    function unstake(uint256 amount) external;
    /// @notice Withdraws the accrued platform fees to the fee recipient.
    function withdrawFees() external;

    /// @notice The caller-withdrawable escrow balance of `account` (an operator's transit credits included).
    function balanceOf(address account) external view returns (uint256);
    /// @notice The transit operators by seat (a bill's and a deal's one-byte operator index).
    function transitOperators() external view returns (address[] memory);
    /// @notice Whether `operator` has a seat, and which.
    function seatOf(address operator) external view returns (bool seated, uint8 seat);
    /// @notice The stake of `account`.
    function stakeOf(address account) external view returns (uint256);
    /// @notice Platform fees accrued and not yet withdrawn.
    function platformFees() external view returns (uint256);
}
