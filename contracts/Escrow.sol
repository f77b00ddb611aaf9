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
    using SafeCast for int256;

    /// @dev One slot per account: balance 128 | spareStake 96 (signed) | roles 8 | nonceGeneration 24 (bits
    ///  0-127, 128-223, 224-231, 232-255). `roles` mirrors the account's Federation roles (pushed by the
    ///  Federation on every change), so an admitted member's slot is live before it ever holds a balance:
    ///  crediting a seller rewrites a slot (5,000 gas) rather than filling a fresh one (22,100), and a
    ///  match reads a party's role and balance or stake with one SLOAD. (A transit operator is credited in
    ///  its seat's word instead, live from its seating: `_seatWords`.) `spareStake` is the unlocked stake
    ///  minus what the account's nodes require (negative when the registry raised the requirement above
    ///  it): a match locks the deal's compute fee out of it, so "the stake covers the requirement and this
    ///  deal's lock" is one comparison on the word already read, and releasing a lock rewrites the word the
    ///  seller's credit rewrites anyway. `nonceGeneration` is the buyer's nonce floor in steps of 2**40.
    struct Account {
        uint128 balance;
        int96 spareStake;
        uint8 roles;
        uint24 nonceGeneration;
    }

    IERC20 public immutable token;

    /// @notice Where platform fees are withdrawn to (the Federation's founder).
    address public immutable feeRecipient;

    /// @dev One slot: platformFees 128 | stage 8 | platformFeeBps 16 | seated operators 8 | active seats 96
    ///  (bits 0-127, 128-135, 136-151, 152-159, 160-255). The stage, fee and active seats mirror the
    ///  Federation's (pushed on change) and are read at every match, so checking a bill's transit operators
    ///  reads no slot of theirs; the fees accrue at settlement. Never zero once the stage is set, so
    ///  accruing rewrites a live slot.
    uint128 internal _platformFees;
    uint8 internal _stage;
    uint16 internal _feeBps;
    uint8 private _seated;
    uint96 internal _activeSeats;
    /// @dev The value epoch (IFederation.epoch), mirrored; read once per match transaction.
    uint32 internal _epoch;

    /// @notice At most this many transit operators ever get a seat (a bit of `_activeSeats`, the rest of the
    ///  parameter slot). Seats are never given back, so this counts every member that ever held OPERATOR.
    uint256 public constant MAX_OPERATORS = 96;
    /// @dev Marks a seat's word live from the seat's creation, so a first transit credit rewrites a slot
    ///  (5,000 gas) rather than filling a fresh one (22,100). Never part of the credit or the tariff.
    uint256 private constant SEAT_LIVE = 1 << 255;
    /// @dev A seat's word: credits 128 | tariff 96 | unused 31 | live 1 (bits 0-127, 128-223, 255).
    uint256 private constant CREDIT_MASK = (1 << 128) - 1;
    uint256 private constant TARIFF_MASK = ((1 << 96) - 1) << 128;
    /// @dev The nonce floor of a buyer rises in steps of 2**40 (its nonceGeneration counts them).
    uint256 internal constant NONCE_STEP_BITS = 40;

    /// @dev Each operator's seat (index + 1; 0 = none), given once, the first time it holds OPERATOR, and
    ///  kept for good, so a bill and a deal name a transit operator with one byte and a settlement credits
    ///  it without reading its address: the seat's credit word is keyed by the seat.
    mapping(address operator => uint256) private _seatOf;
    mapping(uint256 seat => address) private _seatHolder;
    /// @dev Seat -> SEAT_LIVE | the operator's published tariff per Gbps-hour (bits 128-223) | the transit
    ///  fees credited to it and not yet withdrawn (bits 0-127, part of its balance: balanceOf, withdraw). A
    ///  match reads the tariff from the word settlement credits, so checking a transit fee costs no extra slot.
    mapping(uint256 seat => uint256) private _seatWords;

    mapping(address account => Account) internal _accounts;
    /// @dev The stake each seller's nodes require (the registry's rule, pushed by the registry).
    mapping(address account => uint256) internal _requiredStake;
    /// @dev What an account is unstaking (bits 0-95) and from when it may claim it (bits 96-135). Written by
    ///  MarketExtension (requestUnstake, claimUnstake), which runs on the market's storage by delegatecall:
    ///  slither, reading Market alone, takes it for never written.
    // slither-disable-next-line uninitialized-state
    mapping(address account => uint256) internal _unstaking;

    /// @notice How long unstaked tokens wait before they can be claimed (seconds).
    uint32 public immutable unstakeDelay;

    constructor(IERC20 token_, address feeRecipient_, uint32 unstakeDelay_) {
        token = token_;
        feeRecipient = feeRecipient_;
        unstakeDelay = unstakeDelay_;
    }

    // ------------------------------------------------------------- external

    /// @inheritdoc IEscrow
    function deposit(uint256 amount) external override nonReentrant {
        _pull(msg.sender, amount);
        _credit(msg.sender, amount);
        emit Deposited(msg.sender, msg.sender, amount);
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
        _addSpareStake(msg.sender, amount.toInt256());
        emit Staked(msg.sender, amount);
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
        // spareStake = unlocked stake - required, so the sum is the unlocked stake (never negative).
        return uint256(int256(_accounts[account].spareStake) + int256(_requiredStake[account]));
    }

    /// @inheritdoc IEscrow
    function unstakingOf(address account) external view override returns (uint256 amount, uint40 readyAt) {
        uint256 word = _unstaking[account];
        return (uint96(word), uint40(word >> 96));
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
        uint256 credits = seat == 0 ? 0 : uint128(_seatWords[seat - 1]);
        if (balance + credits < amount) revert InsufficientBalance(account, balance + credits, amount);
        a.balance = 0;
        unchecked {
            // amount - balance <= credits (checked above): the subtraction leaves the tariff and SEAT_LIVE alone.
            _seatWords[seat - 1] -= amount - balance;
        }
    }

    /// @dev Credits a transit fee to the operator holding `seat` (a seat the match checked was active).
    function _creditTransit(uint256 seat, uint256 fee) internal {
        uint256 word = _seatWords[seat];
        uint256 credited = uint128(word) + fee;
        if (credited > type(uint128).max) revert SafeCast.SafeCastOverflowedUintDowncast(128, credited);
        _seatWords[seat] = (word & ~CREDIT_MASK) | credited;
    }

    function _transitCreditOf(address account) internal view returns (uint256) {
        uint256 seat = _seatOf[account];
        return seat == 0 ? 0 : uint128(_seatWords[seat - 1]);
    }

    /// @dev The tariff per Gbps-hour the operator holding `seat` published.
    function _tariffOfSeat(uint256 seat) internal view returns (uint256) {
        return (_seatWords[seat] & TARIFF_MASK) >> 128;
    }

    /// @dev Publishes the caller's tariff in its seat's word; the caller must hold OPERATOR (so it has a seat).
    function _setTariff(address operator, uint96 perGbpsHour) internal returns (uint8 seat) {
        uint256 s = _seatOf[operator];
        uint8 roles = _accounts[operator].roles;
        // A seat index and a role bit, not balances (slither's incorrect-equality false positive).
        // slither-disable-next-line incorrect-equality
        if (s == 0 || roles & 1 == 0) revert NotSeatedOperator(operator, roles);
        seat = uint8(s - 1);
        _seatWords[seat] = (_seatWords[seat] & ~TARIFF_MASK) | (uint256(perGbpsHour) << 128);
    }

    /// @dev The seat of `operator` (index + 1; 0 when it has none).
    function _seatPlusOne(address operator) internal view returns (uint256) {
        return _seatOf[operator];
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
            _seatWords[n] = SEAT_LIVE;
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

    /// @dev Sets the stake `account`'s nodes require; its spare stake moves by the difference.
    function _setRequiredStake(address account, uint256 required) internal {
        int256 previous = _requiredStake[account].toInt256();
        _requiredStake[account] = required;
        _addSpareStake(account, previous - required.toInt256());
    }

    /// @dev Adds `delta` (negative: takes) to `account`'s spare stake: stake, requirement and lock changes.
    function _addSpareStake(address account, int256 delta) internal {
        Account storage a = _accounts[account];
        a.spareStake = (int256(a.spareStake) + delta).toInt96();
    }

    /// @dev Gives a final deal's stake lock back to `seller`. Never reverts, so no payout can be blocked: a
    ///  seller that staked more while its deals were open could push its spare stake past 96 bits, and
    ///  whatever would not fit goes to its balance instead (2**95 base units: no real stake comes near).
    function _releaseLock(address seller, uint256 lock) internal {
        Account storage a = _accounts[seller];
        // lock < 2**128 and |spareStake| < 2**95: no overflow in 256 bits.
        int256 spare = int256(a.spareStake) + int256(lock);
        int256 cap = type(int96).max;
        if (spare > cap) {
            a.spareStake = type(int96).max;
            _credit(seller, uint256(spare - cap));
        } else {
            a.spareStake = int96(spare);
        }
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
