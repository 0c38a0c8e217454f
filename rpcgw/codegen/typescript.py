"""TypeScript client: ``rpcgw-client.js`` (ES module for Node 18+ ``fetch``, also
browsers and Deno) with its declarations in ``rpcgw-client.d.ts``, plus ``package.json``.

Why JavaScript plus declarations rather than a ``.ts`` file: it is what packages on npm
ship.  Node runs the ``.js`` as it is, with no compiler on the machine (there is no
``tsc`` here, and Node 20 cannot run TypeScript), while TypeScript projects get every
method, parameter and object type from the ``.d.ts``.  A ``.ts`` file would need a
build step before Node could use it, and emitting both a ``.ts`` and its compiled
``.js`` would put the same runtime code in two files that can drift apart.  Here the
runtime code is written once, and the typed surface is generated from the contract.
"""

from __future__ import annotations

import json
import re

from .model import Api, Method, NamedType, Output, TypeRef, camel
from .text import errors_text, hanging, header_text, method_text, param_text, result_text, wrap

BASENAME = "rpcgw-client"
_RESERVED = {
    "arguments", "await", "break", "case", "catch", "class", "const", "continue",
    "debugger", "default", "delete", "do", "else", "enum", "eval", "export", "extends",
    "false", "finally", "for", "function", "if", "implements", "import", "in",
    "instanceof", "interface", "let", "new", "null", "package", "private", "protected",
    "public", "return", "static", "super", "switch", "this", "throw", "true", "try",
    "typeof", "var", "void", "while", "with", "yield",
}
_PRIMITIVE = {"string": "string", "integer": "number", "number": "number",
              "boolean": "boolean", "any": "unknown"}


def identifier(name: str) -> str:
    """``refresh_token`` → ``refreshToken``; a reserved word gets a trailing underscore."""
    ident = camel(name) or "value"
    if ident[0].isdigit():
        ident = "_" + ident
    return ident + "_" if ident in _RESERVED else ident


def property_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", name) else json.dumps(name)


def ts_type(t: TypeRef) -> str:
    if t.kind in _PRIMITIVE:
        text = _PRIMITIVE[t.kind]
    elif t.kind == "enum":
        text = " | ".join(json.dumps(v) for v in t.values)
    elif t.kind == "array":
        item = ts_type(t.item or TypeRef("any"))
        text = f"Array<{item}>" if " " in item else f"{item}[]"
    elif t.kind == "map":
        text = f"Record<string, {ts_type(t.item or TypeRef('any'))}>"
    elif t.kind in ("ref", "object"):
        text = t.name
    elif t.kind == "union":
        text = " | ".join(ts_type(o) for o in t.options)
    else:
        text = "unknown"
    if t.nullable and text != "unknown":
        text += " | null"
    return text


def jsdoc(lines: list[str], indent: str) -> list[str]:
    body = [line.replace("*/", "*\\/") for line in lines]
    while body and not body[-1].strip():
        body.pop()
    if len(body) == 1 and len(indent) + len(body[0]) + 7 <= 100:
        return [f"{indent}/** {body[0].strip()} */"]
    return [f"{indent}/**", *[f"{indent} *{(' ' + line) if line else ''}" for line in body],
            f"{indent} */"]


def _doc(text: str, width: int = 90) -> list[str]:
    return wrap(text, "", width)


def _render_type(named: NamedType) -> list[str]:
    out: list[str] = []
    if named.form in ("alias", "enum"):
        text = " ".join(p for p in (named.description, named.constraints and
                                    (named.constraints[0].upper() + named.constraints[1:] + "."))
                        if p)
        if text:
            out.extend(jsdoc(_doc(text), ""))
        line = f"export type {named.name} = {ts_type(named.target)};"
        if len(line) > 100 and named.target.kind == "enum":
            out.append(f"export type {named.name} =")
            out.extend(f"  | {json.dumps(v)}" + (";" if i == len(named.target.values) - 1 else "")
                       for i, v in enumerate(named.target.values))
        else:
            out.append(line)
        return out
    out.extend(jsdoc(_doc(named.description or f"The {named.name} object."), ""))
    out.append(f"export interface {named.name} {{")
    for f in named.fields:
        parts = [f.description.strip().rstrip(".")] if f.description.strip() else []
        if f.constraints:
            parts.append(f.constraints[0].upper() + f.constraints[1:])
        if parts:
            out.extend(jsdoc(_doc(". ".join(parts) + ".", 94), "  "))
        optional = "" if f.required else "?"
        out.append(f"  {property_key(f.name)}{optional}: {ts_type(f.type)};")
    if named.additional is not None:
        out.append(f"  [key: string]: {ts_type(named.additional)};")
    out.append("}")
    return out


def _signature(method: Method) -> str:
    args = []
    for p in method.params:
        text = ts_type(p.type)
        if not p.required and not p.type.nullable and text != "unknown":
            text += " | null"
        args.append(f"{identifier(p.name)}{'' if p.required else '?'}: {text}")
    return ", ".join(args)


def _render_declaration(method: Method, api: Api) -> list[str]:
    doc = _doc(method_text(method), 94) + [""]
    for p in method.params:
        doc += hanging(f"@param {identifier(p.name)} {param_text(p, api) or p.name}", "",
                       "  ", 94)
    returns = result_text(method, api)
    if returns:
        doc += hanging(f"@returns {returns}", "", "  ", 94)
    doc += hanging(f"@throws {{RpcError}} {errors_text(method)}", "", "  ", 94)
    out = jsdoc(doc, "  ")
    result = ts_type(method.result)
    line = f"  {identifier(method.name)}({_signature(method)}): Promise<{result}>;"
    if len(line) <= 100:
        out.append(line)
    else:
        out.append(f"  {identifier(method.name)}(")
        out.extend(f"    {arg}," for arg in _signature(method).split(", "))
        out.append(f"  ): Promise<{result}>;")
    return out


_DECLARATIONS = '''
/** The ways to authenticate: login and password (HTTP Basic), an API key, or a session. */
export type Credentials =
  | { login: string; password: string }
  | { apiKey: string }
  | { session: string };

export type ClientOptions = Credentials & {
  /** `CALLR-Login-As` value, e.g. `"user.login alice"`: an administrator acting as a user. */
  loginAs?: string;
  /** Give up on a call after this many milliseconds (default 30000). */
  timeoutMs?: number;
};

/**
 * An error answered by the gateway, or no usable answer at all.
 *
 * `code` and `message` are those of the JSON-RPC error object (docs/errors.md): -32602
 * INVALID_PARAM, 110 NOT_FOUND, 101 AUTHENTICATION_FAILED ... `data` holds its details
 * (`{ param: "to", reason: ... }`) or null. `httpStatus` is the HTTP status of the answer:
 * 200 for application errors, 401/429 for authentication, 403 for a refused
 * CALLR-Login-As, 413 for a request too large; 0 when none came.
 *
 * Failures on this side use code -1, as CALLR's SDKs do: HTTP_EXCEPTION (no answer:
 * connection, TLS, timeout), HTTP_CODE_ERROR (an HTTP error without a JSON-RPC body) and
 * INVALID_RESPONSE (an answer that is not a JSON-RPC response to this request).
 */
export declare class RpcError extends Error {
  readonly code: number;
  readonly data: unknown;
  readonly httpStatus: number;
  constructor(code: number, message: string, data?: unknown, httpStatus?: number);
}
'''

_RUNTIME = '''
export class RpcError extends Error {
  constructor(code, message, data = null, httpStatus = 0) {
    super(message);
    this.name = "RpcError";
    this.code = code;
    this.data = data;
    this.httpStatus = httpStatus;
  }
}

function authorization(options) {
  const given = ["login" in options || "password" in options, "apiKey" in options,
    "session" in options].filter(Boolean).length;
  if (given !== 1) {
    throw new TypeError("give login and password, apiKey, or session: exactly one");
  }
  if ("apiKey" in options) return `Api-Key ${options.apiKey}`;
  if ("session" in options) return `Session ${options.session}`;
  if (!options.login || typeof options.password !== "string") {
    throw new TypeError("login and password go together");
  }
  const pair = new TextEncoder().encode(`${options.login}:${options.password}`);
  let binary = "";
  for (const byte of pair) binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}

export class Client {
  #url;
  #authorization;
  #loginAs;
  #timeoutMs;
  #nextId = 1;

  constructor(url, options) {
    this.#url = url;
    this.#authorization = authorization(options);
    this.#loginAs = options.loginAs;
    this.#timeoutMs = options.timeoutMs ?? 30000;
  }

  /** Call any method by name with positional params; resolves to its result. */
  async call(method, params = []) {
    const id = this.#nextId++;
    const headers = {
      "Content-Type": "application/json; charset=utf-8",
      Accept: "application/json",
      Authorization: this.#authorization,
    };
    if (this.#loginAs) headers["CALLR-Login-As"] = this.#loginAs;
    let status;
    let text;
    try {
      const response = await fetch(this.#url, {
        method: "POST",
        headers,
        body: JSON.stringify({ jsonrpc: "2.0", id, method, params }),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      const cause = error instanceof Error && error.cause ? `: ${error.cause}` : "";
      throw new RpcError(-1, "HTTP_EXCEPTION", { exception: `${error}${cause}` });
    }
    let answer = null;
    try {
      answer = JSON.parse(text);
    } catch {
      answer = null;
    }
    if (answer === null || typeof answer !== "object" || answer.id !== id) {
      if (status !== 200) throw new RpcError(-1, "HTTP_CODE_ERROR", { http_code: status }, status);
      throw new RpcError(-1, "INVALID_RESPONSE", { response: text.slice(0, 200) }, status);
    }
    if (answer.error && typeof answer.error === "object") {
      const { code, message, data } = answer.error;
      throw new RpcError(code, message, data ?? null, status);
    }
    if (status !== 200 || !("result" in answer)) {
      throw new RpcError(-1, "INVALID_RESPONSE", { response: text.slice(0, 200) }, status);
    }
    return answer.result;
  }

  // Optional params left unset at the end are not sent, so the gateway applies its
  // defaults even where a parameter's schema does not accept null.
  #send(method, params, required) {
    while (params.length > required && params[params.length - 1] == null) params.pop();
    return this.call(method, params.map((value) => (value === undefined ? null : value)));
  }
'''


def generate(api: Api) -> Output:
    header = wrap(header_text(api, "typescript"), "", 94)
    d: list[str] = jsdoc(header + ["", "Types and documentation for rpcgw-client.js."], "")
    for named in api.types:
        d.append("")
        d.extend(_render_type(named))
    d.append(_DECLARATIONS.rstrip("\n"))
    d.append("")
    d.extend(jsdoc(["A connection to one gateway endpoint with one set of credentials.", "",
                    "@example",
                    'const client = new Client("http://127.0.0.1:8080/json-rpc/v1.1/", '
                    '{ login: "alice", password: "secret" });',
                    'const hash = await client.smsSend("", "+33612345678", "Hello");'], ""))
    d.append("export declare class Client {")
    d.append("  constructor(url: string, options: ClientOptions);")
    d.append("  /** Call any method by name with positional params; resolves to its result. */")
    d.append("  call(method: string, params?: unknown[]): Promise<unknown>;")
    for method in api.methods:
        d.append("")
        d.extend(_render_declaration(method, api))
    d.append("}")

    js: list[str] = jsdoc(header + ["", "Standard library only: Node 18+ (built-in fetch), "
                                        "browsers, Deno. Types: rpcgw-client.d.ts."], "")
    js.append(_RUNTIME.rstrip("\n"))
    for method in api.methods:
        js.append("")
        js.extend(jsdoc(wrap(f"{method.name}: {method.summary or method_text(method)}", "",
                             94), "  "))
        params = ", ".join(identifier(p.name) for p in method.params)
        js.append(f"  {identifier(method.name)}({params}) {{")
        js.append(f"    return this.#send({json.dumps(method.name)}, [{params}], "
                  f"{method.required_count});")
        js.append("  }")
    js.append("}")

    package = {
        "name": "rpcgw-client",
        "version": api.version or "0.0.0",
        "description": f"Client for the {api.title} JSON-RPC API (generated)",
        "type": "module",
        "main": f"./{BASENAME}.js",
        "types": f"./{BASENAME}.d.ts",
        "exports": {".": {"types": f"./{BASENAME}.d.ts", "default": f"./{BASENAME}.js"}},
        "files": [f"{BASENAME}.js", f"{BASENAME}.d.ts"],
        "engines": {"node": ">=18"},
        "sideEffects": False,
    }
    output = Output()
    output.add(f"{BASENAME}.d.ts", "\n".join(d))
    output.add(f"{BASENAME}.js", "\n".join(js))
    output.add("package.json", json.dumps(package, indent=2))
    return output
