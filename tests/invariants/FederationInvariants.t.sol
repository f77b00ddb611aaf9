// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CheatCodes, Console} from "./Vm.sol";
import {FederationHandler} from "./FederationHandler.sol";
import {Federation} from "../../contracts/Federation.sol";
import {IFederation} from "../../contracts/interfaces/IFederation.sol";
import {NodeRegistry} from "../../contracts/NodeRegistry.sol";
import {Market} from "../../contracts/Market.sol";
import {MarketBase} from "../../contracts/MarketBase.sol";
import {SettlementToken} from "../../contracts/SettlementToken.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @notice The storage-reading cheatcode (Vm.sol declares only what the market's suite uses).
interface VmStorage {
    function load(address target, bytes32 slot) external view returns (bytes32);
}

/// @notice The Federation's invariants under operator votes, stage and fee changes and the founder's
///  admissions, checked after every call of Foundry's invariant runner (foundry.toml: 256 runs x 100 calls),
///  with a real Market wired to it as scripts/deploy.py wires one.
contract FederationInvariants is CheatCodes {
    VmStorage internal constant vmStorage = VmStorage(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint8 internal constant OPERATOR = 1;
    uint8 internal constant CLOUD = 2;
    uint8 internal constant BUYER = 8;
    uint8 internal constant MATCHER = 16;
    uint8 internal constant ARBITER = 32;
    /// @dev A member the handler never touches, with roles no one else starts with: it pins the market's
    ///  account mapping when the storage is searched.
    address internal constant SENTINEL = address(0x5E4711E1);
    uint16 internal constant FEE_BPS = 250;

    Federation internal federation;
    Market internal market;
    FederationHandler internal handler;
    /// @dev Where the market keeps what it mirrors, found in its storage at set-up (Escrow's layout): the
    ///  Account mapping (roles at bits 224-231 of an account's word) and the parameter slot (stage at bits
    ///  128-135, fee at 136-151, a seat's active bit at 160 + seat).
    uint256 internal accountsSlot;
    uint256 internal paramsSlot;

    function setUp() public {
        federation = new Federation("founder", FEE_BPS);
        federation.setRoles(address(this), OPERATOR | MATCHER | ARBITER);
        uint256[4] memory minStake = [uint256(10e18), 20e18, 40e18, 80e18];
        NodeRegistry registry = new NodeRegistry(federation, minStake);
        SettlementToken token = new SettlementToken("Test", "TST");
        market = new Market(
            federation, registry, IERC20(address(token)), MarketBase.Terms(600, 600, 600, 600, 600, 600, 1000)
        );
        registry.setMarket(market);
        federation.setMarket(market);
        federation.admit(SENTINEL, CLOUD | BUYER, "sentinel");

        address[] memory candidates = new address[](8);
        for (uint256 i; i < candidates.length; ++i) {
            candidates[i] = address(uint160(0xFED01 + i));
        }
        handler = new FederationHandler(federation, address(this), candidates);
        // Two internal network teams, as stage 1 may have: stage 3 then starts with three operators, so a
        // proposal needs a second vote and stays open while others are made and decided.
        federation.admit(candidates[0], OPERATOR, "network team");
        federation.admit(candidates[1], OPERATOR | BUYER, "network team 2");
        accountsSlot = _findAccountsSlot();
        paramsSlot = _findParamsSlot();
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @notice operatorCount is the number of members holding OPERATOR.
    function invariant_operatorCountIsTheMembersHoldingOperator() public view {
        address[] memory members = _everyone();
        uint256 operators;
        for (uint256 i; i < members.length; ++i) {
            if (federation.rolesOf(members[i]) & OPERATOR != 0) ++operators;
        }
        require(federation.operatorCount() == operators, "operatorCount != members holding OPERATOR");
    }

    /// @notice Every proposal needs a strict majority of the operators of its time, counts only their votes,
    ///  executes only with that majority, and grants OPERATOR alone.
    function invariant_noProposalExecutesWithoutItsElectoratesMajority() public view {
        address[] memory members = handler.memberList();
        uint256 n = federation.proposalCount();
        require(n == handler.proposalsRecorded(), "a proposal the handler did not make");
        for (uint256 id; id < n; ++id) {
            IFederation.Proposal memory p = federation.getProposal(id);
            uint256 electorate = handler.electorateOf(id);
            require(p.needed == _count(electorate) / 2 + 1, "needed != strict majority of the electorate");
            require(p.roles == (p.admit ? OPERATOR : 0), "a proposal grants more than OPERATOR");
            uint256 voters;
            uint256 fromElectorate;
            for (uint256 i; i < members.length; ++i) {
                if (!federation.hasVoted(id, members[i])) continue;
                ++voters;
                if (electorate & (1 << i) != 0) ++fromElectorate;
            }
            require(voters == p.yes, "the tally != the members who voted");
            require(fromElectorate == voters, "a vote from outside the proposal's electorate");
            if (p.executed) require(fromElectorate >= p.needed, "executed without its electorate's majority");
        }
        require(handler.votesOutsideElectorate() == 0, "a vote from outside the electorate was accepted");
    }

    /// @notice No founder change succeeds on a candidate under an open proposal, and none grants OPERATOR
    ///  from stage 2 on.
    function invariant_founderNeitherTouchesCandidatesNorGrantsOperatorsFromStageTwo() public view {
        require(handler.candidatesTouched() == 0, "the founder changed a candidate under vote");
        require(handler.operatorsGrantedOutsideVotes() == 0, "the founder granted OPERATOR from stage 2");
    }

    /// @notice The market mirrors the Federation: every member's roles, each seat's active bit (its holder
    ///  holds OPERATOR), a seat for every operator, the stage and the fee.
    function invariant_marketMirrorsTheFederation() public view {
        address[] memory members = _everyone();
        uint256 params = uint256(vmStorage.load(address(market), bytes32(paramsSlot)));
        for (uint256 i; i < members.length; ++i) {
            uint8 roles = federation.rolesOf(members[i]);
            require(_rolesInMarket(members[i], accountsSlot) == roles, "the market's roles != the Federation's");
            (bool seated, uint8 seat) = market.seatOf(members[i]);
            bool operator = roles & OPERATOR != 0;
            if (operator) require(seated, "an operator without a seat");
            if (seated) require((params >> (160 + seat)) & 1 == (operator ? 1 : 0), "a seat's active bit is stale");
        }
        require(uint8(params >> 128) == federation.stage(), "the market's stage != the Federation's");
        require(uint16(params >> 136) == federation.platformFeeBps(), "the market's fee != the Federation's");
    }

    /// @notice Prints, per handler function, the calls that did not revert.
    function afterInvariant() public view {
        uint256 n = handler.callNameCount();
        for (uint256 i; i < n; ++i) {
            string memory name = handler.callNames(i);
            Console.log(string.concat("handler non-reverting calls: ", name), handler.okCalls(name));
        }
        Console.log("proposals made", federation.proposalCount());
    }

    // ------------------------------------------------------------------ internals

    function _everyone() private view returns (address[] memory all) {
        address[] memory members = handler.memberList();
        all = new address[](members.length + 1);
        for (uint256 i; i < members.length; ++i) {
            all[i] = members[i];
        }
        all[members.length] = SENTINEL;
    }

    function _count(uint256 mask) private pure returns (uint256 c) {
        for (; mask != 0; mask &= mask - 1) {
            ++c;
        }
    }

    function _rolesInMarket(address account, uint256 mappingSlot) private view returns (uint8) {
        bytes32 slot = keccak256(abi.encode(account, mappingSlot));
        return uint8(uint256(vmStorage.load(address(market), slot)) >> 224);
    }

    /// @dev The mapping slot under which both the founder's and the sentinel's words carry their roles.
    function _findAccountsSlot() private view returns (uint256) {
        uint8 founderRoles = federation.rolesOf(address(this));
        for (uint256 p; p < 256; ++p) {
            if (_rolesInMarket(address(this), p) == founderRoles && _rolesInMarket(SENTINEL, p) == CLOUD | BUYER) {
                return p;
            }
        }
        revert("the market's account mapping was not found: has Escrow.Account's layout changed?");
    }

    /// @dev The slot holding stage 1, the fee and the founder's seat (0) active.
    function _findParamsSlot() private view returns (uint256) {
        for (uint256 q; q < 256; ++q) {
            uint256 w = uint256(vmStorage.load(address(market), bytes32(q)));
            if (uint8(w >> 128) == 1 && uint16(w >> 136) == FEE_BPS && (w >> 160) & 1 == 1) return q;
        }
        revert("the market's parameter slot was not found: has Escrow's layout changed?");
    }
}
