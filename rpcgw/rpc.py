"""JSON-RPC 2.0 dispatch: envelope checks, the method registry, contract validation.

A request goes through these steps::

    body ─▶ parse (orjson) ─▶ envelope check ─▶ jsonrpcserver.dispatch_request
                                                   │
                     method wrapper ◀──────────────┘
                        ├─ bind + validate params against schema/openrpc.json
                        ├─ admin check
                        └─ handler(ctx, *params)  ─▶ service layer

jsonrpcserver calls the method; everything around it is ours because CALLR's
SDKs need more than the library gives by default: CALLR-style upper-case messages with
details in ``data``, no internals leaked in errors, ``result`` never null, the ``id``
echoed with its JSON type, and parameter errors that name the parameter and the rule.
jsonrpcserver's own JSON-Schema check of the envelope is replaced by a hand-written one
(it costs as much as a database commit per call, perf-peers.md §3), and its per-call
``inspect.signature().bind`` is skipped: the contract binder does that job, better.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import fastjsonschema
import orjson
from jsonrpcserver.async_dispatcher import call as jsonrpc_call
from jsonrpcserver.request import Request
from jsonrpcserver.result import ErrorResult, SuccessResult
from jsonrpcserver.sentinels import NODATA, NOID
from oslash.either import Left, Right

from . import errors

if TYPE_CHECKING:
    from .auth import Principal
    from .gateway import Gateway

log = logging.getLogger("rpcgw.rpc")

CONTRACT_PATHS = (
    Path(__file__).resolve().parent.parent / "schema" / "openrpc.json",
    Path(__file__).resolve().parent / "openrpc.json",
)

Handler = Callable[..., Awaitable[Any]]

#: Standard messages for errors jsonrpcserver itself produces.
_STANDARD_MESSAGES = {-32700: "PARSE_ERROR", -32600: "INVALID_REQUEST",
                      -32601: "METHOD_NOT_FOUND", -32602: "INVALID_PARAM",
                      -32603: "INTERNAL_ERROR"}


def load_contract() -> dict[str, Any]:
    for path in CONTRACT_PATHS:
        if path.exists():
            contract: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return contract
    raise FileNotFoundError("schema/openrpc.json not found")


@dataclass(slots=True)
class Context:
    """What a handler gets besides its parameters."""

    gw: "Gateway"
    principal: "Principal"
    #: Per HTTP request scratch space (e.g. the session token used).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    handler: Handler
    admin: bool


class Registry:
    """Every JSON-RPC method, declared once with ``@registry.method("sms.send")``."""

    def __init__(self) -> None:
        self.specs: dict[str, MethodSpec] = {}

    def method(self, name: str, *, admin: bool = False) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            if name in self.specs:
                raise ValueError(f"method {name} registered twice")
            self.specs[name] = MethodSpec(name, handler, admin)
            return handler
        return decorator


registry = Registry()


# -- parameters -----------------------------------------------------------------------

@dataclass(frozen=True)
class _Param:
    name: str
    required: bool
    check: Callable[[Any], Any]


class ParamBinder:
    """Binds positional (or named) params to a method's contract and validates them."""

    def __init__(self, method: str, params: list[_Param]) -> None:
        self.method = method
        self.params = params
        self.names = [p.name for p in params]
        self.required = sum(1 for p in params if p.required)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        params = self.params
        if kwargs:
            unknown = sorted(set(kwargs) - set(self.names))
            if unknown:
                raise errors.InvalidParams(
                    f"{self.method} has no parameter {unknown[0]!r}; its parameters are "
                    f"{self.names}", message="WRONG_PARAM_COUNT", param=unknown[0])
            values = [kwargs.get(p.name, _MISSING) for p in params]
        else:
            if len(args) > len(params):
                raise errors.InvalidParams(
                    f"{self.method} takes at most {len(params)} parameters "
                    f"{self.names}, got {len(args)}", message="WRONG_PARAM_COUNT")
            values = list(args) + [_MISSING] * (len(params) - len(args))
        for i, (p, value) in enumerate(zip(params, values)):
            if value is _MISSING:
                if p.required:
                    raise errors.InvalidParams(
                        f"missing required parameter {p.name!r} (position {i + 1}); "
                        f"{self.method} takes {self.names}", message="WRONG_PARAM_COUNT",
                        param=p.name)
                values[i] = None
                continue
            try:
                p.check(value)
            except fastjsonschema.JsonSchemaValueException as exc:
                path = exc.name.split(".", 1)
                where = p.name + ("." + path[1] if len(path) > 1 else "")
                reason = exc.message.replace(exc.name, where, 1)
                raise errors.InvalidParams(reason, param=p.name, field=where,
                                           rule=exc.rule) from None
        return values


_MISSING = object()


class ComponentValidator:
    """Validates a value against one of the contract's component schemas, for handlers
    that check parts of a parameter one by one (the items of sms.send_batch)."""

    def __init__(self, contract: dict[str, Any], name: str) -> None:
        self._check = fastjsonschema.compile(
            {"allOf": [{"$ref": f"#/components/schemas/{name}"}],
             "components": contract.get("components", {})})

    def __call__(self, value: Any, *, param: str, field: str) -> None:
        try:
            self._check(value)
        except fastjsonschema.JsonSchemaValueException as exc:
            path = exc.name.split(".", 1)
            where = field + ("." + path[1] if len(path) > 1 else "")
            raise errors.InvalidParams(exc.message.replace(exc.name, where, 1), param=param,
                                       field=where, rule=exc.rule) from None


def compile_binders(contract: dict[str, Any]) -> dict[str, ParamBinder]:
    components = contract.get("components", {})
    binders = {}
    for method in contract["methods"]:
        params = []
        for p in method.get("params", []):
            schema = {"allOf": [p.get("schema", {})], "components": components}
            params.append(_Param(p["name"], bool(p.get("required", False)),
                                 fastjsonschema.compile(schema)))
        binders[method["name"]] = ParamBinder(method["name"], params)
    return binders


# -- dispatch -------------------------------------------------------------------------

def _error_result(exc: errors.RpcgwError) -> Any:
    return Left(ErrorResult(exc.code, exc.message, exc.data or NODATA))


def make_wrapper(spec: MethodSpec, binder: ParamBinder) -> Callable[..., Any]:
    handler, bind, admin = spec.handler, binder.bind, spec.admin

    async def wrapper(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        try:
            values = bind(args, kwargs)
            if admin and not ctx.principal.is_admin:
                raise errors.PermissionDenied(f"{spec.name} is for administrators")
            result = await handler(ctx, *values)
        except errors.RpcgwError as exc:
            return _error_result(exc)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - never leak internals to the client
            incident = secrets.token_hex(4)
            log.exception("incident %s in %s", incident, spec.name)
            return _error_result(errors.InternalError(
                "unexpected server error; quote the incident id to the operator",
                incident=incident))
        # CALLR's Ruby SDK refuses "result": null; a method with nothing to say says true.
        return Right(SuccessResult(True if result is None else result))

    return wrapper


class Dispatcher:
    def __init__(self, gw: "Gateway", *, max_batch: int) -> None:
        self.gw = gw
        self.max_batch = max_batch
        self.contract = load_contract()
        binders = compile_binders(self.contract)
        self.methods: dict[str, Callable[..., Any]] = {}
        for name, spec in registry.specs.items():
            if name not in binders:
                raise RuntimeError(f"method {name} is not in schema/openrpc.json")
            self.methods[name] = make_wrapper(spec, binders[name])
        self.batch_item = ComponentValidator(self.contract, "BatchItem")

    async def dispatch(self, body: bytes, principal: "Principal") -> bytes | None:
        """Answer a request body; None when nothing is to be answered (notifications)."""
        try:
            payload = loads(body)
        except ValueError as exc:
            return dumps(error_object(errors.ParseError(f"the body is not valid JSON: {exc}"),
                                      None))
        ctx = Context(self.gw, principal)
        if isinstance(payload, list):
            if not payload:
                return dumps(error_object(errors.InvalidRequest("empty batch"), None))
            if len(payload) > self.max_batch:
                return dumps(error_object(errors.InvalidRequest(
                    f"a batch may hold at most {self.max_batch} calls, this one has "
                    f"{len(payload)}", message="BATCH_TOO_LARGE"), None))
            answers = await asyncio.gather(*(self._one(ctx, item) for item in payload))
            replies = [a for a in answers if a is not None]
            return dumps(replies) if replies else None
        answer = await self._one(ctx, payload)
        return None if answer is None else dumps(answer)

    async def _one(self, ctx: Context, item: Any) -> dict[str, Any] | None:
        problem = check_envelope(item)
        if problem is not None:
            request_id = item.get("id") if isinstance(item, dict) else None
            if not isinstance(request_id, (str, int, float)) or isinstance(request_id, bool):
                request_id = None
            return error_object(problem, request_id)
        request = Request(item["method"], item.get("params", []), item.get("id", NOID))
        method = self.methods.get(request.method)
        if method is None:
            result = Left(ErrorResult(-32601, "METHOD_NOT_FOUND", NODATA))
        else:
            # jsonrpcserver's call(): passes the context, calls, turns exceptions into
            # error results.  Its dispatch_request() would also bind the params to the
            # Python signature; the contract check in the wrapper replaces that.
            result = await jsonrpc_call(request, ctx, method)
        if request.id is NOID:
            return None
        if isinstance(result, Left):
            err = result._error
            message = err.message
            data = err.data
            if err.code == -32601:
                message = "METHOD_NOT_FOUND"
                data = {"method": request.method,
                        "reason": f"no method {request.method!r}; rpc.discover lists them"}
            elif not message.isupper():
                message = _STANDARD_MESSAGES.get(err.code, "INTERNAL_ERROR")
            error: dict[str, Any] = {"code": err.code, "message": message}
            if data is not NODATA and data is not None:
                error["data"] = data
            return {"jsonrpc": "2.0", "id": request.id, "error": error}
        return {"jsonrpc": "2.0", "id": request.id, "result": result._value.result}


def check_envelope(item: Any) -> errors.RpcgwError | None:
    if not isinstance(item, dict):
        return errors.InvalidRequest("a request must be a JSON object")
    if item.get("jsonrpc") != "2.0":
        return errors.InvalidRequest('"jsonrpc" must be exactly "2.0"', field="jsonrpc")
    method = item.get("method")
    if not isinstance(method, str) or not method:
        return errors.InvalidRequest('"method" must be a non-empty string', field="method")
    if "params" in item and not isinstance(item["params"], (list, dict)):
        return errors.InvalidRequest('"params" must be an array or an object', field="params")
    if "id" in item:
        rid = item["id"]
        if not (rid is None or isinstance(rid, (str, int, float))) or isinstance(rid, bool):
            return errors.InvalidRequest('"id" must be a string, a number or null', field="id")
    if not item.keys() <= _MEMBERS:
        extra = sorted(item.keys() - _MEMBERS)[0]
        return errors.InvalidRequest(f"unknown member {extra!r}", field=extra)
    return None


_MEMBERS = frozenset(("jsonrpc", "method", "params", "id"))


def error_object(exc: errors.RpcgwError, request_id: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": exc.to_error()}


def loads(body: bytes) -> Any:
    """Parse a request body with orjson, falling back to the standard library where
    orjson cannot keep what the client sent exactly (integers beyond 64 bits, which
    orjson reads as floats: an id must be echoed with its JSON type and value)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            payload = json.loads(body, parse_constant=_refuse_constant)
            # orjson refused it; the standard library also lets lone surrogates through,
            # which nothing downstream can store: refuse them here.
            json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except (ValueError, RecursionError, UnicodeError):
            raise ValueError(str(exc)) from None
        return payload
    items = payload if isinstance(payload, list) else (payload,)
    for item in items:
        if isinstance(item, dict) and type(item.get("id")) is float and abs(item["id"]) >= 2 ** 53:
            return json.loads(body, parse_constant=_refuse_constant)
    return payload


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
