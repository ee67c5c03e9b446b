"""What every HTTP route shares: the node, the caller, and errors as ``{"error": {...}}``."""

from __future__ import annotations

import logging
import math
import time
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from livespace.auth import AuthError, Principal
from livespace.codes import HTTP_STATUS, Error, Problem
from livespace.jsoncodec import loads
from livespace.node import Node
from livespace.outage import is_outage, unavailable
from livespace.service import Membership

audit = logging.getLogger("livespace.audit")

def node_of(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


async def caller(request: Request) -> Principal:
    """The bearer token's user; 401 without a valid one; 429 past the per-user HTTP limit."""
    node = node_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(Error.UNAUTHORIZED, "missing bearer token")
    try:
        principal = await node.verifier.verify(token.strip())
    except AuthError as err:
        raise Problem(Error.UNAUTHORIZED, f"invalid token: {err}") from None
    wait = await node.limits.take("http", principal.user_id, time.monotonic())
    if wait:
        audit.info("http rate limited user=%s %s %s", principal.user_id, request.method,
                   request.url.path)
        raise Problem(Error.RATE_LIMITED, "too many requests", retry_after=round(wait, 3))
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        audit.info("http user=%s %s %s", principal.user_id, request.method, request.url.path)
    return principal


Caller = Annotated[Principal, Depends(caller)]
MAX_BODY = 256 * 1024


#: A bulk import's body (1,000 contacts with custom fields) may be larger.
MAX_IMPORT_BODY = 8 * 1024 * 1024


async def read_json(request: Request, limit: int) -> Any:
    """The request's JSON body, whatever its Content-Type; 413 past ``limit`` bytes, 400
    if not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(Error.TOO_LARGE, f"request body over {limit} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise Problem(Error.TOO_LARGE, f"request body over {limit} bytes")
    if not raw.strip():
        raise Problem(Error.INVALID_JSON, "a JSON body is required")
    return loads(bytes(raw))


async def json_body(request: Request) -> Any:
    """The request's JSON body; 413 past 256 KiB."""
    return await read_json(request, MAX_BODY)


async def import_body(request: Request) -> Any:
    """A bulk import's JSON body; 413 past 8 MiB."""
    return await read_json(request, MAX_IMPORT_BODY)


NodeDep = Annotated[Node, Depends(node_of)]
JsonBody = Annotated[Any, Depends(json_body)]
ImportBody = Annotated[Any, Depends(import_body)]


def member(at_least: str = "viewer") -> Any:
    """The dependency "a member of the path's workspace with at least this role": the
    caller's :class:`~livespace.service.Membership` (403 for anyone else, unknown
    workspaces included), through which the route reads and writes."""

    async def membership(workspace_id: str, node: NodeDep, me: Caller) -> Membership:
        return await node.service.member(workspace_id, me, at_least)

    return Depends(membership)


#: Any member (viewers too): reads.
MemberOf = Annotated[Membership, member()]
#: Members and above: changes to contacts and notes.
WriterOf = Annotated[Membership, member("member")]


def error_body(code: Error | str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": str(code), "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def problem_response(problem: Problem) -> JSONResponse:
    headers = {}
    if problem.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(problem.retry_after)))
    body = error_body(problem.code, problem.message, problem.details)
    if problem.retry_after is not None:
        body["error"]["retry_after"] = problem.retry_after
    return JSONResponse(body, status_code=HTTP_STATUS[problem.code], headers=headers)


_STATUS_CODES = {400: Error.INVALID_MESSAGE, 401: Error.UNAUTHORIZED, 403: Error.FORBIDDEN,
                 404: Error.NOT_FOUND, 405: Error.INVALID_MESSAGE, 409: Error.CONFLICT,
                 413: Error.TOO_LARGE, 422: Error.VALIDATION_FAILED, 429: Error.RATE_LIMITED}


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        first = errors[0] if errors else {}
        field = ".".join(str(x) for x in first.get("loc", ()) if x != "body") or "body"
        reason = str(first.get("msg", "invalid"))
        bad_json = first.get("type") == "json_invalid"
        code = Error.INVALID_JSON if bad_json else Error.VALIDATION_FAILED
        status = 400 if bad_json else 422
        return JSONResponse(
            error_body(code, f"{field}: {reason}", {"field": field, "reason": reason}),
            status_code=status,
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(exc.status_code, Error.INTERNAL)
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        if is_outage(exc):  # 503 with Retry-After: nothing applied, retry the same key
            return problem_response(unavailable())
        return JSONResponse(error_body(Error.INTERNAL, "internal error"), status_code=500)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
