// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Member role bit flags (IFederation); one account may hold several.
library Roles {
    uint8 internal constant OPERATOR = 1;
    uint8 internal constant CLOUD = 2;
    uint8 internal constant PROVIDER = 4;
    uint8 internal constant BUYER = 8;
    uint8 internal constant MATCHER = 16;
    uint8 internal constant ARBITER = 32;
    uint8 internal constant ALL = 63;
}
