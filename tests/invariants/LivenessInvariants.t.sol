// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CheatCodes} from "./Vm.sol";
import {MarketSetup} from "./MarketSetup.sol";
import {Cast, MarketHandler} from "./MarketHandler.sol";

/// @notice The liveness campaign's handler: `act` runs any step of the market campaign (MarketHandler) and
///  swallows its refusals, so the state wanders as in MarketInvariants; `exitPastDeadline` takes an open deal
///  or posted order past its deadline and calls its exit (timeout, settle, expireOrder) without catching
///  anything. The test runs with fail-on-revert, so an exit that reverts fails the campaign.
contract LivenessHandler is CheatCodes {
    MarketHandler public immutable inner;
    uint256 public exits;

    constructor(MarketHandler inner_) {
        inner = inner_;
    }

    /// @notice One step of the market campaign; a refused step changes nothing.
    function act(uint256 which, uint256 a, uint256 b, uint256 c) external {
        which %= 24;
        MarketHandler h = inner;
        if (which == 0) try h.matchSigned(a, b, c) {} catch {}
        else if (which == 1) try h.matchBatch(a, b) {} catch {}
        else if (which == 2) try h.accept(a) {} catch {}
        else if (which == 3) try h.start(a) {} catch {}
        else if (which == 4) try h.complete(a, uint32(b)) {} catch {}
        else if (which == 5) try h.dispute(a) {} catch {}
        else if (which == 6) try h.decline(a) {} catch {}
        else if (which == 7) try h.postOrder(a, b) {} catch {}
        else if (which == 8) try h.matchPosted(a, b, c) {} catch {}
        else if (which == 9) try h.reportSlaBreach(a, uint32(b)) {} catch {}
        else if (which == 10) try h.registerNode(a, b) {} catch {}
        else if (which == 11) try h.updateNode(a, b) {} catch {}
        else if (which == 12) try h.pauseNode(a) {} catch {}
        else if (which == 13) try h.retireNode(a) {} catch {}
        else if (which == 14) try h.advanceStage(a) {} catch {}
        else if (which == 15) try h.setPlatformFee(a) {} catch {}
        else if (which == 16) try h.setTariff(a) {} catch {}
        else if (which == 17) try h.toggleOperator(a) {} catch {}
        else if (which == 18) try h.proposeOperatorRemoval(a) {} catch {}
        else if (which == 19) try h.vote(a) {} catch {}
        else if (which == 20) try h.requestUnstake(a, b) {} catch {}
        else if (which == 21) try h.withdraw(a, b) {} catch {}
        else if (which == 22) try h.proposeOperator(a) {} catch {}
        else try h.warp(a) {} catch {}
    }

    /// @notice Past a deadline, the exit must succeed: reverts (failing the campaign) if it does not.
    function exitPastDeadline(uint256 seed) external {
        inner.exitPastDeadline(seed);
        ++exits;
    }
}

/// @notice Liveness: every open state has an exit. Past every deadline `timeout` (or `settle` for a completed
///  deal, `expireOrder` for a posted order) succeeds for anyone, whatever happened meanwhile: the node was
///  paused, updated or retired, the seller unstaked what it could, the stage, the fee and the tariffs
///  changed, the deal's transit operators lost OPERATOR or were voted out.
contract LivenessInvariants is MarketSetup {
    MarketHandler internal inner;
    LivenessHandler internal handler;

    function setUp() public {
        _deploy();
        Cast memory c;
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
        inner = new MarketHandler(federation, registry, market, token, c, WINDOW, BOND_BPS);
        handler = new LivenessHandler(inner);
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @notice Every exit taken past its deadline succeeded (fail-on-revert), and each paid every party its
    ///  exact share with the escrow solvent.
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_pastEveryDeadlineAnExitSucceeds() public view {
        require(inner.partyMismatches() == 0, inner.firstPartyMismatch());
        require(
            token.balanceOf(address(market)) == inner.heldForDealsAndOrders() + inner.owedOutsideDeals(),
            "escrow tokens != what it owes"
        );
    }
}
