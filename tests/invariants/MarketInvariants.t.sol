// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CheatCodes, Console} from "./Vm.sol";
import {MarketHandler} from "./MarketHandler.sol";
import {Federation} from "../../contracts/Federation.sol";
import {NodeRegistry} from "../../contracts/NodeRegistry.sol";
import {Market} from "../../contracts/Market.sol";
import {SettlementToken} from "../../contracts/SettlementToken.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {INodeRegistry} from "../../contracts/interfaces/INodeRegistry.sol";

/// @notice The market's invariants, checked after every call of Foundry's invariant runner
///  (256 runs x 100 calls = 25,600 calls per invariant; foundry.toml).
contract MarketInvariants is CheatCodes {
    Federation internal federation;
    NodeRegistry internal registry;
    Market internal market;
    SettlementToken internal token;
    MarketHandler internal handler;
    address[] internal seatsAtStart;

    uint8 internal constant OPERATOR = 1;
    uint8 internal constant CLOUD = 2;
    uint8 internal constant BUYER = 8;
    uint8 internal constant MATCHER = 16;
    uint8 internal constant ARBITER = 32;

    function setUp() public {
        federation = new Federation("founder", 250);
        federation.setRoles(address(this), OPERATOR | ARBITER);
        uint256[4] memory minStake = [uint256(10e18), 20e18, 40e18, 80e18];
        registry = new NodeRegistry(federation, minStake);
        token = new SettlementToken("Test", "TST");
        market = new Market(federation, registry, IERC20(address(token)), Market.Timing(600, 600, 600, 600, 600));
        registry.setMarket(market);
        federation.setMarket(market);

        address[] memory sellers = new address[](2);
        address[] memory operators = new address[](2);
        address[] memory matchers = new address[](2);
        for (uint256 i; i < 2; ++i) {
            sellers[i] = address(uint160(0x5E110 + i));
            operators[i] = address(uint160(0x0BE70 + i));
            matchers[i] = address(uint160(0x3A7C0 + i));
            federation.admit(sellers[i], CLOUD, "seller");
            federation.admit(operators[i], OPERATOR, "operator");
            federation.admit(matchers[i], MATCHER, "matcher");
        }
        uint256[] memory nodes = new uint256[](3);
        for (uint256 i; i < 3; ++i) {
            INodeRegistry.NodeSpec memory spec = INodeRegistry.NodeSpec({
                logicMcu: 5000,
                parallelMcu: 5000,
                neuralMcu: 5000,
                memoryMib: 1024,
                gpuModel: 0,
                gpuCount: 0,
                tier: uint8(i),
                pricePerCuHour: uint128(1e18 + 7 * i + 1), // odd prices: fees with remainders
                operator: address(this),
                router: bytes32(0),
                locator: bytes16(0),
                locatorLength: 48
            });
            vm.prank(sellers[i % 2]);
            nodes[i] = registry.registerNode(spec);
        }
        handler = new MarketHandler(federation, registry, market, token, sellers, operators, matchers, address(this), nodes);
        // Buyers are internal teams admitted in stage 1; then value starts moving in stage 2.
        address[] memory buyers = handler.buyerList();
        for (uint256 i; i < buyers.length; ++i) {
            federation.admit(buyers[i], BUYER, "buyer");
            token.mint(buyers[i], 500e18);
            vm.startPrank(buyers[i]);
            token.approve(address(market), 500e18);
            market.deposit(500e18);
            vm.stopPrank();
        }
        for (uint256 i; i < 2; ++i) {
            token.mint(sellers[i], 100e18);
            vm.startPrank(sellers[i]);
            token.approve(address(market), 100e18);
            market.deposit(100e18);
            market.stake(100e18);
            vm.stopPrank();
        }
        federation.advanceStage(2);
        seatsAtStart = market.transitOperators();
    }

    /// @dev SettlementToken mints only from its deployer (this contract); the handler mints through here.
    function mintFor(address to, uint256 amount) external {
        token.mint(to, amount);
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @notice The escrow's token balance equals what is locked plus credits (and stakes) plus fees.
    function invariant_escrowBalanceIsLockedPlusCreditsPlusFees() public view {
        uint256 held = token.balanceOf(address(market));
        uint256 owed = handler.lockedTotal() + handler.owedOutsideLocks();
        require(held == owed, "escrow balance != locked + credits + stakes + fees");
    }

    /// @notice No order settles (or is refunded) twice.
    function invariant_noOrderSettlesTwice() public view {
        require(handler.doubleFinalizations() == 0, "a deal reached a final state twice");
    }

    /// @notice Every split sums exactly to its amount.
    function invariant_everySplitSumsToItsAmount() public view {
        require(handler.splitMismatches() == 0, "a settlement's parts did not sum to its amount");
    }

    /// @notice Reserved capacity never exceeds a node's capacity nor goes negative (it equals the sum of
    ///  the open deals that hold it).
    function invariant_reservedCapacityWithinBounds() public view {
        uint256[] memory nodes = handler.nodeList();
        for (uint256 i; i < nodes.length; ++i) {
            (INodeRegistry.NodeSpec memory spec,,) = registry.getNode(nodes[i]);
            (uint64 l, uint64 p, uint64 n) = registry.reservedOf(nodes[i]);
            require(l <= spec.logicMcu && p <= spec.parallelMcu && n <= spec.neuralMcu, "reserved > capacity");
            uint256[3] memory g = handler.ghostReserved(nodes[i]);
            require(l == g[0] && p == g[1] && n == g[2], "reserved != open deals' demand");
        }
    }

    /// @notice A signed order is used at most once.
    function invariant_signedOrderUsedAtMostOnce() public view {
        require(handler.doubleMatches() == 0, "a signed order was matched twice");
    }

    /// @notice A transit operator keeps its seat for good, whatever its roles do (toggleOperator).
    function invariant_operatorSeatsAreKept() public view {
        address[] memory seated = market.transitOperators();
        require(seated.length == seatsAtStart.length, "the seat table changed size");
        for (uint256 i; i < seated.length; ++i) {
            require(seated[i] == seatsAtStart[i], "a seat changed hands");
        }
    }

    /// @notice Prints, per handler function, the calls that did not revert.
    function afterInvariant() public view {
        uint256 n = handler.callNameCount();
        for (uint256 i; i < n; ++i) {
            string memory name = handler.callNames(i);
            Console.log(string.concat("handler non-reverting calls: ", name), handler.okCalls(name));
        }
    }
}
