// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title The escrow: deposits, locks, credits, stakes and platform fees in the settlement token.
/// @notice Pull payments: settlement credits each party's escrow balance; parties withdraw.
///  Conservation: token.balanceOf(escrow) == sum(balanceOf) (balances and transit credits) + sum(stakeOf)
///  (unlocked stakes) + stake locked by open deals (each its compute fee) + unstaking amounts + the buyers'
///  funds in open deals and posted orders + dispute bonds + platform fees. Transit credits are withdrawn (withdraw draws on them once the
///  plain balance is used up); paying for an order draws on the plain balance only.
interface IEscrow {
    /// @notice `account` has `balance` available; `needed` was asked.
    error InsufficientBalance(address account, uint256 balance, uint256 needed);
    /// @notice The token delivered `received` for a transfer of `expected` (fee-on-transfer tokens are refused).
    error FeeOnTransferToken(uint256 expected, uint256 received);
    /// @notice The amount is zero.
    error ZeroAmount();
    /// @notice Unstaking `requested` would leave `account`'s unlocked stake `stake` below `required` (what
    ///  its nodes require; stake locked by open deals is not unlocked stake).
    error StakeRequired(address account, uint256 stake, uint256 required, uint256 requested);
    /// @notice `account`'s unstaking of `amount` is claimable from `readyAt` (nothing is unstaking when 0).
    error UnstakeNotReady(address account, uint256 amount, uint40 readyAt);
    /// @notice The token's permit did not consume a nonce of `owner` (no ERC-2612 permit behind the call).
    error PermitNotConsumed(address owner);
    /// @notice Only the platform fee recipient (the founder) may withdraw fees; `caller` is not it.
    error NotFeeRecipient(address caller);
    /// @notice `owner`'s permit failed and `caller` is not `owner`, so its allowance may not be used.
    error PermitFailed(address owner, address caller);
    /// @notice The accrued platform fees would exceed their 96-bit field.
    error FeesOverflow(uint256 fees);
    /// @notice `account` has no transit-operator seat or does not hold OPERATOR now (it holds `roles`).
    error NotSeatedOperator(address account, uint8 roles);
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
    /// @notice Emitted when `account` starts unstaking `amount` (in all, with earlier requests), claimable
    ///  from `readyAt`; it no longer backs new deals.
    event UnstakeRequested(address indexed account, uint256 amount, uint40 readyAt);
    /// @notice Emitted when `account` takes `amount` of unstaked stake back to its balance.
    event Unstaked(address indexed account, uint256 amount);
    /// @notice Emitted when transit operator `operator` publishes its tariff per Gbps-hour.
    event TransitTariffSet(address indexed operator, uint8 seat, uint256 perGbpsHour);
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
    /// @notice Starts unstaking `amount` of unlocked stake, keeping at least what the caller's nodes require;
    ///  claimable after the unstake delay (claimUnstake). A new request adds to the amount and restarts the delay.
    function requestUnstake(uint256 amount) external;
    /// @notice Moves the caller's unstaking amount to its balance once the delay has passed.
    function claimUnstake() external;
    /// @notice Withdraws the accrued platform fees to the fee recipient.
    function withdrawFees() external;

    /// @notice The caller-withdrawable escrow balance of `account` (an operator's transit credits included).
    function balanceOf(address account) external view returns (uint256);
    /// @notice The transit operators by seat (a bill's and a deal's one-byte operator index).
    function transitOperators() external view returns (address[] memory);
    /// @notice Whether `operator` has a seat, and which.
    function seatOf(address operator) external view returns (bool seated, uint8 seat);
    /// @notice The unlocked stake of `account`: what backs new deals (stake locked by open deals is not in it).
    function stakeOf(address account) external view returns (uint256);
    /// @notice What `account` is unstaking and when it can claim it.
    function unstakingOf(address account) external view returns (uint256 amount, uint40 readyAt);
    /// @notice Platform fees accrued and not yet withdrawn.
    function platformFees() external view returns (uint256);
}
