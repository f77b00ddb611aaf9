// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CheatCodes} from "./Vm.sol";
import {Federation} from "../../contracts/Federation.sol";
import {IFederation} from "../../contracts/interfaces/IFederation.sol";

/// @notice Drives the Federation as its founder and its operators would (issue 14's `operator_votes`
///  handler group): admissions, role changes and removals by the founder, stage and fee changes, operator
///  proposals (admission and removal) and votes, and time passing so proposals expire. A call the Federation
///  refuses reverts the handler call, so Foundry's metrics count only calls that changed something.
///  The ghost state is the handler's own record, taken from what held when each call was made: which
///  members held OPERATOR when each proposal was made (its electorate), and every founder change that
///  touched a candidate under an open proposal or granted OPERATOR from stage 2 (both must never succeed).
contract FederationHandler is CheatCodes {
    uint8 internal constant OPERATOR = 1;
    uint8 internal constant CLOUD = 2;
    uint8 internal constant PROVIDER = 4;
    uint8 internal constant BUYER = 8;
    uint8 internal constant MATCHER = 16;
    uint8 internal constant ARBITER = 32;

    Federation public immutable federation;
    address public immutable founder;

    /// @dev The founder (index 0) and every account the handler may admit: the whole possible membership,
    ///  so counting over it counts every member. At most 256, one bit each in an electorate mask.
    address[] internal _members;

    /// @dev Per proposal id: the members that held OPERATOR when it was made (bit i = _members[i]).
    uint256[] public electorateOf;

    /// @notice Votes the Federation accepted from a member outside the proposal's electorate.
    uint256 public votesOutsideElectorate;
    /// @notice Founder changes (admit, setRoles, remove) that succeeded on a candidate under an open proposal.
    uint256 public candidatesTouched;
    /// @notice Founder changes that granted OPERATOR at stage 2 or later.
    uint256 public operatorsGrantedOutsideVotes;

    mapping(string name => uint256) public okCalls;
    string[] public callNames;

    /// @dev Role sets the founder tries: each stage's usual ones and some it must refuse.
    uint8[8] internal _roleMenu = [OPERATOR, CLOUD, BUYER, MATCHER, ARBITER, OPERATOR | BUYER, CLOUD | BUYER, PROVIDER];

    constructor(Federation federation_, address founder_, address[] memory candidates) {
        federation = federation_;
        founder = founder_;
        _members.push(founder_);
        for (uint256 i; i < candidates.length; ++i) {
            _members.push(candidates[i]);
        }
        callNames.push("admit");
        callNames.push("setRoles");
        callNames.push("grantOperator");
        callNames.push("remove");
        callNames.push("advanceStage");
        callNames.push("setPlatformFee");
        callNames.push("proposeOperator");
        callNames.push("proposeOperatorRemoval");
        callNames.push("vote");
        callNames.push("warp");
    }

    // ------------------------------------------------------------------ the founder

    function admit(uint256 who, uint256 rolesSeed) external {
        address account = _candidate(who);
        uint8 roles = _roleMenu[rolesSeed % _roleMenu.length];
        _founderChange(account, abi.encodeCall(IFederation.admit, (account, roles, "member")), roles);
        ++okCalls["admit"];
    }

    function setRoles(uint256 who, uint256 rolesSeed) external {
        address account = _member(who);
        uint8 roles = _roleMenu[rolesSeed % _roleMenu.length];
        _founderChange(account, abi.encodeCall(IFederation.setRoles, (account, roles)), roles);
        ++okCalls["setRoles"];
    }

    /// @dev The packing attempt of issue 14: the founder makes a member an operator, keeping its roles
    ///  (allowed in stage 1 only).
    function grantOperator(uint256 who) external {
        address account = _candidate(who);
        uint8 roles = federation.rolesOf(account) | OPERATOR;
        _founderChange(account, abi.encodeCall(IFederation.setRoles, (account, roles)), roles);
        ++okCalls["grantOperator"];
    }

    function remove(uint256 who) external {
        address account = _member(who);
        _founderChange(account, abi.encodeCall(IFederation.remove, (account)), 0);
        ++okCalls["remove"];
    }

    function advanceStage() external {
        uint8 next = federation.stage() + 1;
        vm.prank(founder);
        federation.advanceStage(next);
        ++okCalls["advanceStage"];
    }

    function setPlatformFee(uint256 bps) external {
        uint16 fee = uint16(bound(bps, 0, federation.MAX_FEE_BPS())); // before the prank, which the next call takes
        vm.prank(founder);
        federation.setPlatformFee(fee);
        ++okCalls["setPlatformFee"];
    }

    // ------------------------------------------------------------------ the operators

    function proposeOperator(uint256 proposerSeed, uint256 who) external {
        uint256 electorate = _operatorsNow();
        address proposer = _members[_operatorFrom(proposerSeed, electorate)];
        vm.prank(proposer);
        uint256 id = federation.proposeOperator(_candidate(who), "candidate");
        _recorded(id, electorate);
        ++okCalls["proposeOperator"];
    }

    function proposeOperatorRemoval(uint256 proposerSeed, uint256 who) external {
        uint256 electorate = _operatorsNow();
        address proposer = _members[_operatorFrom(proposerSeed, electorate)];
        vm.prank(proposer);
        uint256 id = federation.proposeOperatorRemoval(_member(who));
        _recorded(id, electorate);
        ++okCalls["proposeOperatorRemoval"];
    }

    function vote(uint256 voterSeed, uint256 proposalSeed) external {
        uint256 n = electorateOf.length;
        require(n != 0, "no proposal yet");
        uint256 id = proposalSeed % n;
        // Half the votes come from an operator of now (which may have joined after the proposal: refused
        // then), half from any member, so both the votes that count and those that must not are tried.
        uint256 i = voterSeed & 1 == 0 ? _operatorFrom(voterSeed >> 1, _operatorsNow()) : (voterSeed >> 1) % _members.length;
        vm.prank(_members[i]);
        federation.vote(id);
        if (electorateOf[id] & (1 << i) == 0) ++votesOutsideElectorate;
        ++okCalls["vote"];
    }

    function warp(uint256 secondsForward) external {
        vm.warp(block.timestamp + bound(secondsForward, 1, 2 days)); // ~5 per VOTING_PERIOD
        ++okCalls["warp"];
    }

    // ------------------------------------------------------------------ views for the invariants

    function memberList() external view returns (address[] memory) {
        return _members;
    }

    function proposalsRecorded() external view returns (uint256) {
        return electorateOf.length;
    }

    function callNameCount() external view returns (uint256) {
        return callNames.length;
    }

    // ------------------------------------------------------------------ internals

    /// @dev Makes a founder call on `account` and records what must not have succeeded: touching a
    ///  candidate under an open proposal, or granting OPERATOR from stage 2 on.
    function _founderChange(address account, bytes memory call, uint8 rolesAfter) private {
        bool underVote = _underOpenProposal(account);
        uint8 before = federation.rolesOf(account);
        uint8 stage = federation.stage();
        vm.prank(founder);
        (bool ok, bytes memory reason) = address(federation).call(call);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(reason, 32), mload(reason))
            }
        }
        if (underVote) ++candidatesTouched;
        if (stage >= 2 && before & OPERATOR == 0 && rolesAfter & OPERATOR != 0) ++operatorsGrantedOutsideVotes;
    }

    /// @dev The handler's own view of "open": the proposal names `account`, is not executed and its deadline
    ///  has not passed (read from the proposal, not from the Federation's lock).
    function _underOpenProposal(address account) private view returns (bool) {
        for (uint256 id; id < electorateOf.length; ++id) {
            IFederation.Proposal memory p = federation.getProposal(id);
            if (p.account == account && !p.executed && block.timestamp <= p.deadline) return true;
        }
        return false;
    }

    function _operatorsNow() private view returns (uint256 mask) {
        for (uint256 i; i < _members.length; ++i) {
            if (federation.rolesOf(_members[i]) & OPERATOR != 0) mask |= 1 << i;
        }
    }

    function _recorded(uint256 id, uint256 electorate) private {
        require(id == electorateOf.length, "proposal ids are not the handler's count");
        electorateOf.push(electorate);
    }

    /// @dev The first member at or after index `seed` (wrapping) in `operators`; the founder (index 0), who
    ///  is always an operator, if none.
    function _operatorFrom(uint256 seed, uint256 operators) private view returns (uint256) {
        uint256 n = _members.length;
        for (uint256 k; k < n; ++k) {
            uint256 i = (seed + k) % n;
            if (operators & (1 << i) != 0) return i;
        }
        return 0;
    }

    /// @dev Any account of the membership, the founder included.
    function _member(uint256 seed) private view returns (address) {
        return _members[seed % _members.length];
    }

    /// @dev An account other than the founder.
    function _candidate(uint256 seed) private view returns (address) {
        return _members[1 + seed % (_members.length - 1)];
    }
}
