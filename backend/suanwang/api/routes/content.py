"""Content by its CID: order specifications and job results, sealed (docs/content.md, Privacy), served on
a signed request to the parties of the order or deal they belong to (`services.content_access`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path
from fastapi.responses import Response

from suanwang.api.deps import RuntimeDep, SessionDep
from suanwang.api.services.content_access import HOW_TO_SIGN, readable_content, signed_reader

router = APIRouter(prefix="/api/content", tags=["content"])


@router.get(
    "/{cid}",
    summary="The bytes stored under a CID (a job's sealed result, an order's sealed specification)",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the bytes, checked against the CID"},
        400: {"description": "not a CID this store serves (CIDv1, raw, sha2-256)"},
        401: {"description": f"not signed, or not signed by the address it names: {HOW_TO_SIGN}"},
        403: {"description": "signed by an account that is not a party of the order or deal it belongs to"},
        404: {"description": "no content under this CID"},
    },
)
def get_content(
    cid: Annotated[str, Path(min_length=1, max_length=200, description="a CIDv1 (raw, sha2-256), any multibase")],
    runtime: RuntimeDep,
    session: SessionDep,
    x_suanwang_address: Annotated[str | None, Header(description="the reader's address")] = None,
    x_suanwang_signed_at: Annotated[str | None, Header(description="unix seconds the request was signed at")] = None,
    x_suanwang_signature: Annotated[
        str | None, Header(description="EIP-191 signature of 'suanwang content <cid> <signedAt>'")
    ] = None,
) -> Response:
    reader = signed_reader(cid, x_suanwang_address, x_suanwang_signed_at, x_suanwang_signature)
    # The store re-hashes what it reads: damaged bytes are an error, never an answer.
    content = readable_content(session, runtime.content(), cid, reader)
    return Response(content, media_type="application/octet-stream", headers={"Cache-Control": "private, immutable"})
