"""Go client (1.19+, net/http and encoding/json only): a module with ``go.mod``,
``client.go`` (transport, credentials, the error type), ``types.go`` (one Go type per
named schema) and ``methods.go`` (one method per JSON-RPC method).

Conventions: every method takes a ``context.Context`` first and returns ``(T, error)``;
the error is always an ``*Error`` (``errors.As``) carrying code, message, data and the
HTTP status.  Optional and nullable values are pointers, so "not given" (nil, left out
of the request) differs from a zero value; slices and maps use nil for that already.
Enums are named string types with one constant per value.
"""

from __future__ import annotations

import json
import re

from .model import Api, Field, Method, NamedType, Output, TypeRef, split_words
from .text import errors_text, hanging, header_text, method_text, param_text, result_text, wrap

DEFAULT_MODULE = "rpcgw"
#: Initialisms Go spells in one case (the usual lint list, trimmed to what APIs use).
_INITIALISMS = {"api", "id", "url", "uri", "http", "https", "json", "rpc", "ip", "tls", "ttl",
                "uid", "uuid", "xml", "html", "sql"}
_KEYWORDS = {"break", "case", "chan", "const", "continue", "default", "defer", "else",
             "fallthrough", "for", "func", "go", "goto", "if", "import", "interface", "map",
             "package", "range", "return", "select", "struct", "switch", "type", "var"}
#: Names used inside generated method bodies and by the receiver.
_LOCALS = {"c", "ctx", "result", "err", "params"}
_PRIMITIVE = {"string": "string", "integer": "int64", "number": "float64", "boolean": "bool",
              "any": "any"}


def exported(name: str) -> str:
    """``api-key.create`` → ``APIKeyCreate``; ``device_id`` → ``DeviceID``."""
    words = split_words(name) or ["value"]
    ident = "".join(w.upper() if w in _INITIALISMS else w.capitalize() for w in words)
    return "X" + ident if ident[0].isdigit() else ident


def local(name: str) -> str:
    """``refresh_token`` → ``refreshToken``; ``type`` → ``typ``."""
    words = split_words(name) or ["value"]
    rest = [w.upper() if w in _INITIALISMS else w.capitalize() for w in words[1:]]
    ident = words[0] + "".join(rest)
    if ident[0].isdigit():
        ident = "v" + ident
    if ident == "type":
        return "typ"
    if ident in _KEYWORDS or ident in _LOCALS:
        return ident + "Arg"
    return ident


def package_name(module: str) -> str:
    last = module.rstrip("/").rsplit("/", 1)[-1]
    name = re.sub(r"[^a-z0-9]", "", last.lower())
    if re.fullmatch(r"v\d+", name) and "/" in module.rstrip("/"):
        return package_name(module.rstrip("/").rsplit("/", 1)[0])
    return name if name and not name[0].isdigit() else "rpcgw"


class _Types:
    def __init__(self, api: Api) -> None:
        self.api = api

    def named(self, name: str) -> NamedType:
        return self.api.type(name)

    def base(self, t: TypeRef) -> str:
        """The Go type of ``t`` ignoring nullability."""
        if t.kind in _PRIMITIVE:
            return _PRIMITIVE[t.kind]
        if t.kind == "enum":
            return _PRIMITIVE.get(t.enum_base, "any")
        if t.kind == "array":
            return "[]" + self.go(t.item or TypeRef("any"), optional=False)
        if t.kind == "map":
            return "map[string]" + self.go(t.item or TypeRef("any"), optional=False)
        if t.kind in ("ref", "object"):
            return exported(t.name)
        return "any"

    def can_be_nil(self, t: TypeRef) -> bool:
        if t.kind in ("array", "map", "union", "any"):
            return True
        if t.kind == "ref":
            named = self.named(t.name)
            return named.form != "object" and self.can_be_nil(named.target)
        return t.kind == "enum" and t.enum_base == "any"

    def go(self, t: TypeRef, *, optional: bool) -> str:
        """A pointer when the value may be absent or null and the type has no nil."""
        text = self.base(t)
        if (t.nullable or optional) and not self.can_be_nil(t):
            return "*" + text
        return text


#: Separates the cells gofmt aligns in struct fields and const blocks.
_CELL = "\x1f"


def align(lines: list[str]) -> list[str]:
    """Align cells as gofmt does: runs of consecutive field (or const) lines, a comment
    or blank line ending the run, each cell padded to the widest in its column."""
    out: list[str] = []
    run: list[list[str]] = []

    def flush() -> None:
        widths: list[int] = []
        for cells in run:
            for i, cell in enumerate(cells[:-1]):
                if i == len(widths):
                    widths.append(0)
                widths[i] = max(widths[i], len(cell))
        for cells in run:
            out.append("".join(cell.ljust(widths[i] + 1) for i, cell in enumerate(cells[:-1]))
                       + cells[-1])
        run.clear()

    for line in lines:
        if _CELL in line:
            run.append(line.split(_CELL))
        else:
            flush()
            out.append(line)
    flush()
    return out


def comment(lines: list[str], indent: str = "") -> list[str]:
    return [f"{indent}//{(' ' + line) if line else ''}" for line in lines]


def _sentence_after(name: str, text: str) -> str:
    """``Send an SMS.`` after a Go identifier reads ``SmsSend sends``-like enough as
    ``SmsSend: send an SMS.``; keep acronyms (``API``) capitalised."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def _render_type(named: NamedType, types: _Types) -> list[str]:
    out: list[str] = []
    description = " ".join(p for p in (named.description, named.constraints and (
        named.constraints[0].upper() + named.constraints[1:] + ".")) if p)
    name = exported(named.name)
    if named.form == "alias":
        out += comment(wrap(f"{name} is {_sentence_after(name, description)}"
                            if description else f"{name} is a {types.base(named.target)}.",
                            "", 90))
        out.append(f"type {name} = {types.go(named.target, optional=False)}")
        return out
    if named.form == "enum":
        base = types.base(named.target)
        out += comment(wrap(f"{name} is one of the constants below. {description}".strip(),
                            "", 90))
        out.append(f"type {name} {base}")
        out.append("")
        out.append(f"// {name} values.")
        out.append("const (")
        for value in named.target.values:
            out.append(f"\t{name}{exported(str(value))}{_CELL}{name} = {json.dumps(value)}")
        out.append(")")
        return out
    out += comment(wrap(f"{name} is {_sentence_after(name, description)}" if description
                        else f"{name} is the {named.name} object.", "", 90))
    out.append(f"type {name} struct {{")
    for f in named.fields:
        out += _render_field(f, types)
    out.append("}")
    return out


def _render_field(f: Field, types: _Types) -> list[str]:
    out: list[str] = []
    parts = [f.description.strip().rstrip(".")] if f.description.strip() else []
    if f.constraints:
        parts.append(f.constraints[0].upper() + f.constraints[1:])
    if f.type.kind == "enum" and f.type.enum_base == "string":
        parts.append("One of " + ", ".join(json.dumps(v) for v in f.type.values))
    if f.type.kind == "union":
        parts.append("Holds " + " or ".join(_describe(o, types) for o in f.type.options))
    if parts:
        out += comment(wrap(". ".join(parts) + ".", "", 90), "\t")
    optional = not f.required
    go_type = types.go(f.type, optional=optional)
    tag = f.name + (",omitempty" if optional else "")
    out.append(f"\t{exported(f.name)}{_CELL}{go_type}{_CELL}`json:{json.dumps(tag)}`")
    return out


def _describe(t: TypeRef, types: _Types) -> str:
    if t.kind == "array":
        return f"a list of {_describe(t.item or TypeRef('any'), types)}"
    if t.kind == "ref":
        return types.base(t)
    return types.base(t)


def _doc_for_param(p_text: str, t: TypeRef, types: _Types) -> str:
    extra = ""
    if t.kind == "enum" and t.enum_base == "string":
        extra = " One of " + ", ".join(json.dumps(v) for v in t.values) + "."
    if t.kind == "union":
        extra = " Holds " + " or ".join(_describe(o, types) for o in t.options) + "."
    return (p_text + extra).strip()


def _render_method(method: Method, api: Api, types: _Types) -> list[str]:
    name = exported(method.name)
    text = method_text(method)
    paragraphs = text.split("\n\n")
    paragraphs[0] = f"{name} calls {method.name}: {_sentence_after(name, paragraphs[0])}"
    doc = wrap("\n\n".join(paragraphs), "", 90)
    if method.params:
        doc += ["", "Parameters:", ""]
        for p in method.params:
            doc += hanging(f"- {local(p.name)}: "
                           + _doc_for_param(param_text(p, api) or p.name, p.type, types),
                           "  ", "    ", 90)
    returns = result_text(method, api)
    if returns:
        doc += [""] + wrap(f"Returns {returns[0].lower() + returns[1:]}"
                           if returns[1:2].islower() else f"Returns: {returns}", "", 90)
    doc += [""] + wrap(f"Errors (*Error): {errors_text(method)}", "", 90)
    out = comment(doc)
    args = ["ctx context.Context"]
    for p in method.params:
        args.append(f"{local(p.name)} {types.go(p.type, optional=not p.required)}")
    result = types.go(method.result, optional=False)
    signature = f"func (c *Client) {name}({', '.join(args)}) ({result}, error) {{"
    if len(signature) <= 100:
        out.append(signature)
    else:
        out.append(f"func (c *Client) {name}(")
        out.extend(f"\t{arg}," for arg in args)
        out.append(f") ({result}, error) {{")
    params = ", ".join(local(p.name) for p in method.params)
    out.append(f"\tvar result {result}")
    out.append(f"\terr := c.send(ctx, {json.dumps(method.name)}, []any{{{params}}}, "
               f"{method.required_count}, &result)")
    out.append("\treturn result, err")
    out.append("}")
    return out


_CLIENT = '''{header}

// Package {package} is a client for the {title} JSON-RPC API.
//
//	client := {package}.NewClient("http://127.0.0.1:8080/json-rpc/v1.1/",
//		{package}.BasicAuth("alice", "secret"))
//	hash, err := client.SmsSend(ctx, "", "+33612345678", "Hello", nil)
//
// Every method returns an *Error on failure; use errors.As to read its code.
package {package}

import (
    "bytes"
    "context"
    "encoding/base64"
    "encoding/json"
    "fmt"
    "io"
    "net/http"
    "strconv"
    "sync/atomic"
)

// Credentials is how a client authenticates: BasicAuth, APIKeyAuth or SessionAuth.
type Credentials struct {{
    header string
}}

// BasicAuth authenticates with a login and password (HTTP Basic), as CALLR's SDKs do.
func BasicAuth(login, password string) Credentials {{
    return Credentials{{"Basic " + base64.StdEncoding.EncodeToString([]byte(login+":"+password))}}
}}

// APIKeyAuth authenticates with a token from APIKeyCreate.
func APIKeyAuth(key string) Credentials {{
    return Credentials{{"Api-Key " + key}}
}}

// SessionAuth authenticates with a token from SessionCreate.
func SessionAuth(token string) Credentials {{
    return Credentials{{"Session " + token}}
}}

// Client calls one gateway endpoint with one set of credentials. It is safe for
// concurrent use.
type Client struct {{
    // URL is the endpoint, e.g. http://127.0.0.1:8080/json-rpc/v1.1/.
    URL string
    // LoginAs, e.g. "user.login alice", lets an administrator act as another user
    // (the CALLR-Login-As header).
    LoginAs string
    // HTTPClient sends the requests; http.DefaultClient when nil. Give it a
    // Transport with RootCAs to trust a private CA, and a Timeout.
    HTTPClient *http.Client

    credentials Credentials
    nextID      atomic.Int64
}}

// NewClient returns a client for url.
func NewClient(url string, credentials Credentials) *Client {{
    return &Client{{URL: url, credentials: credentials}}
}}

// Error is an error answered by the gateway, or no usable answer at all.
//
// Code and Message are those of the JSON-RPC error object (docs/errors.md): -32602
// INVALID_PARAM, 110 NOT_FOUND, 101 AUTHENTICATION_FAILED ... Data holds its details
// (map[string]any{{"param": "to", ...}}) or nil. HTTPStatus is the HTTP status of the
// answer: 200 for application errors, 401/429 for authentication, 403 for a refused
// CALLR-Login-As, 413 for a request too large; 0 when none came.
//
// Failures on this side use code -1, as CALLR's SDKs do: HTTP_EXCEPTION (no answer:
// connection, TLS, timeout; Unwrap gives the cause), HTTP_CODE_ERROR (an HTTP error
// without a JSON-RPC body) and INVALID_RESPONSE (an answer that is not a JSON-RPC
// response to this request).
type Error struct {{
    Code       int64  `json:"code"`
    Message    string `json:"message"`
    Data       any    `json:"data,omitempty"`
    HTTPStatus int    `json:"-"`

    cause error
}}

func (e *Error) Error() string {{
    if e.Data != nil {{
        return fmt.Sprintf("%d %s: %v", e.Code, e.Message, e.Data)
    }}
    return fmt.Sprintf("%d %s", e.Code, e.Message)
}}

// Unwrap returns the transport error behind an HTTP_EXCEPTION.
func (e *Error) Unwrap() error {{
    return e.cause
}}

type response struct {{
    ID     json.RawMessage `json:"id"`
    Result json.RawMessage `json:"result"`
    Error  *Error          `json:"error"`
}}

// Call calls any method by name with positional params and decodes its result into
// result (a pointer), for methods added after this client was generated.
func (c *Client) Call(ctx context.Context, method string, params []any, result any) error {{
    raw := make([]json.RawMessage, len(params))
    for i, p := range params {{
        encoded, err := json.Marshal(p)
        if err != nil {{
            return &Error{{Code: -1, Message: "INVALID_PARAMS", Data: map[string]any{{
                "param": i, "exception": err.Error()}}, cause: err}}
        }}
        raw[i] = encoded
    }}
    return c.call(ctx, method, raw, result)
}}

// send leaves out optional params that are null at the end, so the gateway applies its
// defaults even where a parameter's schema does not accept null.
func (c *Client) send(ctx context.Context, method string, params []any, required int,
    result any) error {{
    raw := make([]json.RawMessage, 0, len(params))
    for i, p := range params {{
        encoded, err := json.Marshal(p)
        if err != nil {{
            return &Error{{Code: -1, Message: "INVALID_PARAMS", Data: map[string]any{{
                "param": i, "exception": err.Error()}}, cause: err}}
        }}
        raw = append(raw, encoded)
    }}
    for len(raw) > required && string(raw[len(raw)-1]) == "null" {{
        raw = raw[:len(raw)-1]
    }}
    return c.call(ctx, method, raw, result)
}}

func (c *Client) call(ctx context.Context, method string, params []json.RawMessage,
    result any) error {{
    id := c.nextID.Add(1)
    body, err := json.Marshal(map[string]any{{
        "jsonrpc": "2.0", "id": id, "method": method, "params": params}})
    if err != nil {{
        return &Error{{Code: -1, Message: "INVALID_PARAMS", cause: err}}
    }}
    request, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
    if err != nil {{
        return &Error{{Code: -1, Message: "HTTP_EXCEPTION", Data: map[string]any{{
            "exception": err.Error()}}, cause: err}}
    }}
    request.Header.Set("Content-Type", "application/json; charset=utf-8")
    request.Header.Set("Accept", "application/json")
    request.Header.Set("Authorization", c.credentials.header)
    if c.LoginAs != "" {{
        request.Header.Set("CALLR-Login-As", c.LoginAs)
    }}
    httpClient := c.HTTPClient
    if httpClient == nil {{
        httpClient = http.DefaultClient
    }}
    reply, err := httpClient.Do(request)
    if err != nil {{
        return &Error{{Code: -1, Message: "HTTP_EXCEPTION", Data: map[string]any{{
            "exception": err.Error()}}, cause: err}}
    }}
    defer reply.Body.Close()
    data, err := io.ReadAll(reply.Body)
    if err != nil {{
        return &Error{{Code: -1, Message: "HTTP_EXCEPTION", HTTPStatus: reply.StatusCode,
            Data: map[string]any{{"exception": err.Error()}}, cause: err}}
    }}
    status := reply.StatusCode
    var answer response
    if json.Unmarshal(data, &answer) != nil || string(answer.ID) != strconv.FormatInt(id, 10) {{
        if status != http.StatusOK {{
            return &Error{{Code: -1, Message: "HTTP_CODE_ERROR", HTTPStatus: status,
                Data: map[string]any{{"http_code": status}}}}
        }}
        return invalidResponse(data, status, nil)
    }}
    if answer.Error != nil {{
        answer.Error.HTTPStatus = status
        return answer.Error
    }}
    if status != http.StatusOK || answer.Result == nil {{
        return invalidResponse(data, status, nil)
    }}
    if result == nil {{
        return nil
    }}
    if err := json.Unmarshal(answer.Result, result); err != nil {{
        return invalidResponse(data, status, err)
    }}
    return nil
}}

func invalidResponse(data []byte, status int, cause error) *Error {{
    if len(data) > 200 {{
        data = data[:200]
    }}
    return &Error{{Code: -1, Message: "INVALID_RESPONSE", HTTPStatus: status,
        Data: map[string]any{{"response": string(data)}}, cause: cause}}
}}
'''


def generate(api: Api, module: str = DEFAULT_MODULE) -> Output:
    package = package_name(module)
    types = _Types(api)
    header_lines = comment(wrap(header_text(api, "go"), "", 90))
    # The exact form tools (gofmt, linters, GitHub) recognise as generated code.
    header = "// Code generated by rpcgw gen-client go. DO NOT EDIT.\n\n" + "\n".join(header_lines)
    type_lines = [header, "", f"package {package}"]
    for named in api.types:
        type_lines.append("")
        type_lines += _render_type(named, types)
    method_lines = [header, "", f"package {package}", "", 'import "context"']
    for method in api.methods:
        method_lines.append("")
        method_lines += _render_method(method, api, types)
    output = Output()
    output.add("go.mod", f"module {module}\n\ngo 1.19\n")
    client = _CLIENT.format(header=header, package=package, title=api.title)
    # The template is indented with spaces to keep this file's style; Go's is tabs.
    client = re.sub(r"(?m)^(?:    )+", lambda m: "\t" * (len(m.group(0)) // 4), client)
    output.add("client.go", client)
    output.add("types.go", "\n".join(align(type_lines)))
    output.add("methods.go", "\n".join(method_lines))
    return output
