// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title The federation: who takes part in a Suanwang deployment, in which role, at which stage.
/// @notice The rollout has three stages (seed, section 3) and only moves forward:
///  1 single operator (its internal cloud and network teams allocate, nothing is paid);
///  2 single operator plus one third-party cloud (trading and settlement start);
///  3 several operators and clouds, enterprises and individuals sell; operators are admitted by a
///    majority vote of the existing operators.
/// @dev Roles are bit flags so one account may hold several (an operator that also buys).
interface IFederation {
    /// @notice Role bit flags.
    /// OPERATOR = 1, CLOUD = 2, PROVIDER = 4, BUYER = 8, MATCHER = 16, ARBITER = 32.

    /// @notice The caller may not govern at this stage (founder in stages 1-2, operators' vote in 3).
    error NotGovernance(address caller);
    /// @notice `account` is not an active member.
    error NotMember(address account);
    /// @notice `account` lacks every role in `required`; it holds `held`.
    error MissingRole(address account, uint8 required, uint8 held);
    /// @notice `roles` may not be granted at `stage` (e.g. a provider in stage 1, a second cloud in stage 2).
    error RoleNotAllowedInStage(uint8 roles, uint8 stage);
    /// @notice The stage only moves forward by one: `requested` from `current` is refused.
    error InvalidStageTransition(uint8 current, uint8 requested);
    /// @notice `account` is already a member.
    error AlreadyMember(address account);
    /// @notice `roles` is empty or has bits outside the known roles.
    error InvalidRoles(uint8 roles);
    /// @notice No transit-operator seat is left in the market for `account` (at most 96 members ever hold
    ///  OPERATOR): a proposal to admit it could never be executed.
    error NoOperatorSeatLeft(address account);
    /// @notice The fee `bps` exceeds the cap `maxBps`.
    error FeeTooHigh(uint16 bps, uint16 maxBps);

    /// @notice Emitted when `member` joins with `roles`; `name` is its display name.
    event MemberAdmitted(address indexed member, uint8 roles, string name);
    /// @notice Emitted when a member's roles change.
    event MemberRolesChanged(address indexed member, uint8 previousRoles, uint8 roles);
    /// @notice Emitted when a member leaves or is removed.
    event MemberRemoved(address indexed member);
    /// @notice Emitted when the deployment moves to a new stage.
    event StageAdvanced(uint8 previousStage, uint8 stage);
    /// @notice Emitted when the platform fee changes.
    event PlatformFeeChanged(uint16 previousBps, uint16 bps);

    /// @notice The current stage, 1 to 3.
    function stage() external view returns (uint8);
    /// @notice The founding operator (the deployer); governs in stages 1 and 2.
    function founder() external view returns (address);
    /// @notice The platform fee in basis points of the compute fee.
    function platformFeeBps() external view returns (uint16);
    /// @notice The roles `account` holds (0 when not a member).
    function rolesOf(address account) external view returns (uint8);
    /// @notice True when `account` is a member holding every bit of `role`.
    function hasRole(address account, uint8 role) external view returns (bool);

    /// @notice Admits `member` with `roles`, if this stage allows them. Governance only. With OPERATOR, reverts
    ///  the market's TooManyOperators when no transit-operator seat is left (IMarketSync.hasSeatFor).
    function admit(address member, uint8 roles, string calldata name) external;
    /// @notice Changes a member's roles, if this stage allows them. Governance only. Giving OPERATOR reverts
    ///  the market's TooManyOperators when no transit-operator seat is left.
    function setRoles(address member, uint8 roles) external;
    /// @notice Removes a member. Governance only.
    function remove(address member) external;
    /// @notice Moves to `newStage` (exactly one more than the current). Governance only.
    function advanceStage(uint8 newStage) external;
    /// @notice Sets the platform fee. Governance only.
    function setPlatformFee(uint16 bps) external;
}
