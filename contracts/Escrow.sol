// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IEscrow} from "./interfaces/IEscrow.sol";

/// @title Escrow
/// @notice The token-holding half of the market (inherited by Market, so a lifecycle step never pays
///  for a second contract call). Every balance change goes through `_credit` / `_debit` /
///  `_creditTransit` / `_takeStake`; token transfers only through `_pull` and `_push`.
abstract contract Escrow is IEscrow, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @dev One slot per account: balance 128 | stake 96 | roles 8 | underStaked 8 (bits 0-127,
    ///  128-223, 224-231, 232-239). `roles` mirrors the account's Federation roles (pushed by the
    ///  Federation on every change), so an admitted member's slot is live before it ever holds a balance:
    ///  crediting a seller rewrites a slot (5,000 gas) rather than filling a fresh one (22,100), and a
    ///  match reads a party's role and balance or stake with one SLOAD. (A transit operator is credited in
    ///  its seat's word instead, live from its seating: `_transitCredits`.) `underStaked` is
    ///  `stake < _requiredStake[account]`, kept current wherever either side changes (stake, unstake,
    ///  slash, the registry's requirement), so a match checks the seller's stake without another slot.
    struct Account {
        uint128 balance;
        uint96 stake;
        uint8 roles;
        bool underStaked;
    }

    IERC20 public immutable token;

    /// @notice Where platform fees are withdrawn to (the Federation's founder).
    address public immutable feeRecipient;

    /// @dev One slot: platformFees 128 | stage 8 | platformFeeBps 16 | seated operators 8 | active seats 96
    ///  (bits 0-127, 128-135, 136-151, 152-159, 160-255). The stage, fee and active seats mirror the
    ///  Federation's (pushed on change) and are read at every match, so checking a bill's transit operators
    ///  reads no slot of theirs; the fees accrue at settlement. Never zero once the stage is set, so
    ///  accruing rewrites a live slot.
    uint128 private _platformFees;
    uint8 internal _stage;
    uint16 internal _feeBps;
    uint8 private _seated;
    uint96 internal _activeSeats;

    /// @notice At most this many transit operators ever get a seat (a bit of `_activeSeats`, the rest of the
    ///  parameter slot). Seats are never given back, so this counts every member that ever held OPERATOR.
    uint256 public constant MAX_OPERATORS = 96;
    /// @dev Marks a seat's credit word live from the seat's creation, so a first transit credit rewrites a
    ///  slot (5,000 gas) rather than filling a fresh one (22,100). Never part of the credit (bits 0-127).
    uint256 private constant SEAT_LIVE = 1 << 255;

    /// @dev Each operator's seat (index + 1; 0 = none), given once, the first time it holds OPERATOR, and
    ///  kept for good, so a bill and a deal name a transit operator with one byte and a settlement credits
    ///  it without reading its address: the seat's credit word is keyed by the seat.
    mapping(address operator => uint256) private _seatOf;
    mapping(uint256 seat => address) private _seatHolder;
    /// @dev Seat -> SEAT_LIVE | the transit fees credited to its operator and not yet withdrawn (bits 0-127).
    ///  Part of the operator's balance (balanceOf, withdraw).
    mapping(uint256 seat => uint256) private _transitCredits;

    mapping(address account => Account) internal _accounts;
    /// @dev The stake each seller's nodes require (the registry's rule, pushed by the registry).
    mapping(address account => uint256) internal _requiredStake;

    constructor(IERC20 token_, address feeRecipient_) {
        token = token_;
        feeRecipient = feeRecipient_;
    }

    // ------------------------------------------------------------- external

    /// @inheritdoc IEscrow
    function deposit(uint256 amount) external override nonReentrant {
        _pull(msg.sender, amount);
        _credit(msg.sender, amount);
        emit Deposited(msg.sender, msg.sender, amount);
    }

    /// @inheritdoc IEscrow
    function depositWithPermit(address owner, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        override
        nonReentrant
    {
        // Someone else may submit the owner's permit (a matcher, so the buyer sends no transaction).
        // If the permit fails (e.g. it was front-run), only the owner itself may go on with its allowance.
        try IERC20Permit(address(token)).permit(owner, address(this), amount, deadline, v, r, s) {}
        catch {
            if (msg.sender != owner) revert PermitFailed(owner, msg.sender);
        }
        _pull(owner, amount);
        _credit(owner, amount);
        emit Deposited(owner, msg.sender, amount);
    }

    /// @inheritdoc IEscrow
    function withdraw(uint256 amount) external override nonReentrant {
        _debit(msg.sender, amount);
        emit Withdrawn(msg.sender, amount);
        _push(msg.sender, amount);
    }

    /// @inheritdoc IEscrow
    function stake(uint256 amount) external override {
        if (amount == 0) revert ZeroAmount();
        _debit(msg.sender, amount);
        Account storage a = _accounts[msg.sender];
        uint256 staked = a.stake + amount;
        a.stake = staked.toUint96();
        a.underStaked = staked < _requiredStake[msg.sender];
        emit Staked(msg.sender, amount);
    }

    /// @inheritdoc IEscrow
    function unstake(uint256 amount) external override {
        if (amount == 0) revert ZeroAmount();
        Account storage a = _accounts[msg.sender];
        uint256 staked = a.stake;
        uint256 required = _requiredStake[msg.sender];
        if (amount > staked || staked - amount < required) revert StakeRequired(msg.sender, staked, required, amount);
        unchecked {
            // amount <= staked was checked above; staked - amount >= required, so underStaked stays false.
            a.stake = uint96(staked - amount);
        }
        _credit(msg.sender, amount);
        emit Unstaked(msg.sender, amount);
    }

    /// @inheritdoc IEscrow
    function withdrawFees() external override nonReentrant {
        address recipient = feeRecipient;
        if (msg.sender != recipient) revert NotFeeRecipient(msg.sender);
        uint256 fees = _platformFees;
        if (fees == 0) revert ZeroAmount();
        _platformFees = 0;
        emit FeesWithdrawn(recipient, fees);
        _push(recipient, fees);
    }

    /// @inheritdoc IEscrow
    function balanceOf(address account) external view override returns (uint256) {
        return _balanceOf(account) + _transitCreditOf(account);
    }

    /// @inheritdoc IEscrow
    function transitOperators() external view override returns (address[] memory operators) {
        uint256 n = _seated;
        operators = new address[](n);
        for (uint256 seat; seat < n; ++seat) {
            operators[seat] = _seatHolder[seat];
        }
    }

    /// @inheritdoc IEscrow
    function seatOf(address operator) external view override returns (bool seated, uint8 seat) {
        uint256 s = _seatOf[operator];
        return (s != 0, s == 0 ? 0 : uint8(s - 1));
    }

    /// @notice The stake `account`'s nodes require from stage 2 (mirrored from the registry).
    function requiredStakeOf(address account) external view returns (uint256) {
        return _requiredStake[account];
    }

    /// @inheritdoc IEscrow
    function stakeOf(address account) public view override returns (uint256) {
        return _accounts[account].stake;
    }

    /// @inheritdoc IEscrow
    function platformFees() external view override returns (uint256) {
        return _platformFees;
    }

    // ------------------------------------------------------------ internals

    /// @dev The storage slot of `account`'s Account (Solidity's mapping layout: keccak256(key ++ slot)), for
    ///  the match path, which reads an Account's roles and balance from one SLOAD of its word.
    function _accountSlot(address account) internal pure returns (uint256 slot) {
        assembly ("memory-safe") {
            mstore(0x00, and(account, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(0x20, _accounts.slot)
            slot := keccak256(0x00, 0x40)
        }
    }

    function _sload(uint256 slot) internal view returns (uint256 word) {
        assembly ("memory-safe") {
            word := sload(slot)
        }
    }

    function _sstore(uint256 slot, uint256 word) internal {
        assembly ("memory-safe") {
            sstore(slot, word)
        }
    }

    function _balanceOf(address account) internal view returns (uint256) {
        return _accounts[account].balance;
    }

    function _credit(address account, uint256 amount) internal {
        _accounts[account].balance += amount.toUint128();
    }

    /// @dev Takes `amount` from `account`'s balance, then, for what the balance lacks, from its transit
    ///  credits (an operator's balance is both: balanceOf).
    function _debit(address account, uint256 amount) internal {
        if (amount == 0) revert ZeroAmount();
        Account storage a = _accounts[account];
        uint256 balance = a.balance;
        if (balance >= amount) {
            unchecked {
                a.balance = uint128(balance - amount);
            }
            return;
        }
        uint256 seat = _seatOf[account];
        uint256 credits = seat == 0 ? 0 : uint128(_transitCredits[seat - 1]);
        if (balance + credits < amount) revert InsufficientBalance(account, balance + credits, amount);
        a.balance = 0;
        unchecked {
            // amount - balance <= credits (checked above): the subtraction leaves SEAT_LIVE alone.
            _transitCredits[seat - 1] -= amount - balance;
        }
    }

    /// @dev Credits a transit fee to the operator holding `seat` (a seat the match checked was active).
    function _creditTransit(uint256 seat, uint256 fee) internal {
        uint256 word = _transitCredits[seat];
        uint256 credited = uint128(word) + fee;
        if (credited > type(uint128).max) revert SafeCast.SafeCastOverflowedUintDowncast(128, credited);
        _transitCredits[seat] = SEAT_LIVE | credited;
    }

    function _transitCreditOf(address account) internal view returns (uint256) {
        uint256 seat = _seatOf[account];
        return seat == 0 ? 0 : uint128(_transitCredits[seat - 1]);
    }

    /// @dev Mirrors whether `member` holds OPERATOR: seats it the first time (the seat is kept for good, also
    ///  when the role goes, so its credits stay withdrawable) and marks its seat active or not.
    function _syncSeat(address member, bool operator) internal {
        uint256 seat = _seatOf[member];
        if (seat == 0) {
            if (!operator) return;
            uint256 n = _seated;
            if (n == MAX_OPERATORS) revert TooManyOperators(MAX_OPERATORS);
            seat = n + 1;
            _seatOf[member] = seat;
            _seatHolder[n] = member;
            _transitCredits[n] = SEAT_LIVE;
            _seated = uint8(seat);
            emit OperatorSeated(member, uint8(n));
        }
        uint96 bit = uint96(1) << (seat - 1);
        _activeSeats = operator ? _activeSeats | bit : _activeSeats & ~bit;
    }

    /// @dev Whether `member` has a seat or could get one (so holding OPERATOR would not revert TooManyOperators).
    function _hasSeatFor(address member) internal view returns (bool) {
        return _seatOf[member] != 0 || _seated < MAX_OPERATORS;
    }

    /// @dev The holder of `seat` (address(0) when none) and its roles, for a failing check's error.
    function _seatHolderRoles(uint256 seat) internal view returns (address holder, uint8 roles) {
        holder = _seatHolder[seat];
        roles = _accounts[holder].roles;
    }

    function _accrueFees(uint256 amount) internal {
        uint256 fees = _platformFees + amount;
        if (fees > type(uint128).max) revert FeesOverflow(fees);
        _platformFees = uint128(fees);
    }

    /// @dev Sets the stake `account`'s nodes require and its underStaked flag.
    function _setRequiredStake(address account, uint256 required) internal {
        _requiredStake[account] = required;
        Account storage a = _accounts[account];
        a.underStaked = a.stake < required;
    }

    /// @dev Takes up to `amount` of `seller`'s stake (less if it has less); returns what was taken.
    function _takeStake(address seller, uint256 amount) internal returns (uint256 taken) {
        Account storage a = _accounts[seller];
        uint256 staked = a.stake;
        taken = amount < staked ? amount : staked;
        unchecked {
            // taken <= staked.
            a.stake = uint96(staked - taken);
        }
        a.underStaked = staked - taken < _requiredStake[seller];
    }

    function _pull(address from, uint256 amount) internal {
        if (amount == 0) revert ZeroAmount();
        uint256 before = token.balanceOf(address(this));
        // `from` is the caller, or an owner whose permit for exactly this amount and this escrow just
        // succeeded (depositWithPermit); the tokens are credited to `from` itself, never to the caller.
        // slither-disable-next-line arbitrary-send-erc20
        token.safeTransferFrom(from, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) revert FeeOnTransferToken(amount, received);
    }

    function _push(address to, uint256 amount) internal {
        token.safeTransfer(to, amount);
    }
}
