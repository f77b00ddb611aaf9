// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IFederation} from "./interfaces/IFederation.sol";
import {IMarketSync} from "./interfaces/IMarketSync.sol";
import {Roles} from "./libraries/Roles.sol";

/// @title Federation
/// @notice Members, roles, stage and platform fee of one Suanwang deployment.
/// @dev Admission rules per stage (docs/contracts.md):
///  - stage 1: every member is one of the founder's internal teams; allowed roles: operator (the internal
///    network team), cloud (the internal cloud team), buyer, matcher, arbiter. No provider.
///  - stage 2: as stage 1, plus exactly one third-party cloud (a CLOUD member admitted at stage >= 2, roles
///    CLOUD and optionally BUYER). No new operator, no provider.
///  - stage 3: every role. A new operator (the OPERATOR bit, granted or removed) only by a majority vote
///    of the existing operators (`proposeOperator` / `proposeOperatorRemoval` + `vote`); other members
///    are admitted, changed and removed by the founder, who keeps the platform fee.
contract Federation is IFederation {
    /// @notice A proposal can no longer be voted on: it passed, failed or expired.
    error ProposalClosed(uint256 proposalId);
    /// @notice `voter` already voted on `proposalId`.
    error AlreadyVoted(uint256 proposalId, address voter);
    /// @notice Only stage 3 decides operators by vote; the call was made at `stage`.
    error VotingNotOpen(uint8 stage);
    /// @notice Granting or removing the OPERATOR bit of `account` needs a vote in stage 3.
    error OperatorVoteRequired(address account);
    /// @notice The founder cannot be removed nor lose the OPERATOR role.
    error FounderIsPermanent();
    /// @notice Stage 2 allows one third-party cloud; `existing` is already admitted.
    error ThirdPartyCloudLimit(uint8 existing);
    /// @notice No proposal has id `proposalId`.
    error UnknownProposal(uint256 proposalId);
    /// @notice The market is already wired (`market`), or the address given is zero.
    error InvalidMarket(address market);

    /// @notice Emitted when an operator proposes to admit (`admit` true) or remove `account` as operator.
    event OperatorProposed(uint256 indexed proposalId, address indexed proposer, address indexed account, bool admit, uint40 deadline);
    /// @notice Emitted when an operator votes for a proposal; `yes` is the tally after the vote.
    event OperatorVoted(uint256 indexed proposalId, address indexed voter, uint32 yes, uint32 needed);
    /// @notice Emitted when a proposal reaches its majority and takes effect.
    event ProposalExecuted(uint256 indexed proposalId);
    /// @notice Emitted once, when the founder wires the market that mirrors roles, stage and fee.
    event MarketSet(address indexed market);

    struct Member {
        uint8 roles; // bit flags, see Roles
        bool thirdParty; // admitted at stage >= 2 (not one of the founder's internal teams)
        bool listed; // in _memberList (every account ever admitted, pushed to the market when wired)
    }

    struct Proposal {
        address account; // slot 0: 160 bits
        bool admit; //         8 bits
        bool executed; //      8 bits
        uint32 yes; //        32 bits
        uint32 needed; //     32 bits: strict majority of the operators when proposed
        uint8 roles; //        8 bits (admission: the roles granted, OPERATOR included)
        uint40 deadline; // slot 1
        string name;
    }

    /// @notice How long a stage-3 operator proposal stays open.
    uint40 public constant VOTING_PERIOD = 7 days;
    /// @notice The platform fee cap, in basis points.
    uint16 public constant MAX_FEE_BPS = 2000;

    // The founder is immutable (in code, no slot). Slot 0 packs what a match reads together:
    //   stage (8) | platformFeeBps (16) | operatorCount (16) | thirdPartyClouds (8)
    /// @inheritdoc IFederation
    address public immutable override founder;
    uint8 private _stage;
    uint16 private _platformFeeBps;
    /// @notice The number of members holding the OPERATOR role (the stage-3 electorate).
    uint16 public operatorCount;
    /// @notice Third-party cloud members admitted (at most one in stage 2).
    uint8 public thirdPartyClouds;

    mapping(address account => Member) private _members;
    /// @dev Every account ever admitted, once each (for wiring the market).
    address[] private _memberList;
    /// @notice The market that mirrors every role, stage and fee change (pushed in the same transaction).
    IMarketSync public market;
    Proposal[] private _proposals;
    mapping(uint256 proposalId => mapping(address voter => bool)) public hasVoted;

    /// @param founderName display name of the founding operator (the deployer).
    /// @param platformFeeBps_ initial platform fee in basis points.
    constructor(string memory founderName, uint16 platformFeeBps_) {
        if (platformFeeBps_ > MAX_FEE_BPS) revert FeeTooHigh(platformFeeBps_, MAX_FEE_BPS);
        founder = msg.sender;
        _stage = 1;
        _platformFeeBps = platformFeeBps_;
        emit StageAdvanced(0, 1);
        emit PlatformFeeChanged(0, platformFeeBps_);
        _admit(msg.sender, Roles.OPERATOR, founderName, false);
    }

    modifier onlyGovernance() {
        if (msg.sender != founder) revert NotGovernance(msg.sender);
        _;
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IFederation
    function stage() external view override returns (uint8) {
        return _stage;
    }

    /// @inheritdoc IFederation
    function platformFeeBps() external view override returns (uint16) {
        return _platformFeeBps;
    }

    /// @inheritdoc IFederation
    function rolesOf(address account) public view override returns (uint8) {
        return _members[account].roles;
    }

    /// @inheritdoc IFederation
    function hasRole(address account, uint8 role) external view override returns (bool) {
        uint8 held = _members[account].roles;
        return held != 0 && held & role == role;
    }

    /// @notice True when `account` was admitted as a third party (not one of the founder's teams).
    function isThirdParty(address account) external view returns (bool) {
        return _members[account].thirdParty;
    }

    /// @notice The roles that may register nodes and sell at `stage_`: the clouds in stages 1 and 2
    ///  (the founder's internal cloud team, plus the one third-party cloud in stage 2); clouds,
    ///  providers and operators in stage 3.
    function sellerRoles(uint8 stage_) public pure returns (uint8) {
        return stage_ >= 3 ? Roles.CLOUD | Roles.PROVIDER | Roles.OPERATOR : Roles.CLOUD;
    }

    /// @notice Reverts MissingRole unless `account` holds every bit of `role`.
    function requireRole(address account, uint8 role) external view {
        _requireRole(account, role);
    }

    /// @notice The number of operator proposals ever made.
    function proposalCount() external view returns (uint256) {
        return _proposals.length;
    }

    /// @notice A stage-3 operator proposal.
    function getProposal(uint256 proposalId) external view returns (Proposal memory) {
        if (proposalId >= _proposals.length) revert UnknownProposal(proposalId);
        return _proposals[proposalId];
    }

    // ----------------------------------------------------------- governance

    /// @notice Wires the market, once, and pushes the stage, the fee and every member's roles to it.
    ///  From then on every change is pushed as it happens. Founder only.
    function setMarket(IMarketSync market_) external onlyGovernance {
        if (address(market) != address(0) || address(market_) == address(0)) revert InvalidMarket(address(market_));
        market = market_;
        emit MarketSet(address(market_));
        market_.syncParams(_stage, _platformFeeBps);
        uint256 n = _memberList.length;
        for (uint256 i; i < n; ++i) {
            address member = _memberList[i];
            market_.syncRoles(member, _members[member].roles);
        }
    }

    /// @inheritdoc IFederation
    function admit(address member, uint8 roles, string calldata name) external override onlyGovernance {
        if (roles & Roles.OPERATOR != 0 && _stage >= 3) revert OperatorVoteRequired(member);
        _admit(member, roles, name, _stage >= 2);
    }

    /// @inheritdoc IFederation
    function setRoles(address member, uint8 roles) external override onlyGovernance {
        Member storage m = _members[member];
        uint8 previous = m.roles;
        if (previous == 0) revert NotMember(member);
        if (roles == 0 || roles & ~Roles.ALL != 0) revert InvalidRoles(roles);
        bool wasOperator = previous & Roles.OPERATOR != 0;
        bool isOperator = roles & Roles.OPERATOR != 0;
        if (member == founder && !isOperator) revert FounderIsPermanent();
        if (wasOperator != isOperator && _stage >= 3) revert OperatorVoteRequired(member);
        _checkAllowed(roles & ~previous, m.thirdParty, previous & Roles.CLOUD != 0);
        if (m.thirdParty && (roles & Roles.CLOUD != 0) != (previous & Roles.CLOUD != 0)) {
            if (roles & Roles.CLOUD != 0) {
                if (_stage == 2 && thirdPartyClouds != 0) revert ThirdPartyCloudLimit(thirdPartyClouds);
                ++thirdPartyClouds;
            } else {
                --thirdPartyClouds;
            }
        }
        if (isOperator && !wasOperator) ++operatorCount;
        if (wasOperator && !isOperator) --operatorCount;
        m.roles = roles;
        emit MemberRolesChanged(member, previous, roles);
        _push(member, roles);
    }

    /// @inheritdoc IFederation
    function remove(address member) external override onlyGovernance {
        if (member == founder) revert FounderIsPermanent();
        Member memory m = _members[member];
        if (m.roles == 0) revert NotMember(member);
        if (m.roles & Roles.OPERATOR != 0 && _stage >= 3) revert OperatorVoteRequired(member);
        _remove(member, m);
    }

    /// @inheritdoc IFederation
    function advanceStage(uint8 newStage) external override onlyGovernance {
        uint8 current = _stage;
        if (newStage != current + 1 || newStage > 3) revert InvalidStageTransition(current, newStage);
        _stage = newStage;
        emit StageAdvanced(current, newStage);
        _pushParams();
    }

    /// @inheritdoc IFederation
    function setPlatformFee(uint16 bps) external override onlyGovernance {
        if (bps > MAX_FEE_BPS) revert FeeTooHigh(bps, MAX_FEE_BPS);
        uint16 previous = _platformFeeBps;
        _platformFeeBps = bps;
        emit PlatformFeeChanged(previous, bps);
        _pushParams();
    }

    // --------------------------------------------------- stage-3 operator votes

    /// @notice Proposes to admit `account` as an operator with `roles` (OPERATOR included). The proposer,
    ///  an operator, votes yes. It passes when a strict majority of the operators at proposal time agree.
    function proposeOperator(address account, uint8 roles, string calldata name) external returns (uint256) {
        if (_members[account].roles != 0) revert AlreadyMember(account);
        if (roles & Roles.OPERATOR == 0 || roles & ~Roles.ALL != 0) revert InvalidRoles(roles);
        // Refused now rather than when the vote passes: executing it would revert, and the vote with it.
        if (address(market) != address(0) && !market.hasSeatFor(account)) revert NoOperatorSeatLeft(account);
        return _propose(account, true, roles, name);
    }

    /// @notice Proposes to remove operator `account` from the federation (majority vote, stage 3).
    function proposeOperatorRemoval(address account) external returns (uint256) {
        if (account == founder) revert FounderIsPermanent();
        uint8 held = _members[account].roles;
        if (held & Roles.OPERATOR == 0) revert MissingRole(account, Roles.OPERATOR, held);
        return _propose(account, false, 0, "");
    }

    /// @notice Votes yes on `proposalId`; executes it once the majority is reached.
    function vote(uint256 proposalId) external {
        if (proposalId >= _proposals.length) revert UnknownProposal(proposalId);
        _requireRole(msg.sender, Roles.OPERATOR);
        _vote(proposalId, msg.sender);
    }

    function _propose(address account, bool admit_, uint8 roles, string memory name) private returns (uint256 id) {
        if (_stage < 3) revert VotingNotOpen(_stage);
        _requireRole(msg.sender, Roles.OPERATOR);
        id = _proposals.length;
        uint40 deadline = uint40(block.timestamp) + VOTING_PERIOD;
        _proposals.push(
            Proposal({
                account: account,
                admit: admit_,
                executed: false,
                yes: 0,
                needed: uint32(operatorCount) / 2 + 1,
                roles: roles,
                deadline: deadline,
                name: name
            })
        );
        emit OperatorProposed(id, msg.sender, account, admit_, deadline);
        _vote(id, msg.sender);
    }

    function _vote(uint256 id, address voter) private {
        Proposal storage p = _proposals[id];
        if (p.executed || block.timestamp > p.deadline) revert ProposalClosed(id);
        if (hasVoted[id][voter]) revert AlreadyVoted(id, voter);
        hasVoted[id][voter] = true;
        uint32 yes = p.yes + 1;
        p.yes = yes;
        emit OperatorVoted(id, voter, yes, p.needed);
        if (yes >= p.needed) {
            p.executed = true;
            emit ProposalExecuted(id);
            if (p.admit) {
                // The account may have been admitted meanwhile by another path; _admit reverts then.
                _admit(p.account, p.roles, p.name, true);
            } else {
                Member memory m = _members[p.account];
                if (m.roles & Roles.OPERATOR == 0) revert MissingRole(p.account, Roles.OPERATOR, m.roles);
                _remove(p.account, m);
            }
        }
    }

    // -------------------------------------------------------------- internals

    function _admit(address member, uint8 roles, string memory name, bool thirdParty) private {
        if (_members[member].roles != 0) revert AlreadyMember(member);
        if (roles == 0 || roles & ~Roles.ALL != 0) revert InvalidRoles(roles);
        _checkAllowed(roles, thirdParty, false);
        if (thirdParty && roles & Roles.CLOUD != 0) {
            if (_stage == 2 && thirdPartyClouds != 0) revert ThirdPartyCloudLimit(thirdPartyClouds);
            ++thirdPartyClouds;
        }
        if (roles & Roles.OPERATOR != 0) ++operatorCount;
        if (!_members[member].listed) _memberList.push(member);
        _members[member] = Member({roles: roles, thirdParty: thirdParty, listed: true});
        emit MemberAdmitted(member, roles, name);
        _push(member, roles);
    }

    function _remove(address member, Member memory m) private {
        if (m.roles & Roles.OPERATOR != 0) --operatorCount;
        if (m.thirdParty && m.roles & Roles.CLOUD != 0) --thirdPartyClouds;
        _members[member] = Member({roles: 0, thirdParty: false, listed: true});
        emit MemberRemoved(member);
        _push(member, 0);
    }

    /// @dev Reverts RoleNotAllowedInStage when `added` (the roles being newly granted) is not allowed
    ///  for this kind of member at this stage. The founder's own OPERATOR role (constructor) is stage 1.
    function _checkAllowed(uint8 added, bool thirdParty, bool alreadyCloud) private view {
        uint8 s = _stage;
        if (s >= 3) return;
        uint8 allowed;
        if (!thirdParty) {
            // The founder's internal teams: network (operator), cloud, buying, matching, arbitration.
            allowed = Roles.OPERATOR | Roles.CLOUD | Roles.BUYER | Roles.MATCHER | Roles.ARBITER;
        } else {
            // Stage 2: the one third-party cloud, which may also buy. (Stage 1 has no third party.)
            allowed = s == 2 ? Roles.CLOUD | Roles.BUYER : 0;
            if (s == 2 && added & Roles.CLOUD == 0 && !alreadyCloud) allowed = 0;
        }
        if (added & ~allowed != 0) revert RoleNotAllowedInStage(added, s);
    }

    /// @dev Mirrors `member`'s roles into the market (once wired).
    function _push(address member, uint8 roles) private {
        IMarketSync m = market;
        if (address(m) != address(0)) m.syncRoles(member, roles);
    }

    function _pushParams() private {
        IMarketSync m = market;
        if (address(m) != address(0)) m.syncParams(_stage, _platformFeeBps);
    }

    function _requireRole(address account, uint8 role) private view {
        uint8 held = _members[account].roles;
        if (held & role != role) revert MissingRole(account, role, held);
    }
}
