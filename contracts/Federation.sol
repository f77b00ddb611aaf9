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
///    CLOUD and optionally BUYER). No new operator, internal or not (the operator set is frozen but for
///    removals, so the electorate stage 3 starts with is fixed before any third party joins), no provider.
///  - stage 3: every role. A new operator (the OPERATOR bit, granted or removed) only by a majority vote
///    of the operators who held OPERATOR when it was proposed (`proposeOperator` / `proposeOperatorRemoval`
///    + `vote`); a proposal grants OPERATOR alone. Other members, and the other roles of an operator, are
///    admitted, changed and removed by the founder, who keeps the platform fee, but not a candidate while
///    its proposal is open.
contract Federation is IFederation {
    /// @notice The market is already wired (`market`), or the address given is zero.
    error InvalidMarket(address market);

    /// @notice Emitted once, when the founder wires the market that mirrors roles, stage and fee.
    event MarketSet(address indexed market);

    /// @dev One slot: 8 | 8 | 8 | 64 | 64 = 152 bits, so every check of a member (its roles, its place in an
    ///  electorate, an open proposal naming it) reads one slot.
    struct Member {
        uint8 roles; // bit flags, see Roles
        bool thirdParty; // admitted at stage >= 2 (not one of the founder's internal teams)
        bool listed; // in _memberList (every account ever admitted, pushed to the market when wired)
        // The proposal count when it last gained OPERATOR: it votes on proposals with id >= this (held the
        // role when they were made). Ids grow by one per proposal: 2**64 of them cannot be made.
        uint64 operatorSince;
        // 1 + the id of the last proposal naming it as candidate, 0 for none: that proposal locks it while
        // open. Cleared when the proposal executes (the member is rewritten), left when it expires.
        uint64 candidacy;
    }

    /// @notice How long a stage-3 operator proposal stays open.
    uint40 public constant VOTING_PERIOD = 7 days;
    /// @notice The platform fee cap, in basis points.
    uint16 public constant MAX_FEE_BPS = 2000;

    // The founder is immutable (in code, no slot). Slot 0 packs the counters an admission, a stage or a fee
    // change reads and writes, so each touches one slot:
    //   stage (8) | platformFeeBps (16) | operatorCount (16) | thirdPartyClouds (32) | epoch (32) = 104 bits
    // operatorCount is bounded by the market's 96 seats; thirdPartyClouds is unbounded in stage 3 (a uint8
    // made the 256th third-party cloud's admission revert), and 2**32 admissions cannot be paid for.
    /// @inheritdoc IFederation
    address public immutable override founder;
    uint8 private _stage;
    uint16 private _platformFeeBps;
    /// @notice The number of members holding the OPERATOR role (the stage-3 electorate).
    uint16 public operatorCount;
    /// @notice Third-party cloud members admitted (at most one in stage 2).
    uint32 public thirdPartyClouds;
    /// @inheritdoc IFederation
    uint32 public override epoch;

    mapping(address account => Member) private _members;
    /// @dev Every account ever admitted, once each (for wiring the market).
    address[] private _memberList;
    /// @notice The market that mirrors every role, stage and fee change (pushed in the same transaction).
    IMarketSync public market;
    Proposal[] private _proposals;
    /// @inheritdoc IFederation
    mapping(uint256 proposalId => mapping(address voter => bool)) public override hasVoted;

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

    /// @inheritdoc IFederation
    function proposalCount() external view override returns (uint256) {
        return _proposals.length;
    }

    /// @inheritdoc IFederation
    function getProposal(uint256 proposalId) external view override returns (Proposal memory) {
        if (proposalId >= _proposals.length) revert UnknownProposal(proposalId);
        return _proposals[proposalId];
    }

    /// @inheritdoc IFederation
    function mayVote(uint256 proposalId, address account) external view override returns (bool) {
        if (proposalId >= _proposals.length || hasVoted[proposalId][account]) return false;
        Member storage m = _members[account];
        return m.roles & Roles.OPERATOR != 0 && m.operatorSince <= proposalId && _isOpen(_proposals[proposalId]);
    }

    // ----------------------------------------------------------- governance

    /// @notice Wires the market, once, and pushes the stage, the fee and every member's roles to it.
    ///  From then on every change is pushed as it happens. Founder only.
    function setMarket(IMarketSync market_) external onlyGovernance {
        if (address(market) != address(0) || address(market_) == address(0)) revert InvalidMarket(address(market_));
        market = market_;
        emit MarketSet(address(market_));
        market_.syncParams(_stage, _platformFeeBps, epoch);
        uint256 n = _memberList.length;
        for (uint256 i; i < n; ++i) {
            address member = _memberList[i];
            market_.syncRoles(member, _members[member].roles);
        }
    }

    /// @inheritdoc IFederation
    function admit(address member, uint8 roles, string calldata name) external override onlyGovernance {
        _requireNotCandidate(member, _members[member].candidacy);
        if (roles & Roles.OPERATOR != 0 && _stage >= 3) revert OperatorVoteRequired(member);
        _admit(member, roles, name, _stage >= 2);
    }

    /// @inheritdoc IFederation
    function setRoles(address member, uint8 roles) external override onlyGovernance {
        Member storage m = _members[member];
        _requireNotCandidate(member, m.candidacy);
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
        if (isOperator && !wasOperator) {
            ++operatorCount;
            m.operatorSince = uint64(_proposals.length);
        }
        if (wasOperator && !isOperator) --operatorCount;
        m.roles = roles;
        emit MemberRolesChanged(member, previous, roles);
        _push(member, roles);
    }

    /// @inheritdoc IFederation
    function remove(address member) external override onlyGovernance {
        if (member == founder) revert FounderIsPermanent();
        Member memory m = _members[member];
        _requireNotCandidate(member, m.candidacy);
        if (m.roles == 0) revert NotMember(member);
        if (m.roles & Roles.OPERATOR != 0 && _stage >= 3) revert OperatorVoteRequired(member);
        _remove(member, m);
    }

    /// @inheritdoc IFederation
    function advanceStage(uint8 newStage) external override onlyGovernance {
        uint8 current = _stage;
        if (newStage != current + 1 || newStage > 3) revert InvalidStageTransition(current, newStage);
        _stage = newStage;
        ++epoch;
        emit StageAdvanced(current, newStage);
        _pushParams();
    }

    /// @inheritdoc IFederation
    function setPlatformFee(uint16 bps) external override onlyGovernance {
        if (bps > MAX_FEE_BPS) revert FeeTooHigh(bps, MAX_FEE_BPS);
        uint16 previous = _platformFeeBps;
        _platformFeeBps = bps;
        ++epoch;
        emit PlatformFeeChanged(previous, bps);
        _pushParams();
    }

    // --------------------------------------------------- stage-3 operator votes

    /// @inheritdoc IFederation
    function proposeOperator(address account, string calldata name) external override returns (uint256) {
        _requireProposer();
        Member storage m = _members[account];
        _requireNotCandidate(account, m.candidacy);
        if (m.roles != 0) revert AlreadyMember(account);
        // Refused now rather than when the vote passes: executing it would revert, and the vote with it.
        if (address(market) != address(0) && !market.hasSeatFor(account)) revert NoOperatorSeatLeft(account);
        return _propose(account, true, Roles.OPERATOR, name);
    }

    /// @inheritdoc IFederation
    function proposeOperatorRemoval(address account) external override returns (uint256) {
        _requireProposer();
        if (account == founder) revert FounderIsPermanent();
        Member storage m = _members[account];
        _requireNotCandidate(account, m.candidacy);
        uint8 held = m.roles;
        if (held & Roles.OPERATOR == 0) revert MissingRole(account, Roles.OPERATOR, held);
        return _propose(account, false, 0, "");
    }

    /// @inheritdoc IFederation
    function vote(uint256 proposalId) external override {
        if (proposalId >= _proposals.length) revert UnknownProposal(proposalId);
        _vote(proposalId, msg.sender);
    }

    /// @dev Stage 3 and an operator: checked before anything about the candidate, so a caller who may not
    ///  propose learns nothing more than the stage or its own roles.
    function _requireProposer() private view {
        if (_stage < 3) revert VotingNotOpen(_stage);
        _requireRole(msg.sender, Roles.OPERATOR);
    }

    function _propose(address account, bool admit_, uint8 roles, string memory name) private returns (uint256 id) {
        id = _proposals.length;
        uint40 deadline = uint40(block.timestamp) + VOTING_PERIOD;
        _proposals.push(
            Proposal({
                account: account,
                admit: admit_,
                executed: false,
                yes: 0,
                // The electorate is every operator now (each has operatorSince <= id): operatorCount of them.
                needed: uint32(operatorCount) / 2 + 1,
                roles: roles,
                deadline: deadline,
                name: name
            })
        );
        _members[account].candidacy = uint64(id) + 1;
        emit OperatorProposed(id, msg.sender, account, admit_, deadline);
        _vote(id, msg.sender);
    }

    function _vote(uint256 id, address voter) private {
        Member storage v = _members[voter];
        uint8 held = v.roles;
        if (held & Roles.OPERATOR == 0) revert MissingRole(voter, Roles.OPERATOR, held);
        // Gained OPERATOR after the proposal was made (or lost it and gained it again since): not in its
        // electorate, or whoever admits operators meanwhile could outvote the operators who were asked.
        if (v.operatorSince > id) revert NotInElectorate(id, voter, v.operatorSince);
        Proposal storage p = _proposals[id];
        if (!_isOpen(p)) revert ProposalClosed(id);
        if (hasVoted[id][voter]) revert AlreadyVoted(id, voter);
        hasVoted[id][voter] = true;
        uint32 yes = p.yes + 1;
        p.yes = yes;
        emit OperatorVoted(id, voter, yes, p.needed);
        if (yes >= p.needed) {
            p.executed = true;
            emit ProposalExecuted(id);
            // While the proposal was open no one else could admit, change or remove the candidate
            // (CandidateUnderVote), so the candidate is as it was when proposed. An admission's seat was
            // checked then too; only two admissions open at once for the market's last seat can still fail
            // here (TooManyOperators), and only among operators' own proposals (docs/security.md).
            if (p.admit) {
                _admit(p.account, Roles.OPERATOR, p.name, true);
            } else {
                _remove(p.account, _members[p.account]);
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
        bool operator_ = roles & Roles.OPERATOR != 0;
        if (operator_) ++operatorCount;
        if (!_members[member].listed) _memberList.push(member);
        _members[member] = Member({
            roles: roles,
            thirdParty: thirdParty,
            listed: true,
            operatorSince: operator_ ? uint64(_proposals.length) : 0,
            candidacy: 0
        });
        emit MemberAdmitted(member, roles, name);
        _push(member, roles);
    }

    function _remove(address member, Member memory m) private {
        if (m.roles & Roles.OPERATOR != 0) --operatorCount;
        if (m.thirdParty && m.roles & Roles.CLOUD != 0) --thirdPartyClouds;
        _members[member] = Member({roles: 0, thirdParty: false, listed: true, operatorSince: 0, candidacy: 0});
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
            // The founder's internal teams: cloud, buying, matching, arbitration, and in stage 1 only network
            // (operator). The internal operators are stage 3's first electorate: frozen from stage 2, before
            // any third party joins, it is a fact every later member can read, not a number the founder
            // grows when a vote is near. (Removing one stays possible: it only takes a vote from the founder.)
            allowed = Roles.CLOUD | Roles.BUYER | Roles.MATCHER | Roles.ARBITER;
            if (s == 1) allowed |= Roles.OPERATOR;
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
        if (address(m) != address(0)) m.syncParams(_stage, _platformFeeBps, epoch);
    }

    /// @dev Reverts CandidateUnderVote while the proposal `candidacy` names (1 + its id) is open.
    function _requireNotCandidate(address account, uint64 candidacy) private view {
        if (candidacy == 0) return;
        uint256 id = candidacy - 1;
        if (_isOpen(_proposals[id])) revert CandidateUnderVote(account, id);
    }

    function _isOpen(Proposal storage p) private view returns (bool) {
        return !p.executed && block.timestamp <= p.deadline;
    }

    function _requireRole(address account, uint8 role) private view {
        uint8 held = _members[account].roles;
        if (held & role != role) revert MissingRole(account, role, held);
    }
}
