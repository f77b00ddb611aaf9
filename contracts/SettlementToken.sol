// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title SettlementToken
/// @notice The test settlement token for local deployments: 18 decimals, ERC-2612 permit, minted by
///  the deployer. A real deployment points the market at an existing ERC-20 (e.g. a stablecoin).
contract SettlementToken is ERC20, ERC20Permit {
    /// @notice Only the deployer mints; `caller` is not it.
    error NotMinter(address caller);

    address public immutable minter;

    constructor(string memory name_, string memory symbol_) ERC20(name_, symbol_) ERC20Permit(name_) {
        minter = msg.sender;
    }

    /// @notice Mints `amount` to `to`. Deployer only.
    function mint(address to, uint256 amount) external {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        _mint(to, amount);
    }
}
