"""Federation roles: bit flags, identical to contracts/interfaces/IFederation.sol."""

from __future__ import annotations

from enum import IntFlag


class Role(IntFlag):
    OPERATOR = 1
    CLOUD = 2
    PROVIDER = 4
    BUYER = 8
    MATCHER = 16
    ARBITER = 32


def role_names(roles: int) -> list[str]:
    return [str(role.name).lower() for role in Role if roles & role]
