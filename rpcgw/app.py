"""The HTTP side: one aiohttp application with the JSON-RPC endpoint.

``POST /json-rpc/v1.1/`` is CALLR's path; ``/json-rpc/v1.1`` and ``/`` are served too,
without a redirect, because older SDKs post to the root and a redirected POST is not
re-sent.  The body is parsed as JSON whatever its Content-Type (CALLR's Ruby SDK sends a
form type).  Authentication failures are HTTP-level (401/429, with a JSON-RPC error body),
as CALLR's SDKs expect; everything else is HTTP 200 with a JSON-RPC error object.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import errors
from .rpc import dumps, error_object, loads

if TYPE_CHECKING:
    from .config import Settings
    from .gateway import Gateway

log = logging.getLogger("rpcgw.http")

CONTENT_TYPE = "application/json-rpc; charset=utf-8"
ENDPOINTS = ("/json-rpc/v1.1/", "/json-rpc/v1.1", "/")
GATEWAY: web.AppKey["Gateway"] = web.AppKey("gateway")


_HEADERS = {"Content-Type": CONTENT_TYPE}


def _reply(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status,
                        headers={**headers, **_HEADERS} if headers else _HEADERS)


def _guess_id(body: bytes) -> Any:
    """The request id for an error answered before dispatch, when the body shows one."""
    try:
        payload = loads(body)
    except ValueError:
        return None
    if isinstance(payload, dict):
        rid = payload.get("id")
        if isinstance(rid, (str, int, float)) and not isinstance(rid, bool):
            return rid
    return None


def _error_reply(exc: errors.RpcgwError, body: bytes = b"") -> web.Response:
    headers = {}
    if isinstance(exc, errors.AuthenticationFailed):
        headers["WWW-Authenticate"] = 'Basic realm="rpcgw", charset="UTF-8"'
    if isinstance(exc, errors.AccountLocked):
        headers["Retry-After"] = str(exc.retry_after)
    status = exc.http_status
    if isinstance(exc, errors.PermissionDenied):
        status = 403  # only CALLR-Login-As fails before dispatch with this error
    return _reply(dumps(error_object(exc, _guess_id(body))), status, headers)


async def handle_rpc(request: web.Request) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    limit = gw.settings.max_request_bytes
    if request.content_length is not None and request.content_length > limit:
        return _error_reply(errors.RequestTooLarge(
            f"the body is {request.content_length} bytes; the limit is {limit}"))
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error_reply(errors.RequestTooLarge(f"the body exceeds {limit} bytes"))
    headers = request.headers
    try:
        principal = await gw.auth.authenticate(headers.get("Authorization"),
                                               headers.get("CALLR-Login-As"))
        answer = await gw.dispatcher.dispatch(body, principal)
    except errors.RpcgwError as exc:
        return _error_reply(exc, body)
    if answer is None:  # notifications only: nothing to say
        return web.Response(status=204)
    return _reply(answer)


async def handle_info(request: web.Request) -> web.Response:
    from . import __version__
    return web.json_response({"name": "rpcgw", "version": __version__,
                              "endpoint": "POST /json-rpc/v1.1/",
                              "contract": "rpc.discover"})


def create_app(settings: "Settings", gateway: "Gateway | None" = None) -> web.Application:
    from .gateway import Gateway

    app = web.Application(client_max_size=settings.max_request_bytes)
    app[GATEWAY] = gateway or Gateway(settings)
    for path in ENDPOINTS:
        app.router.add_post(path, handle_rpc)
    app.router.add_get("/json-rpc/v1.1/", handle_info)

    async def lifecycle(app: web.Application):  # type: ignore[no-untyped-def]
        await app[GATEWAY].start()
        yield
        await app[GATEWAY].stop()

    app.cleanup_ctx.append(lifecycle)
    return app
