"""Every error rpcgw reports to a JSON-RPC client, in one place.

Hierarchy::

    RpcgwError                      code      message (CALLR-style constant)
    ├── ParseError                  -32700    PARSE_ERROR
    ├── InvalidRequest              -32600    INVALID_REQUEST
    │   └── RequestTooLarge         -32600    REQUEST_TOO_LARGE      (HTTP 413)
    ├── MethodNotFound              -32601    METHOD_NOT_FOUND
    ├── InvalidParams               -32602    INVALID_PARAM / WRONG_PARAM_COUNT
    ├── InternalError               -32603    INTERNAL_ERROR         (data: incident id only)
    ├── ServiceUnavailable          -32000    SERVICE_UNAVAILABLE    (database down: nothing accepted)
    ├── AuthenticationFailed        101       AUTHENTICATION_FAILED  (HTTP 401)
    ├── AccountLocked               102       ACCOUNT_LOCKED         (HTTP 429, Retry-After)
    ├── PermissionDenied            103       PERMISSION_DENIED      (HTTP 403 for CALLR-Login-As)
    ├── NotFound                    110       NOT_FOUND
    ├── Conflict                    120       TYPE_ENDPOINT_DUPLICATE, ALREADY_EXISTS, ...
    ├── InvalidState                130       MESSAGE_NOT_CANCELLABLE, ...
    ├── RecipientOptedOut           131       RECIPIENT_OPTED_OUT
    └── Unavailable                 140       SIMULATOR_NOT_RUNNING, NO_DEVICE, ...

Protocol errors use the JSON-RPC 2.0 codes; application errors use small positive
integers, because CALLR's SDKs (PHP's ``\\Exception``, Java's ``getAsInt``) need an
integer and CALLR's own codes are small positive numbers.  ``message`` is always an
UPPER_SNAKE_CASE constant that clients can test for (the Python, Node, PHP, Ruby and Java
SDKs drop ``data``), and ``data`` carries the details (field, reason) for those that read
it.  ``docs/errors.md`` lists them; a test keeps the two in step.
"""

from __future__ import annotations

from typing import Any


class RpcgwError(Exception):
    """Base of every error that is turned into a JSON-RPC error object."""

    code: int = -32603
    message: str = "INTERNAL_ERROR"
    http_status: int = 200

    def __init__(self, reason: str = "", *, message: str | None = None, **data: Any) -> None:
        super().__init__(reason or (message or self.message))
        if message is not None:
            self.message = message
        self.data: dict[str, Any] = {k: v for k, v in data.items() if v is not None}
        if reason:
            self.data["reason"] = reason

    def to_error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data:
            error["data"] = self.data
        return error


class ParseError(RpcgwError):
    code, message = -32700, "PARSE_ERROR"


class InvalidRequest(RpcgwError):
    code, message = -32600, "INVALID_REQUEST"


class RequestTooLarge(InvalidRequest):
    message = "REQUEST_TOO_LARGE"
    http_status = 413


class MethodNotFound(RpcgwError):
    code, message = -32601, "METHOD_NOT_FOUND"


class InvalidParams(RpcgwError):
    """A parameter is missing, of the wrong type or has a value rpcgw cannot use.

    ``param`` names the positional parameter (as the contract names it) and ``field``
    the path inside it (``options.send_at``), so a client can point at the mistake.
    """

    code, message = -32602, "INVALID_PARAM"

    def __init__(self, reason: str, *, param: str | None = None, field: str | None = None,
                 message: str | None = None, **data: Any) -> None:
        super().__init__(reason, message=message, param=param, field=field, **data)


class InternalError(RpcgwError):
    code, message = -32603, "INTERNAL_ERROR"


class ServiceUnavailable(RpcgwError):
    code, message = -32000, "SERVICE_UNAVAILABLE"
    http_status = 503


class AuthenticationFailed(RpcgwError):
    code, message = 101, "AUTHENTICATION_FAILED"
    http_status = 401


class AccountLocked(RpcgwError):
    code, message = 102, "ACCOUNT_LOCKED"
    http_status = 429

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many failed logins; try again later",
                         retry_after=max(1, int(retry_after + 0.999)))
        self.retry_after = self.data["retry_after"]


class PermissionDenied(RpcgwError):
    code, message = 103, "PERMISSION_DENIED"


class NotFound(RpcgwError):
    code, message = 110, "NOT_FOUND"


class Conflict(RpcgwError):
    code, message = 120, "ALREADY_EXISTS"


class InvalidState(RpcgwError):
    code, message = 130, "INVALID_STATE"


class RecipientOptedOut(RpcgwError):
    code, message = 131, "RECIPIENT_OPTED_OUT"


class Unavailable(RpcgwError):
    code, message = 140, "UNAVAILABLE"


#: Every class above, for docs/errors.md and its test.
ALL_ERRORS: tuple[type[RpcgwError], ...] = (
    ParseError, InvalidRequest, RequestTooLarge, MethodNotFound, InvalidParams,
    InternalError, ServiceUnavailable, AuthenticationFailed, AccountLocked,
    PermissionDenied, NotFound, Conflict, InvalidState, RecipientOptedOut, Unavailable,
)
