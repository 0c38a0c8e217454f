"""Python client: one standard-library module, ``rpcgw_client.py`` (Python 3.11+).

Objects are ``TypedDict``s (the answers are plain dicts, so there is no conversion step
and the types cost nothing at run time), enums are ``Literal`` aliases, and every method
is a method of ``Client`` with keyword-friendly, typed parameters.  One module, so it can
be copied into a project as it is.
"""

from __future__ import annotations

import json
import keyword
import re

from .model import Api, Field, Method, NamedType, Output, TypeRef, snake
from .text import (errors_text, hanging, header_text, method_text, param_text, result_text,
                   wrap)

MODULE = "rpcgw_client.py"
_PRIMITIVE = {"string": "str", "integer": "int", "number": "float", "boolean": "bool",
              "any": "Any"}
#: Names the generated method bodies use themselves.
_RESERVED = {"self"}


def identifier(name: str) -> str:
    """A wire name as a Python identifier: ``refresh_token``; ``from`` → ``from_``."""
    ident = snake(name) or "value"
    if ident[0].isdigit():
        ident = "_" + ident
    if keyword.iskeyword(ident) or ident in _RESERVED:
        ident += "_"
    return ident


def literal(value: object) -> str:
    """A Python literal in the double-quoted style the rest of the module uses."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def py_type(t: TypeRef) -> str:
    if t.kind in _PRIMITIVE:
        text = _PRIMITIVE[t.kind]
    elif t.kind == "enum":
        text = "Literal[" + ", ".join(literal(v) for v in t.values) + "]"
    elif t.kind == "array":
        text = f"list[{py_type(t.item or TypeRef('any'))}]"
    elif t.kind == "map":
        text = f"dict[str, {py_type(t.item or TypeRef('any'))}]"
    elif t.kind in ("ref", "object"):
        text = t.name
    elif t.kind == "union":
        text = " | ".join(py_type(o) for o in t.options)
    else:
        text = "Any"
    if t.nullable and text != "Any":
        text += " | None"
    return text


def _wrap(text: str, prefix: str) -> list[str]:
    """Wrapped for a docstring: the opening quotes take three columns."""
    return wrap(text, prefix, 85)


def _docstring(lines: list[str], indent: str) -> list[str]:
    """A docstring from text lines; backslashes escaped so patterns survive."""
    body = [line.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') for line in lines]
    while body and not body[-1].strip():
        body.pop()
    if len(body) == 1 and len(indent) + len(body[0].strip()) + 6 <= 88:
        return [f'{indent}"""{body[0].strip()}"""']
    return [f'{indent}"""{body[0].strip()}', *[(line if line.strip() else "") for line in body[1:]],
            f'{indent}"""']


_LITERAL_ITEM = re.compile(r'"(?:[^"\\]|\\.)*"|[^,\s]+')


def fit(line: str, width: int = 99) -> list[str]:
    """``line``, or when too long, its first ``Literal[...]`` one value per line (valid
    inside the brackets, and how a person would write it)."""
    start = line.find("Literal[")
    if len(line) <= width or start < 0:
        return [line]
    start += len("Literal[")
    depth, end, quoted = 1, start, False
    while end < len(line):
        char = line[end]
        if quoted:
            if char == "\\":
                end += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                break
        end += 1
    indent = line[:len(line) - len(line.lstrip())]
    items = _LITERAL_ITEM.findall(line[start:end])
    return [line[:start], *[f"{indent}    {item}," for item in items], indent + line[end:]]


def _field_doc(f: Field) -> str:
    parts = [f.description.strip().rstrip(".")] if f.description.strip() else []
    if f.constraints:
        parts.append(f.constraints[0].upper() + f.constraints[1:])
    return ". ".join(parts) + "." if parts else ""


def _render_type(named: NamedType) -> list[str]:
    out: list[str] = []
    if named.form in ("alias", "enum"):
        text = " ".join(p for p in (named.description, named.constraints and
                                    (named.constraints[0].upper() + named.constraints[1:] + "."))
                        if p)
        target = py_type(named.target)
        if named.target.kind in ("ref", "object", "array", "map", "union"):
            target = literal(target)  # may name a type defined further down
        line = f"{named.name}: TypeAlias = {target}"
        if len(line) > 88 and named.target.kind == "enum":
            out.append(f"{named.name}: TypeAlias = Literal[")
            out.extend(f"    {literal(v)}," for v in named.target.values)
            out.append("]")
        else:
            out.append(line)
        if text:
            out.extend(_docstring(_wrap(text, ""), ""))
        return out
    identifiers = all(f.name.isidentifier() and not keyword.iskeyword(f.name)
                      for f in named.fields)
    total = all(f.required for f in named.fields)

    def annotation(f: Field) -> str:
        text = py_type(f.type)
        return f"Required[{text}]" if f.required and not total else text

    if identifiers:
        out.append(f"class {named.name}(TypedDict{'' if total else ', total=False'}):")
        out.extend(_docstring(_wrap(named.description or f"The {named.name} object.", "    "),
                              "    "))
        out.append("")
        previous_documented = False
        for f in named.fields:
            doc = _field_doc(f)
            if (doc or previous_documented) and out[-1] != "":
                out.append("")
            out.extend(fit(f"    {f.name}: {annotation(f)}"))
            if doc:
                out.extend(_docstring(_wrap(doc, "    "), "    "))
            previous_documented = bool(doc)
        return out
    # A key such as "from" is a Python keyword: only the functional syntax can declare it,
    # and its values are strings because they may name types defined further down.
    out.append(f"{named.name} = TypedDict(")
    out.append(f"    {literal(named.name)},")
    out.append("    {")
    for f in named.fields:
        out.append(f"        {literal(f.name)}: {literal(annotation(f))},")
    out.append("    },")
    if not total:
        out.append("    total=False,")
    out.append(")")
    lines = wrap(named.description or f"The {named.name} object.", "")
    lines += ["", "Keys:", ""]
    for f in named.fields:
        lines += hanging(f"{f.name}: {_field_doc(f) or py_type(f.type)}", "    ",
                         "        ")
    out.append(f"{named.name}.__doc__ = (")
    for line in lines:
        out.append(f"    {literal(line + chr(10))}")
    out.append(")")
    return out


def _render_method(method: Method, api: Api) -> list[str]:
    name = identifier(method.name)
    args = ["self"]
    for p in method.params:
        default = "" if p.required else " = None"
        text = py_type(p.type)
        if not p.required and not p.type.nullable and text != "Any":
            text += " | None"
        args.append(f"{identifier(p.name)}: {text}{default}")
    result = py_type(method.result)
    signature = f"    def {name}({', '.join(args)}) -> {result}:"
    out = []
    if len(signature) <= 88:
        out.append(signature)
    else:
        out.append(f"    def {name}(")
        for arg in args:
            out.extend(fit(f"        {arg},"))
        out.append(f"    ) -> {result}:")
    doc = _wrap(method_text(method), "        ")
    if method.params:
        doc += ["", "        Args:"]
        for p in method.params:
            doc += hanging(f"{identifier(p.name)}: {param_text(p, api) or p.name}",
                           " " * 12, " " * 16)
    returns = result_text(method, api)
    if returns:
        doc += ["", "        Returns:"]
        doc += hanging(returns, " " * 12, " " * 12)
    doc += ["", "        Raises:"]
    doc += hanging(f"RpcError: {errors_text(method)}", " " * 12, " " * 16)
    out.extend(_docstring(doc, "        "))
    params = ", ".join(identifier(p.name) for p in method.params)
    call = f"self._call({literal(method.name)}, [{params}], {method.required_count})"
    line = f"        return cast({literal(result)}, {call})"
    if len(line) <= 88:
        out.append(line)
    else:
        out.append("        return cast(")
        out.append(f"            {literal(result)},")
        out.append(f"            {call},")
        out.append("        )")
    return out


_RUNTIME = '''

class RpcError(Exception):
    """An error answered by the gateway, or no usable answer at all.

    ``code`` and ``message`` are those of the JSON-RPC error object (docs/errors.md):
    -32602 INVALID_PARAM, 110 NOT_FOUND, 101 AUTHENTICATION_FAILED ...  ``data`` holds its
    details (``{"param": "to", "reason": ...}``) or None.  ``http_status`` is the HTTP
    status of the answer: 200 for application errors, 401/429 for authentication, 403
    for a refused CALLR-Login-As, 413 for a request too large; 0 when none came.

    Failures on this side use code -1, as CALLR's SDKs do: HTTP_EXCEPTION (no answer:
    connection, TLS, timeout), HTTP_CODE_ERROR (an HTTP error without a JSON-RPC body)
    and INVALID_RESPONSE (an answer that is not a JSON-RPC response to this request).
    """

    def __init__(self, code: int, message: str, data: Any = None, http_status: int = 0) -> None:
        super().__init__(f"{code} {message}" + (f": {data}" if data is not None else ""))
        self.code = code
        self.message = message
        self.data = data
        self.http_status = http_status


class Client:
    """A connection to one gateway endpoint, with one set of credentials.

    Give exactly one of ``login`` and ``password`` (HTTP Basic, as CALLR's SDKs send),
    ``api_key`` (from ``api_key_create``) or ``session`` (from ``session_create``).
    ``login_as`` (``"user.login alice"``) lets an administrator act as another user.
    ``ssl_context`` verifies a private CA: ``ssl.create_default_context(cafile="ca.pem")``.
    A client may be shared between threads.
    """

    def __init__(
        self,
        url: str,
        *,
        login: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        session: str | None = None,
        login_as: str | None = None,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        given = [login is not None or password is not None, api_key is not None,
                 session is not None]
        if sum(given) != 1:
            raise ValueError("give login and password, api_key, or session: exactly one")
        if given[0]:
            if not login or password is None:
                raise ValueError("login and password go together")
            pair = f"{login}:{password}".encode("utf-8")
            self._authorization = "Basic " + base64.b64encode(pair).decode("ascii")
        elif api_key is not None:
            self._authorization = f"Api-Key {api_key}"
        else:
            self._authorization = f"Session {session}"
        self.url = url
        self.login_as = login_as
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._ids = itertools.count(1)

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """Call any method by name with positional params; returns its result.

        The typed methods below use this; it is public for methods added to the gateway
        after this client was generated.
        """
        request_id = next(self._ids)
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                           "params": list(params)}, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "Accept": "application/json", "Authorization": self._authorization}
        if self.login_as:
            headers["CALLR-Login-As"] = self.login_as
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout,
                                        context=self.ssl_context) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            # 401, 403, 413, 429 ... still carry a JSON-RPC error body.
            with exc:
                status, raw = exc.code, exc.read()
        except (OSError, ValueError) as exc:
            raise RpcError(-1, "HTTP_EXCEPTION", {"exception": str(exc)}) from exc
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or answer.get("id") != request_id:
            if status != 200:
                raise RpcError(-1, "HTTP_CODE_ERROR", {"http_code": status}, status)
            raise RpcError(-1, "INVALID_RESPONSE",
                           {"response": raw[:200].decode("utf-8", "replace")}, status)
        error = answer.get("error")
        if isinstance(error, dict):
            raise RpcError(int(error.get("code", -1)), str(error.get("message", "")),
                           error.get("data"), status)
        if status != 200 or "result" not in answer:
            raise RpcError(-1, "INVALID_RESPONSE",
                           {"response": raw[:200].decode("utf-8", "replace")}, status)
        return answer["result"]

    def _call(self, method: str, params: list[Any], required: int) -> Any:
        # Optional params left as None at the end are not sent, so the gateway applies
        # its defaults even where a parameter's schema does not accept null.
        while len(params) > required and params[-1] is None:
            params.pop()
        return self.call(method, params)
'''


def generate(api: Api) -> Output:
    out: list[str] = []
    head = _wrap(header_text(api, "python"), "")
    head += ["", "Usage::", "",
             "    from rpcgw_client import Client, RpcError",
             "",
             '    client = Client("http://127.0.0.1:8080/json-rpc/v1.1/", login="alice",',
             '                    password="secret")',
             '    sms_hash = client.sms_send("", "+33612345678", "Hello")',
             "",
             "Standard library only; Python 3.11 or later."]
    out.extend(_docstring(head, ""))
    out += ["", "from __future__ import annotations", "",
            "import base64", "import itertools", "import json", "import ssl",
            "import urllib.error", "import urllib.request",
            "from typing import Any, Literal, Required, Sequence, TypeAlias, TypedDict, cast",
            ""]
    names = sorted([t.name for t in api.types] + ["Client", "RpcError"])
    out.append("__all__ = [")
    out.extend(f"    {literal(n)}," for n in names)
    out.append("]")
    for named in api.types:
        out += ["", ""]
        out.extend(_render_type(named))
    out.append(_RUNTIME.rstrip("\n"))
    for method in api.methods:
        out.append("")
        out.extend(_render_method(method, api))
    output = Output()
    output.add(MODULE, "\n".join(out))
    return output
