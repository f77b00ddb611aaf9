// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CheatCodes} from "./Vm.sol";
import {Federation} from "../../contracts/Federation.sol";
import {NodeRegistry} from "../../contracts/NodeRegistry.sol";
import {Market} from "../../contracts/Market.sol";
import {MarketBase} from "../../contracts/MarketBase.sol";
import {SettlementToken} from "../../contracts/SettlementToken.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {INodeRegistry} from "../../contracts/interfaces/INodeRegistry.sol";

/// @notice The deployment every Foundry suite of the market starts from, in stage 1: the founder (the test
///  contract: governance, the permanent operator in seat 0, the fee recipient and the token's minter), two
///  internal transit operators, each with a published tariff, two clouds with three nodes and a stake, three
///  buyers with deposits, two honest matchers, a malicious matcher, two arbiters, and two accounts that
///  stage-3 votes may make operators.
abstract contract MarketSetup is CheatCodes {
    uint8 internal constant OPERATOR = 1;
    uint8 internal constant CLOUD = 2;
    uint8 internal constant BUYER = 8;
    uint8 internal constant MATCHER = 16;
    uint8 internal constant ARBITER = 32;

    /// @dev The windows are short (10 minutes) so a campaign crosses many deadlines; the bond is 5%.
    uint32 internal constant WINDOW = 600;
    uint16 internal constant BOND_BPS = 500;

    Federation internal federation;
    NodeRegistry internal registry;
    Market internal market;
    SettlementToken internal token;

    uint256[3] internal buyerKeys = [uint256(0xB0B1), 0xB0B2, 0xB0B3];
    address[] internal buyers;
    address[] internal sellers;
    address[] internal operators;
    address[] internal matchers;
    address[] internal arbiters;
    address[] internal candidates;
    address internal maliciousMatcher;
    uint256[] internal nodes;

    function _deploy() internal {
        federation = new Federation("founder", 250);
        uint256[4] memory minStake = [uint256(10e18), 20e18, 40e18, 80e18];
        registry = new NodeRegistry(federation, minStake);
        token = new SettlementToken("Test", "TST");
        market = new Market(
            federation,
            registry,
            IERC20(address(token)),
            MarketBase.Terms(WINDOW, WINDOW, WINDOW, WINDOW, WINDOW, WINDOW, BOND_BPS)
        );
        registry.setMarket(market);
        federation.setMarket(market);

        for (uint256 i; i < 2; ++i) {
            sellers.push(address(uint160(0x5E110 + i)));
            operators.push(address(uint160(0x0BE70 + i)));
            matchers.push(address(uint160(0x3A7C0 + i)));
            arbiters.push(address(uint160(0xA4B10 + i)));
            candidates.push(address(uint160(0xCA0D0 + i)));
            federation.admit(sellers[i], CLOUD, "seller");
            federation.admit(operators[i], OPERATOR, "operator");
            federation.admit(matchers[i], MATCHER, "matcher");
            federation.admit(arbiters[i], ARBITER, "arbiter");
        }
        maliciousMatcher = address(uint160(0xBAD00));
        federation.admit(maliciousMatcher, MATCHER, "malicious matcher");
        // Odd tariffs per Gbps-hour, so transit fees round.
        market.setTransitTariff(1e18 + 1);
        vm.prank(operators[0]);
        market.setTransitTariff(2e18 + 3);
        vm.prank(operators[1]);
        market.setTransitTariff(5e17 + 7);

        address[3] memory nodeOperators = [address(this), operators[0], operators[1]];
        for (uint256 i; i < 3; ++i) {
            vm.prank(sellers[i % 2]);
            nodes.push(registry.registerNode(nodeSpec(uint8(i), uint128(1e18 + 7 * i + 1), nodeOperators[i], 50_000)));
        }
        for (uint256 i; i < 3; ++i) {
            address b = vm.addr(buyerKeys[i]);
            buyers.push(b);
            federation.admit(b, BUYER, "buyer");
            token.mint(b, 10_000e18);
            vm.startPrank(b);
            token.approve(address(market), type(uint256).max);
            market.deposit(5_000e18);
            vm.stopPrank();
        }
        for (uint256 i; i < 2; ++i) {
            token.mint(sellers[i], 3_000e18);
            vm.startPrank(sellers[i]);
            token.approve(address(market), type(uint256).max);
            market.deposit(3_000e18);
            market.stake(2_000e18);
            vm.stopPrank();
        }
    }

    /// @notice A node spec with `mcu` of each class, no GPU, 1 GiB.
    function nodeSpec(uint8 tier, uint128 price, address operator, uint64 mcu)
        public
        pure
        returns (INodeRegistry.NodeSpec memory)
    {
        return INodeRegistry.NodeSpec({
            logicMcu: mcu,
            parallelMcu: mcu,
            neuralMcu: mcu,
            memoryMib: 1024,
            gpuModel: 0,
            gpuCount: 0,
            tier: tier,
            pricePerCuHour: price,
            operator: operator,
            router: keccak256(abi.encode(operator, tier)),
            locator: bytes16(uint128(0x20010db8) << 96),
            locatorLength: 48,
            encryptionKey: keccak256(abi.encode(price))
        });
    }

    /// @dev SettlementToken mints only from its deployer (this contract); the handlers mint through here.
    function mintFor(address to, uint256 amount) external {
        token.mint(to, amount);
    }
}
