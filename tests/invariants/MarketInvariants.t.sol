// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Console} from "./Vm.sol";
import {MarketSetup} from "./MarketSetup.sol";
import {Cast, MarketHandler} from "./MarketHandler.sol";
import {INodeRegistry} from "../../contracts/interfaces/INodeRegistry.sol";

/// @notice The market's invariants, checked after every call of Foundry's invariant runner (256 runs x 100
///  calls = 25,600 calls per invariant; foundry.toml). Each invariant function is a campaign of its own, so
///  related checks share one (5 campaigns here, the liveness one in LivenessInvariants.t.sol). The campaign starts in stage 1 and the handler
///  advances the stage, changes the fee and the tariffs, votes operators in and out, registers, updates,
///  pauses and retires nodes while deals are open, and sends a malicious matcher's bills.
contract MarketInvariants is MarketSetup {
    /// @dev Foundry's selector filter (forge-std's StdInvariant.FuzzSelector).
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    /// @dev Escrow's storage (forge inspect Market storageLayout): slot 0 packs platformFees 128 | stage 8 |
    ///  feeBps 16 | seated 8 | activeSeats 96; slot 1 the epoch; slot 5 the Account mapping (roles at bits
    ///  224-231 of a word); slot 11 the ARBITER list.
    uint256 internal constant PARAMS_SLOT = 0;
    uint256 internal constant EPOCH_SLOT = 1;
    uint256 internal constant ACCOUNTS_SLOT = 5;
    uint256 internal constant ARBITERS_SLOT = 11;

    MarketHandler internal handler;
    address[] internal seatsAtStart;

    function setUp() public {
        _deploy();
        handler = new MarketHandler(federation, registry, market, token, cast(), WINDOW, BOND_BPS);
        seatsAtStart = market.transitOperators();
        // The slots read below are the market's: a buyer's word holds its balance and its roles.
        uint256 word = _accountWord(buyers[0]);
        require(uint128(word) == market.balanceOf(buyers[0]) && uint8(word >> 224) == BUYER, "storage layout moved");
    }

    function cast() internal view returns (Cast memory c) {
        c.founder = address(this);
        c.buyers = buyers;
        c.buyerKeys = new uint256[](3);
        for (uint256 i; i < 3; ++i) c.buyerKeys[i] = buyerKeys[i];
        c.sellers = sellers;
        c.operators = operators;
        c.matchers = matchers;
        c.arbiters = arbiters;
        c.candidates = candidates;
        c.malicious = maliciousMatcher;
        c.nodes = nodes;
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @dev The liveness step (LivenessInvariants) jumps past far deadlines; here it would end most deals
    ///  before their lifecycle got deep, so this campaign leaves it out (`timeout` covers the exits here).
    function excludeSelectors() public view returns (FuzzSelector[] memory excluded) {
        excluded = new FuzzSelector[](1);
        excluded[0].addr = address(handler);
        excluded[0].selectors = new bytes4[](1);
        excluded[0].selectors[0] = MarketHandler.exitPastDeadline.selector;
    }

    /// @notice Solvency: the escrow's tokens equal every balance (transit credits included), unlocked stake
    ///  and unstaking amount, plus the open deals' bills and stake locks, the posted orders' locks, the
    ///  dispute bonds and the platform fees. And whatever ended a deal released exactly its bill, its stake
    ///  lock and its bond into those books, no more, no less.
    function invariant_escrowIsSolvent() public view {
        uint256 held = token.balanceOf(address(market));
        require(held == handler.heldForDealsAndOrders() + handler.owedOutsideDeals(), "escrow tokens != what it owes");
        require(handler.splitMismatches() == 0, "a deal's parts did not sum to what it released");
    }

    /// @notice Per recipient: after every call each tracked account's balance, unlocked stake and unstaking
    ///  amount, and the platform fees, moved by exactly the share the rules give it (nobody else moved).
    function invariant_eachPartyMovesByItsShare() public view {
        require(handler.partyMismatches() == 0, handler.firstPartyMismatch());
    }

    /// @notice The buyer never pays more than it signed: debited exactly the bill (at most maxTotal) at the
    ///  match, and after payout its net payment is at most maxTotal (plus a bond it posted and lost).
    function invariant_buyerNeverPaysMoreThanItSigned() public view {
        require(handler.buyerOverpaid() == 0, "a buyer paid more than it signed");
    }

    /// @notice Orders, bills and capacity are exact: a signed order is used at most once and a deal ends
    ///  once; no order matches outside its epoch, after its buyer cancelled it, or below its nonce floor;
    ///  every bill with a defect (an inactive or unknown seat, a repeated seat, a fee off its rule, the
    ///  node's operator off the path, another matcher's order) is refused with that defect's error; every
    ///  deal matched equals the deal packed from the same fields with abi.encodePacked; and each node's
    ///  reserved capacity is within its capacity and equals its open deals' demand.
    function invariant_ordersBillsAndCapacityAreExact() public view {
        require(handler.doubleMatches() == 0, "a signed order was matched twice");
        require(handler.doubleFinalizations() == 0, "a deal reached a final state twice");
        require(handler.staleOrdersMatched() == 0, "a stale or cancelled order matched");
        require(handler.maliciousAccepted() == 0, "a malicious bill was accepted");
        require(handler.maliciousWrongError() == 0, handler.firstWrongError());
        require(handler.dealCodecMismatches() == 0, "a Matched deal differs from its reference packing");
        uint256[] memory ids = handler.nodeList();
        for (uint256 i; i < ids.length; ++i) {
            (INodeRegistry.NodeSpec memory spec,,) = registry.getNode(ids[i]);
            (uint64 l, uint64 p, uint64 n) = registry.reservedOf(ids[i]);
            require(l <= spec.logicMcu && p <= spec.parallelMcu && n <= spec.neuralMcu, "reserved > capacity");
            uint256[3] memory g = handler.ghostReserved(ids[i]);
            require(l == g[0] && p == g[1] && n == g[2], "reserved != open deals' demand");
        }
    }

    /// @notice The market's mirror equals its sources: every account's roles the Federation's (rolesOf), its
    ///  stake requirement the registry's (requiredStake), the stage, fee and epoch the Federation's, each
    ///  seat active exactly while its holder holds OPERATOR, and the arbiter list the ARBITER members. A
    ///  transit operator keeps its seat for good, whatever its roles do; new operators get new seats.
    function invariant_marketMirrorsFederationAndRegistry() public view {
        address[] memory accounts = handler.actorList();
        uint256 arbiterCount;
        for (uint256 i; i < accounts.length; ++i) {
            uint8 roles = federation.rolesOf(accounts[i]);
            require(uint8(_accountWord(accounts[i]) >> 224) == roles, "market roles != federation roles");
            require(
                market.requiredStakeOf(accounts[i]) == registry.requiredStake(accounts[i]),
                "market stake requirement != registry's"
            );
            if (roles & ARBITER != 0) ++arbiterCount;
        }
        uint256 params = uint256(vm.load(address(market), bytes32(PARAMS_SLOT)));
        require(uint8(params >> 128) == federation.stage(), "market stage != federation stage");
        require(uint16(params >> 136) == federation.platformFeeBps(), "market fee != federation fee");
        require(uint32(uint256(vm.load(address(market), bytes32(EPOCH_SLOT)))) == federation.epoch(), "epoch");
        address[] memory seated = market.transitOperators();
        for (uint256 s; s < seated.length; ++s) {
            bool active = (params >> (160 + s)) & 1 == 1;
            require(active == federation.hasRole(seated[s], OPERATOR), "seat activity != OPERATOR role");
        }
        require(uint256(vm.load(address(market), bytes32(ARBITERS_SLOT))) == arbiterCount, "arbiter list size");
        require(seated.length >= seatsAtStart.length, "the seat table shrank");
        for (uint256 i; i < seatsAtStart.length; ++i) {
            require(seated[i] == seatsAtStart[i], "a seat changed hands");
        }
    }

    function _accountWord(address account) internal view returns (uint256) {
        return uint256(vm.load(address(market), keccak256(abi.encode(account, ACCOUNTS_SLOT))));
    }

    /// @notice Prints, per handler function, the calls that did not revert (this run).
    function afterInvariant() public view {
        uint256 n = handler.callNameCount();
        for (uint256 i; i < n; ++i) {
            string memory name = handler.callNames(i);
            Console.log(string.concat("handler non-reverting calls: ", name), handler.okCalls(name));
        }
    }
}
