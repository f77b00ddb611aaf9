"""The deployment (contracts, ABIs, demo accounts), the members, and the service's health."""

from __future__ import annotations

from fastapi import APIRouter

from suanwang.api.deps import RuntimeDep, SessionDep
from suanwang.api.schemas import AccountOut, ContractOut, DeploymentOut, HealthOut, MemberOut
from suanwang.chain.deployment import load_abi
from suanwang.storage.read_models import ReadModels
from suanwang.storage.repositories import Repositories

router = APIRouter(tags=["federation"])


@router.get("/api/deployment", response_model=DeploymentOut, summary="Contracts, ABIs and demo accounts")
def deployment(runtime: RuntimeDep) -> DeploymentOut:
    d = runtime.load_deployment()
    build_dir = runtime.settings.build_dir
    return DeploymentOut(
        chain_id=d.chain_id,
        rpc_url=runtime.settings.rpc_url,
        deployed_block=d.deployed_block,
        contracts={
            name: ContractOut(address=address, abi=load_abi(build_dir, name))
            for name, address in d.contracts.items()
            if (build_dir / f"{name}.json").exists()
        },
        accounts=[AccountOut(**a) for a in d.public_accounts()],
    )


@router.get("/api/members", response_model=list[MemberOut], summary="Federation members")
def members(session: SessionDep) -> list[MemberOut]:
    return [MemberOut.of(m) for m in ReadModels(session).members.in_joining_order()]


@router.get("/health", response_model=HealthOut, summary="Is the service following the chain?")
def health(runtime: RuntimeDep, session: SessionDep) -> HealthOut:
    indexed_block = Repositories(session).indexed_block()
    thread = runtime.indexer_thread
    try:
        chain_id, head = int(runtime.probe.eth.chain_id), int(runtime.probe.eth.block_number)
    except Exception as exc:
        return HealthOut(
            status="degraded",
            chain_id=None,
            head_block=None,
            indexed_block=indexed_block,
            detail=f"chain unreachable: {exc}",
        )
    if thread is not None and thread.fatal_error:
        return HealthOut(
            status="failed", chain_id=chain_id, head_block=head, indexed_block=None, detail=thread.fatal_error
        )
    detail = runtime.startup_error or (thread.last_error if thread else None)
    return HealthOut(
        status="ok" if thread is not None and detail is None else "degraded",
        chain_id=chain_id,
        head_block=head,
        indexed_block=indexed_block,
        detail=detail,
    )
