"""Request and response shapes of the API, apart from the storage tables. Wei amounts are decimal strings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from suanwang.states import RoleName, role_names_of

Address = str
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
NodeStatusName = Literal["active", "paused", "retired"]


class RequestModel(BaseModel):
    """A request body: a field the API does not know is refused by name (a misspelt or camel-cased field
    must not be dropped silently)."""

    model_config = ConfigDict(extra="forbid")


class NodeOut(BaseModel):
    node_id: int
    owner: Address
    status: NodeStatusName
    logic_mcu: int
    parallel_mcu: int
    neural_mcu: int
    memory_mib: int
    gpu_model: int
    gpu_count: int
    tier: int = Field(description="0 small, 1 medium, 2 large, 3 super-large")
    price_per_cu_hour: str = Field(description="token base units per CU-hour, decimal string")
    operator: Address
    router: str = Field(description='keccak256("<operator>/<router label>")')
    locator: str = Field(description="SRv6 locator of the attachment router, 0x-hex bytes16 / prefix length")
    encryption_key: str | None = Field(
        None, description="X25519 public key buyers seal job specifications to (0x-hex bytes32; zeros: none)"
    )
    registered_block: int
    updated_block: int


class NodePage(BaseModel):
    total: int
    items: list[NodeOut]


class MemberOut(BaseModel):
    address: Address
    name: str
    roles: int = Field(description="role bits; `role_names` names them")
    role_names: list[RoleName]
    active: bool
    joined_block: int

    @classmethod
    def of(cls, member: Any) -> MemberOut:
        """The API's view of an indexed member row."""
        return cls(
            address=member.address,
            name=member.name,
            roles=member.roles,
            role_names=role_names_of(member.roles),
            active=member.active,
            joined_block=member.joined_block,
        )


class AccountOut(BaseModel):
    name: str
    address: Address
    roles: int = Field(description="role bits; `role_names` names them")
    role_names: list[RoleName]
    private_key: str | None = Field(None, description="only on the local development chain (chain id 31337)")


class ContractOut(BaseModel):
    address: Address
    abi: list[dict[str, object]]


class DeploymentOut(BaseModel):
    chain_id: int
    rpc_url: str
    deployed_block: int
    contracts: dict[str, ContractOut]
    accounts: list[AccountOut]


class HealthOut(BaseModel):
    status: Literal["ok", "degraded", "failed"]
    chain_id: int | None
    head_block: int | None
    indexed_block: int | None
    detail: str | None = None


class FieldErrorOut(BaseModel):
    field: str
    location: str | None = None
    message: str


class ErrorDetailOut(BaseModel):
    code: str
    message: str
    fields: list[FieldErrorOut]


class ErrorOut(BaseModel):
    """The one error shape of every 4xx and 5xx answer."""

    error: ErrorDetailOut


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "bad input: `fields` names what was wrong"),
        (404, "no such thing"),
        (405, "method not allowed here"),
        (409, "conflict (an Idempotency-Key reused for another request, or the request cannot be met)"),
        (413, "the body is larger than the service accepts"),
        (422, "validation failed: `fields` names each field"),
        (429, "too many requests: wait Retry-After seconds"),
    )
}
