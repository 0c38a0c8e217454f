"""``docs/api.md``: the API reference, generated from the OpenRPC contract.

Every method gets its parameters (type, required, description, limits), result, errors
and an example request and answer.  The example comes from the method's ``examples``
in the contract when it has one; otherwise it is built from the schemas, the same way
every time: a value from the schema (``examples``, ``default``, ``const``, the first
``enum`` value), else a typical value for the parameter's name (``hash`` → ``8242D945``,
``to`` → ``+33612345678``) or the first of a few stock values that satisfies the
schema's ``pattern`` and length limits.  ``tests/test_docs.py`` checks that every example
request passes the gateway's own parameter validation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .model import Api, Method, NamedType, TypeRef, build, constraints_of

REGENERATE = "python scripts/gen_docs.py (or rpcgw gen-docs)"
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "docs" / "api.md"

#: Typical values by parameter or property name, for examples built from schemas.
_BY_NAME: dict[str, Any] = {
    "hash": "8242D945", "to": "+33612345678", "from": "", "phone": "+33612345678",
    "text": "Hello, SMS world!", "login": "alice", "password": "correct-horse-42",
    "name": "my-key", "token": "q3Vx0pJ2yQ9kq8mZ", "refresh_token": "Yw7sLrC4nT1eHk0a",
    "endpoint": "https://example.org/hooks/sms", "url": "https://example.org/hooks/sms",
    "user_data": "order-42", "type": "OUT", "date_creation": "2024-05-01 12:00:00",
    "date_update": "2024-05-01 12:00:05", "valid_until": "2024-05-01 13:00:00",
}
_STOCK_STRINGS = ("2024-05-01 12:00:00", "2024-05-01", "8242D945", "+33612345678", "example")
_DEPTH = 8  # guards against recursive schemas only


class _Examples:
    def __init__(self, contract: dict[str, Any]) -> None:
        self.schemas: dict[str, Any] = contract.get("components", {}).get("schemas", {})

    def value(self, schema: Any, name: str, *, full: bool, depth: int = 0) -> Any:
        """An example for ``schema``; ``full`` objects show every property (answers),
        otherwise only the required ones, or the first when none is required (requests)."""
        if not isinstance(schema, dict):
            return None
        if "$ref" in schema:
            ref = self.schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
            return self.value(ref, name, full=full, depth=depth)
        for key in ("examples",):
            if isinstance(schema.get(key), list) and schema[key]:
                return schema[key][0]
        for key in ("example", "default", "const"):
            if key in schema:
                return schema[key]
        if "enum" in schema:
            values = [v for v in schema["enum"] if v is not None]
            return values[0] if values else None
        for key in ("oneOf", "anyOf"):
            if key in schema and schema[key]:
                return self.value(schema[key][0], name, full=full, depth=depth)
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return self.value(schema["allOf"][0], name, full=full, depth=depth)
        types = schema.get("type")
        kinds = [types] if isinstance(types, str) else [t for t in types or [] if t != "null"]
        kind = kinds[0] if kinds else ("object" if "properties" in schema else "")
        if kind == "string":
            return self.string(schema, name)
        if kind == "integer":
            value = max(1, int(schema.get("minimum", 1)))
            return min(value, int(schema.get("maximum", value)))
        if kind == "number":
            return float(schema.get("minimum", 1.5))
        if kind == "boolean":
            return True
        if kind == "array":
            if depth >= _DEPTH or schema.get("maxItems") == 0:
                return []
            count = max(1, int(schema.get("minItems", 1)))
            return [self.value(schema.get("items", {}), name, full=full, depth=depth + 1)
                    for _ in range(count)]
        if kind == "object":
            properties: dict[str, Any] = schema.get("properties", {})
            if depth >= _DEPTH or not properties:
                return {}
            required = [p for p in properties if p in schema.get("required", [])]
            keys = list(properties) if full else (required or list(properties)[:1])
            return {k: self.value(properties[k], k, full=full, depth=depth + 1) for k in keys}
        return None

    def string(self, schema: dict[str, Any], name: str) -> str:
        candidates: list[str] = []
        if isinstance(_BY_NAME.get(name), str):
            candidates.append(str(_BY_NAME[name]))
        match = re.search(r"e\.g\. ([^\s,;)]+)", str(schema.get("description", "")))
        if match:
            candidates.append(str(match.group(1)).rstrip("."))
        candidates += _STOCK_STRINGS
        low, high = int(schema.get("minLength", 0)), int(schema.get("maxLength", 10 ** 6))
        pattern = schema.get("pattern")
        for candidate in candidates:
            if not low <= len(candidate) <= high:
                continue
            if pattern is None or re.search(pattern, candidate):
                return candidate
        return "x" * max(1, low)


def type_text(t: TypeRef) -> str:
    """A type in words, with links to named types, for a Markdown table cell."""
    if t.kind in ("string", "integer", "number", "boolean"):
        text = t.kind
    elif t.kind == "enum":
        text = " \\| ".join(f"`{json.dumps(v)}`" for v in t.values)
    elif t.kind == "array":
        text = f"array of {type_text(t.item or TypeRef('any'))}"
    elif t.kind == "map":
        item = t.item or TypeRef("any")
        text = "object" if item.kind == "any" else f"object of {type_text(item)}"
    elif t.kind in ("ref", "object"):
        text = f"[{t.name}](#type-{t.name.lower()})"
    elif t.kind == "union":
        text = " or ".join(type_text(o) for o in t.options)
    else:
        text = "any"
    return f"{text} or null" if t.nullable else text


def prose(text: str) -> str:
    """Contract text as Markdown: ``<token>`` outside code spans would vanish as HTML."""
    parts = re.split(r"(`[^`]*`)", text.strip())
    return "".join(p if p.startswith("`") else p.replace("<", "&lt;").replace(">", "&gt;")
                   for p in parts)


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, code spans included)."""
    flat = prose(" ".join(text.split()))
    return re.sub(r"(?<!\\)\|", r"\\|", flat)


def anchor(method: Method) -> str:
    """GitHub's heading anchor for ``### `sms.send` ``."""
    return re.sub(r"[^a-z0-9_ -]", "", method.name.lower()).replace(" ", "-")


def _json_block(value: Any) -> list[str]:
    return ["```json", json.dumps(value, indent=2, ensure_ascii=False), "```"]


def _method_section(method: Method, raw: dict[str, Any], examples: _Examples) -> list[str]:
    out = [f"### `{method.name}`", ""]
    if method.deprecated:
        out += ["**Deprecated.**", ""]
    if method.summary:
        out += [prose(method.summary), ""]
    if method.description:
        out += [prose(method.description), ""]
    if method.params:
        out += ["**Parameters** (positional, in this order):", "",
                "| # | name | type | required | description |",
                "| --- | --- | --- | --- | --- |"]
        for i, p in enumerate(method.params, 1):
            description = " ".join(x for x in (p.description.strip(), p.constraints and
                                               (p.constraints[0].upper() + p.constraints[1:]
                                                + ".")) if x)
            out.append(f"| {i} | `{p.name}` | {type_text(p.type)} | "
                       f"{'yes' if p.required else 'no'} | {cell(description)} |")
        out.append("")
    else:
        out += ["**Parameters:** none.", ""]
    result = f"**Result** `{method.result_name}`: {type_text(method.result)}"
    if method.result_description:
        result += f". {prose(method.result_description)}"
    out += [result, ""]
    if method.errors:
        out += ["**Errors** (besides [authentication and protocol errors](errors.md)):", "",
                "| code | message |", "| --- | --- |"]
        out += [f"| {e.code} | `{e.message}` |" for e in method.errors]
        out.append("")
    request, answer = example_call(raw, examples)
    out += ["**Example**", "", "Request:", ""] + _json_block(request)
    out += ["", "Answer:", ""] + _json_block(answer) + [""]
    return out


def example_call(raw: dict[str, Any],
                 examples: _Examples) -> tuple[dict[str, Any], dict[str, Any]]:
    """The example request and answer of one contract method."""
    given = (raw.get("examples") or [None])[0]
    if isinstance(given, dict) and "params" in given:
        by_name = {p.get("name"): p.get("value") for p in given.get("params", [])}
        params = [by_name[p["name"]] for p in raw.get("params", []) if p["name"] in by_name]
        result = given.get("result", {}).get("value")
    else:
        params = []
        for p in raw.get("params", []):
            schema = p.get("schema", {})
            if not p.get("required") and _allows_null(schema, examples):
                params.append(None)
            else:
                params.append(examples.value(schema, p["name"], full=False))
        result = None
    if result is None:
        result_schema = raw.get("result", {}).get("schema", {})
        result = examples.value(result_schema, raw.get("result", {}).get("name", ""), full=True)
        if result is None:
            result = True
    request = {"jsonrpc": "2.0", "id": 1, "method": raw["name"], "params": params}
    return request, {"jsonrpc": "2.0", "id": 1, "result": result}


def _allows_null(schema: dict[str, Any], examples: _Examples) -> bool:
    if "$ref" in schema:
        schema = examples.schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
    types = schema.get("type")
    return ((isinstance(types, list) and "null" in types) or None in schema.get("enum", [1]))


def _type_section(named: NamedType, raw: dict[str, Any]) -> list[str]:
    out = [f"### Type `{named.name}`", ""]
    if named.description:
        out += [prose(named.description), ""]
    if named.form == "object":
        out += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
        for f in named.fields:
            description = " ".join(x for x in (f.description.strip(), f.constraints and (
                f.constraints[0].upper() + f.constraints[1:] + ".")) if x)
            out.append(f"| `{f.name}` | {type_text(f.type)} | {'yes' if f.required else 'no'} "
                       f"| {cell(description)} |")
        out.append("")
    else:
        text = type_text(named.target)
        constraints = constraints_of(raw) if raw else named.constraints
        out += [f"{'One of' if named.form == 'enum' else 'A'} {text}"
                + (f"; {constraints}" if constraints else "") + ".", ""]
    return out


def render(contract: dict[str, Any]) -> str:
    """The whole of docs/api.md for ``contract``."""
    api: Api = build(contract)
    examples = _Examples(contract)
    raw_methods = {m["name"]: m for m in contract.get("methods", [])}
    out = ["# API reference", "",
           f"<!-- Generated from schema/openrpc.json (sha256 {api.fingerprint}) by "
           f"{REGENERATE}. Do not edit: regenerate. -->", "",
           f"{api.title} {api.version}. {prose(api.description)}", "",
           "Every call is an HTTP `POST` of a JSON-RPC 2.0 request to `/json-rpc/v1.1/` with "
           "positional `params`, authenticated by `Authorization: Basic` (login and password), "
           "`Api-Key <token>` or `Session <token>`; see the [README](../README.md). Error codes "
           "are listed in [errors.md](errors.md). Client guides: [curl](clients/curl.md), "
           "[Python](clients/python.md), [JavaScript/TypeScript](clients/javascript.md), "
           "[PHP](clients/php.md), [Go](clients/go.md).", "",
           "## Methods", "", "| method | summary |", "| --- | --- |"]
    for method in api.methods:
        out.append(f"| [`{method.name}`](#{anchor(method)}) | {cell(method.summary)} |")
    out.append("")
    for method in api.methods:
        out += _method_section(method, raw_methods[method.name], examples)
    out += ["## Types", ""]
    schemas = contract.get("components", {}).get("schemas", {})
    for named in api.types:
        out += _type_section(named, schemas.get(named.name, {}))
    return "\n".join(out).rstrip("\n") + "\n"
