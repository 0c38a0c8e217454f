"""The OpenRPC contract turned into a small, language-neutral model for the generators.

Each generator renders the same model, so the four clients agree on what a method takes
and returns; only spelling differs.  JSON Schema is far richer than any client type
system, so the mapping keeps what helps a caller (types, nullability, enums, named
objects, documentation and limits) and leaves validation to the gateway, which checks
every parameter against the same schema and names the one that is wrong.

Mapping rules (``TypeRef.kind``):

* ``"type": "string" | "integer" | "number" | "boolean"`` → that primitive;
* ``"null"`` in a type list, or ``null`` in an enum → ``nullable``;
* ``"array"`` with ``maxItems: 0`` beside other types is dropped: it is CALLR's "``[]``
  for no options" spelling, not a type anyone wants to build;
* ``enum`` / ``const`` → ``enum`` (literal values);
* several remaining types, ``oneOf`` or ``anyOf`` → ``union``;
* an object with ``properties`` → a named object type; an inline one is hoisted and
  named after where it appears (``users.update``'s ``fields`` → ``UsersUpdateFields``);
* an object without properties → ``map`` (of ``additionalProperties`` or of anything);
* ``$ref`` to ``#/components/schemas/X`` → ``ref`` to the named type ``X``;
* anything else → ``any``.

Everything is sorted or kept in contract order, never in dict-iteration order of
something built at run time, so the same contract always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

PRIMITIVES = ("string", "integer", "number", "boolean")
#: Names the clients' own code uses; a schema of the same name becomes ``<Name>Object``.
RESERVED_TYPE_NAMES = frozenset({
    "APIKeyAuth", "Any", "BasicAuth", "Client", "ClientOptions", "Credentials", "Error",
    "Literal", "Required", "RpcError", "RpcException", "SessionAuth", "TypeAlias",
    "TypedDict",
})


@dataclass(frozen=True)
class TypeRef:
    """A type expression: a primitive, a container, a reference, an enum or a union."""

    kind: str
    nullable: bool = False
    item: "TypeRef | None" = None
    name: str = ""
    values: tuple[Any, ...] = ()
    options: tuple["TypeRef", ...] = ()

    def with_nullable(self, nullable: bool = True) -> "TypeRef":
        return TypeRef(self.kind, nullable, self.item, self.name, self.values, self.options)

    @property
    def enum_base(self) -> str:
        """The primitive all values of an enum share, or ``any``."""
        kinds = {_json_kind(v) for v in self.values}
        return kinds.pop() if len(kinds) == 1 else "any"


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "any"


ANY = TypeRef("any")


@dataclass(frozen=True)
class Field:
    name: str
    type: TypeRef
    required: bool
    description: str
    constraints: str


@dataclass(frozen=True)
class NamedType:
    """A component schema (or a hoisted inline object) that gets a name in the client.

    ``form`` is ``object`` (fields), ``enum`` (``target.values``) or ``alias`` (any other
    type, e.g. ``Hash`` → string).
    """

    name: str
    form: str
    description: str
    fields: tuple[Field, ...] = ()
    target: TypeRef = ANY
    constraints: str = ""
    additional: TypeRef | None = None


@dataclass(frozen=True)
class Param:
    name: str
    type: TypeRef
    required: bool
    description: str
    constraints: str


@dataclass(frozen=True)
class ErrorInfo:
    code: int
    message: str


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    description: str
    params: tuple[Param, ...]
    result: TypeRef
    result_name: str
    result_description: str
    errors: tuple[ErrorInfo, ...]
    deprecated: bool

    @property
    def words(self) -> list[str]:
        return split_words(self.name)

    @property
    def required_count(self) -> int:
        """Params up to the last required one: trailing optional ones left unset are
        not sent at all, so the gateway applies their defaults."""
        count = 0
        for index, param in enumerate(self.params):
            if param.required:
                count = index + 1
        return count


@dataclass(frozen=True)
class Api:
    title: str
    version: str
    description: str
    fingerprint: str
    methods: tuple[Method, ...]
    types: tuple[NamedType, ...]

    def type(self, name: str) -> NamedType:
        for named in self.types:
            if named.name == name:
                return named
        raise KeyError(name)


# -- names ------------------------------------------------------------------------------

def split_words(name: str) -> list[str]:
    """``sms.get_count_for_body`` → [sms, get, count, for, body]; also splits camelCase."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def snake(name: str) -> str:
    return "_".join(split_words(name))


def camel(name: str) -> str:
    words = split_words(name)
    return words[0] + "".join(w.capitalize() for w in words[1:]) if words else name


def pascal(name: str) -> str:
    return "".join(w.capitalize() for w in split_words(name))


def contract_fingerprint(contract: dict[str, Any]) -> str:
    """A short hash of the contract, printed in generated headers, so a client tells
    which contract it was made from without carrying a timestamp."""
    canonical = json.dumps(contract, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


# -- building the model -----------------------------------------------------------------

_CONSTRAINT_WORDS = (
    ("minLength", "at least {} character"), ("maxLength", "at most {} character"),
    ("minimum", "≥ {}"), ("maximum", "≤ {}"), ("minItems", "at least {} item"),
    ("maxItems", "at most {} item"), ("pattern", "matches {}"),
)


def constraints_of(schema: dict[str, Any]) -> str:
    """The validation keywords of a schema, in words, for documentation."""
    parts = []
    for key, text in _CONSTRAINT_WORDS:
        if key in schema and not (key == "maxItems" and schema[key] == 0):
            value = schema[key]
            words = text.format(f"`{value}`" if key == "pattern" else value)
            parts.append(words + "s" if words.endswith(("character", "item")) and value != 1
                         else words)
    return ", ".join(parts)


class _Builder:
    def __init__(self, contract: dict[str, Any]) -> None:
        self.contract = contract
        self.schemas: dict[str, Any] = contract.get("components", {}).get("schemas", {})
        self.types: dict[str, NamedType] = {}
        self.nullable_components: dict[str, bool] = {}
        self.hoisted: dict[str, str] = {}

    def resolve_ref(self, ref: str) -> tuple[str, dict[str, Any]]:
        prefix = "#/components/schemas/"
        if not ref.startswith(prefix):
            raise ValueError(f"unsupported $ref {ref!r}: only {prefix}… is understood")
        name = ref[len(prefix):]
        if name not in self.schemas:
            raise ValueError(f"$ref {ref!r} names no component schema")
        return name, self.schemas[name]

    @staticmethod
    def type_name(component: str) -> str:
        return component + "Object" if component in RESERVED_TYPE_NAMES else component

    def component_nullable(self, name: str) -> bool:
        if name not in self.nullable_components:
            schema = self.schemas[name]
            self.nullable_components[name] = False
            self.nullable_components[name] = self.convert(schema, self.type_name(name),
                                                          hoist=False).nullable
        return self.nullable_components[name]

    def build_components(self) -> None:
        for name in sorted(self.schemas):
            self.build_named(name, self.schemas[name])

    def build_named(self, component: str, schema: dict[str, Any]) -> None:
        name = self.type_name(component)
        description = str(schema.get("description", ""))
        converted = self.convert(schema, name, hoist=False)
        if converted.kind == "object":
            return  # convert() registered the object type itself
        if converted.kind == "enum":
            self.types[name] = NamedType(name, "enum", description,
                                         target=converted.with_nullable(False))
        else:
            self.types[name] = NamedType(name, "alias", description,
                                         target=converted.with_nullable(False),
                                         constraints=constraints_of(schema))

    def convert(self, schema: Any, hint: str, *, hoist: bool = True) -> TypeRef:
        """The TypeRef for ``schema``; ``hint`` names an inline object if one appears."""
        if not isinstance(schema, dict) or not schema:
            return ANY
        if "$ref" in schema:
            name, _ = self.resolve_ref(schema["$ref"])
            return TypeRef("ref", self.component_nullable(name), name=self.type_name(name))
        for key in ("oneOf", "anyOf"):
            if key in schema:
                alternatives = [self.convert(s, f"{hint} option {i + 1}")
                                for i, s in enumerate(schema[key])]
                return _union(alternatives)
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return self.convert(schema["allOf"][0], hint, hoist=hoist)
        if "const" in schema:
            return TypeRef("enum", values=(schema["const"],), nullable=schema["const"] is None)
        if "enum" in schema:
            values = tuple(v for v in schema["enum"] if v is not None)
            return TypeRef("enum", values=values, nullable=None in schema["enum"])
        types = schema.get("type")
        names = [types] if isinstance(types, str) else list(types or [])
        nullable = "null" in names
        names = [t for t in names if t != "null"]
        if "array" in names and len(names) > 1 and schema.get("maxItems") == 0:
            names.remove("array")
        if not names:
            return TypeRef("any", nullable) if types is None else TypeRef("any", True)
        if len(names) > 1:
            return _union([self.convert({**schema, "type": t}, hint, hoist=hoist) for t in names]
                          ).with_nullable(nullable)
        kind = names[0]
        if kind in PRIMITIVES:
            return TypeRef(kind, nullable)
        if kind == "array":
            return TypeRef("array", nullable, item=self.convert(schema.get("items"),
                                                                f"{hint} item"))
        if kind == "object":
            return self.convert_object(schema, hint, nullable, exact=not hoist)
        return TypeRef("any", nullable)

    def convert_object(self, schema: dict[str, Any], hint: str, nullable: bool,
                       exact: bool) -> TypeRef:
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        extra = (self.convert(additional, f"{hint} value")
                 if isinstance(additional, dict) else None)
        if not properties:
            return TypeRef("map", nullable, item=extra or ANY)
        if exact:
            name = hint
        else:
            # The same inline schema is met again when its component is converted twice;
            # it keeps the name it got the first time.
            name = self.hoisted.get(hint) or _unique(
                pascal(hint), set(self.schemas) | set(self.hoisted.values()) | RESERVED_TYPE_NAMES)
            self.hoisted[hint] = name
        required = set(schema.get("required", []))
        if name not in self.types:
            self.types[name] = NamedType(name, "object", "", additional=extra)  # recursion
        fields = tuple(
            Field(prop, self.convert(sub, f"{name} {prop}"), prop in required,
                  str(sub.get("description", "")) if isinstance(sub, dict) else "",
                  constraints_of(sub) if isinstance(sub, dict) else "")
            for prop, sub in properties.items())
        self.types[name] = NamedType(name, "object", str(schema.get("description", "")),
                                     fields=fields, additional=extra)
        return TypeRef("object" if exact else "ref", nullable, name=name)

    def build_method(self, method: dict[str, Any]) -> Method:
        name = method["name"]
        params = []
        for p in method.get("params", []):
            schema = p.get("schema", {})
            description = " ".join(d for d in (str(p.get("description", "")),
                                               str(schema.get("description", ""))) if d)
            params.append(Param(p["name"], self.convert(schema, f"{name} {p['name']}"),
                                bool(p.get("required", False)), description,
                                constraints_of(schema)))
        result = method.get("result", {})
        result_type = self.convert(result.get("schema", {}), f"{name} result")
        errors = []
        for e in method.get("errors", []):
            if "$ref" in e:
                key = e["$ref"].rsplit("/", 1)[-1]
                e = self.contract.get("components", {}).get("errors", {}).get(key)
                if e is None:
                    raise ValueError(f"{name}: error {key!r} is not in components.errors")
            errors.append(ErrorInfo(int(e["code"]), str(e["message"])))
        return Method(name, str(method.get("summary", "")), str(method.get("description", "")),
                      tuple(params), result_type, str(result.get("name", "result")),
                      str(result.get("description", "")), tuple(errors),
                      bool(method.get("deprecated", False)))


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    n = 2
    while f"{name}{n}" in taken:
        n += 1
    return f"{name}{n}"


def _union(options: Iterable[TypeRef]) -> TypeRef:
    flat: list[TypeRef] = []
    nullable = False
    for option in options:
        nullable = nullable or option.nullable
        members = option.options if option.kind == "union" else (option,)
        for member in members:
            member = member.with_nullable(False)
            if member.kind == "any" and not option.nullable:
                return TypeRef("any", nullable)
            if member not in flat:
                flat.append(member)
    flat = [m for m in flat if m.kind != "any"]
    if not flat:
        return TypeRef("any", True)
    if len(flat) == 1:
        return flat[0].with_nullable(nullable)
    return TypeRef("union", nullable, options=tuple(flat))


def build(contract: dict[str, Any]) -> Api:
    """The model of ``contract``; methods sorted by name, types by name."""
    if not str(contract.get("openrpc", "")).startswith("1."):
        raise ValueError("not an OpenRPC 1.x document")
    builder = _Builder(contract)
    builder.build_components()
    methods = sorted((builder.build_method(m) for m in contract.get("methods", [])),
                     key=lambda m: m.name)
    info = contract.get("info", {})
    return Api(str(info.get("title", "api")), str(info.get("version", "")),
               str(info.get("description", "")), contract_fingerprint(contract),
               tuple(methods), tuple(sorted(builder.types.values(), key=lambda t: t.name)))


@dataclass
class Output:
    """Generated files: relative path → text.  Writers sort by path."""

    files: dict[str, str] = field(default_factory=dict)

    def add(self, path: str, text: str) -> None:
        if not text.endswith("\n"):
            text += "\n"
        self.files[path] = text
