"""Content by its CID: order specifications and job results, as the content store holds them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from suanwang.api.deps import RuntimeDep

router = APIRouter(prefix="/api/content", tags=["content"])


@router.get(
    "/{cid}",
    summary="The bytes stored under a CID (a job's result, an order's specification)",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the bytes, checked against the CID"},
        400: {"description": "not a CID this store serves (CIDv1, raw, sha2-256)"},
        404: {"description": "no content under this CID"},
    },
)
def get_content(
    cid: Annotated[str, Path(min_length=1, max_length=200, description="a CIDv1 (raw, sha2-256), any multibase")],
    runtime: RuntimeDep,
) -> Response:
    # The store re-hashes what it reads: damaged bytes are an error, never an answer.
    content = runtime.content().get(cid)
    return Response(content, media_type="application/octet-stream", headers={"Cache-Control": "immutable"})
