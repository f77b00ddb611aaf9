// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title The federation: who takes part in a Suanwang deployment, in which role, at which stage.
/// @notice The rollout has three stages (seed, section 3) and only moves forward:
///  1 single operator (its internal cloud and network teams allocate, nothing is paid);
///  2 single operator plus one third-party cloud (trading and settlement start);
///  3 several operators and clouds, enterprises and individuals sell; operators are admitted by a
///    majority vote of the existing operators.
/// @dev Roles are bit flags so one account may hold several (an operator that also buys).
///  Who may change the operator set (docs/security.md, threat model): in stage 1 the founder, whose
///  internal network teams they are; from stage 2 no new operator outside a vote, so the electorate stage 3
///  starts with is fixed before any third party joins; in stage 3 a strict majority of the operators who
///  held OPERATOR when a proposal was made, and no one else may touch the candidate while it is open.
interface IFederation {
    /// @notice A stage-3 operator proposal. The electorate is snapshotted by the id itself: proposal ids and
    ///  each operator's `operatorSince` (the proposal count when it last gained OPERATOR) count the same
    ///  sequence, so an operator votes on proposal `id` only when it held OPERATOR when `id` was made and
    ///  has held it since (`operatorSince <= id`); see `mayVote`.
    struct Proposal {
        address account; // slot 0: 160 bits, the candidate
        bool admit; //         8 bits: true to admit `account` as an operator, false to remove it
        bool executed; //      8 bits
        uint32 yes; //        32 bits
        uint32 needed; //     32 bits: strict majority of the operators when proposed (the electorate)
        uint8 roles; //        8 bits: OPERATOR for an admission, 0 for a removal
        uint40 deadline; // slot 1: last second votes are taken (open = not executed and not past it)
        string name; // the candidate's display name (admission)
    }

    /// @notice Role bit flags.
    /// OPERATOR = 1, CLOUD = 2, PROVIDER = 4, BUYER = 8, MATCHER = 16, ARBITER = 32.

    /// @notice `caller` is not the founder, who alone admits, changes and removes members and sets the stage
    ///  and the fee (operators decide only operators, by vote, in stage 3).
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
    /// @notice Stage 2 allows one third-party cloud; `existing` is already admitted.
    error ThirdPartyCloudLimit(uint32 existing);
    /// @notice The founder cannot be removed nor lose the OPERATOR role.
    error FounderIsPermanent();
    /// @notice Granting or removing the OPERATOR bit of `account` needs a vote in stage 3.
    error OperatorVoteRequired(address account);
    /// @notice Only stage 3 decides operators by vote; the call was made at `stage`.
    error VotingNotOpen(uint8 stage);
    /// @notice No proposal has id `proposalId`.
    error UnknownProposal(uint256 proposalId);
    /// @notice A proposal can no longer be voted on: it passed, failed or expired.
    error ProposalClosed(uint256 proposalId);
    /// @notice `voter` already voted on `proposalId`.
    error AlreadyVoted(uint256 proposalId, address voter);
    /// @notice `account` is the candidate of open proposal `proposalId`: until it closes (executed or past its
    ///  deadline) no one else admits, changes or removes it, nor proposes it again, so nothing can make the
    ///  proposal's execution revert under the operators' last vote.
    error CandidateUnderVote(address account, uint256 proposalId);
    /// @notice `voter` did not hold OPERATOR when `proposalId` was made (it gained it at proposal count
    ///  `operatorSince`, after it), so it is not in that proposal's electorate.
    error NotInElectorate(uint256 proposalId, address voter, uint64 operatorSince);

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
    /// @notice Emitted when an operator proposes to admit (`admit` true) or remove `account` as operator.
    event OperatorProposed(uint256 indexed proposalId, address indexed proposer, address indexed account, bool admit, uint40 deadline);
    /// @notice Emitted when an operator votes for a proposal; `yes` is the tally after the vote.
    event OperatorVoted(uint256 indexed proposalId, address indexed voter, uint32 yes, uint32 needed);
    /// @notice Emitted when a proposal reaches its majority and takes effect.
    event ProposalExecuted(uint256 indexed proposalId);

    /// @notice The current stage, 1 to 3.
    function stage() external view returns (uint8);
    /// @notice The founding operator (the deployer); governs in stages 1 and 2.
    function founder() external view returns (address);
    /// @notice The platform fee in basis points of the compute fee.
    function platformFeeBps() external view returns (uint16);
    /// @notice The value epoch: it changes whenever the stage or the platform fee does. A signed order names
    ///  the epoch it was signed in and is matched only in that epoch, so the value rules a buyer signed under
    ///  (whether tokens move, the fee) cannot change under its signature.
    function epoch() external view returns (uint32);
    /// @notice The roles `account` holds (0 when not a member).
    function rolesOf(address account) external view returns (uint8);
    /// @notice True when `account` is a member holding every bit of `role`.
    function hasRole(address account, uint8 role) external view returns (bool);

    /// @notice Admits `member` with `roles`, if this stage allows them. Governance only. OPERATOR only in stage 1
    ///  (RoleNotAllowedInStage in stage 2, OperatorVoteRequired in stage 3). With OPERATOR, reverts the
    ///  market's TooManyOperators when no transit-operator seat is left (IMarketSync.hasSeatFor). Reverts
    ///  CandidateUnderVote while `member` is the candidate of an open proposal.
    function admit(address member, uint8 roles, string calldata name) external;
    /// @notice Changes a member's roles, if this stage allows them. Governance only. Giving OPERATOR: stage 1
    ///  only (reverts the market's TooManyOperators when no transit-operator seat is left); taking it away:
    ///  stages 1-2 (OperatorVoteRequired in stage 3). Reverts CandidateUnderVote while `member` is the
    ///  candidate of an open proposal.
    function setRoles(address member, uint8 roles) external;
    /// @notice Removes a member. Governance only. An operator only in stages 1-2 (OperatorVoteRequired in
    ///  stage 3). Reverts CandidateUnderVote while `member` is the candidate of an open proposal.
    function remove(address member) external;
    /// @notice Moves to `newStage` (exactly one more than the current). Governance only.
    function advanceStage(uint8 newStage) external;
    /// @notice Sets the platform fee. Governance only.
    function setPlatformFee(uint16 bps) external;

    /// @notice Proposes to admit `account`, not a member, with the OPERATOR role and no other (stage 3, operators
    ///  only; MATCHER, ARBITER and the rest stay the founder's to grant, after the vote). The proposer votes
    ///  yes; it passes when a strict majority of the operators at proposal time (`needed`) agree within
    ///  `VOTING_PERIOD`. Reverts CandidateUnderVote if `account` is already under an open proposal, and
    ///  NoOperatorSeatLeft when the market has no seat left for it.
    /// @return proposalId the new proposal's id.
    function proposeOperator(address account, string calldata name) external returns (uint256 proposalId);
    /// @notice Proposes to remove operator `account` from the federation (stage 3, operators only; majority of
    ///  the operators at proposal time). The founder is permanent.
    /// @return proposalId the new proposal's id.
    function proposeOperatorRemoval(address account) external returns (uint256 proposalId);
    /// @notice Votes yes on open proposal `proposalId`, and executes it when the tally reaches `needed`. Only
    ///  operators that held OPERATOR when it was made, and since (NotInElectorate otherwise), once each.
    function vote(uint256 proposalId) external;
    /// @notice True when `account` may vote on `proposalId` now: the proposal is open, `account` is in its
    ///  electorate (held OPERATOR when it was made, and since) and has not voted on it.
    function mayVote(uint256 proposalId, address account) external view returns (bool);
    /// @notice True when `voter` voted on `proposalId`.
    function hasVoted(uint256 proposalId, address voter) external view returns (bool);
    /// @notice The number of operator proposals ever made (the next proposal's id).
    function proposalCount() external view returns (uint256);
    /// @notice Proposal `proposalId` (UnknownProposal if none).
    function getProposal(uint256 proposalId) external view returns (Proposal memory);
}
