"""The documentation says what the code does: API reference, method registry, errors.

``docs/api.md`` is generated from ``schema/openrpc.json``; after changing the contract,
regenerate it with ``python scripts/gen_docs.py`` (or ``rpcgw gen-docs``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest

import rpcgw.api  # noqa: F401  (fills the registry)
from rpcgw import errors
from rpcgw.codegen import docs
from rpcgw.codegen.model import build
from rpcgw.rpc import compile_binders, load_contract, registry

ROOT = Path(__file__).resolve().parent.parent
API_MD = ROOT / "docs" / "api.md"
CLIENT_GUIDES = ("curl", "python", "javascript", "php", "go")


@pytest.fixture(scope="module")
def contract() -> dict[str, Any]:
    return load_contract()


def test_api_reference_is_up_to_date(contract: dict[str, Any]) -> None:
    expected = docs.render(contract)
    actual = API_MD.read_text(encoding="utf-8") if API_MD.exists() else ""
    assert actual == expected, (
        f"docs/api.md is stale (schema/openrpc.json changed): run {docs.REGENERATE}")


def test_registry_and_contract_name_the_same_methods(contract: dict[str, Any]) -> None:
    in_contract = {m["name"] for m in contract["methods"]}
    implemented = set(registry.specs)
    assert sorted(implemented - in_contract) == [], "implemented but not in the contract"
    assert sorted(in_contract - implemented) == [], "in the contract but not implemented"


def test_every_method_and_type_has_a_section(contract: dict[str, Any]) -> None:
    text = API_MD.read_text(encoding="utf-8")
    api = build(contract)
    for method in api.methods:
        assert f"\n### `{method.name}`\n" in text, method.name
        assert f"](#{docs.anchor(method)})" in text, method.name
    for named in api.types:
        assert f"\n### Type `{named.name}`\n" in text, named.name


def test_every_error_code_is_in_errors_md() -> None:
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    documented = {int(code) for code in re.findall(r"^\| (-?\d+) \|", text, re.MULTILINE)}
    for cls in errors.ALL_ERRORS:
        assert cls.code in documented, f"{cls.__name__} ({cls.code}) is not in docs/errors.md"


def test_examples_pass_the_gateways_own_validation(contract: dict[str, Any]) -> None:
    """Every example request in docs/api.md binds to the contract as the gateway binds
    it, and every example answer matches the method's result schema, so a reader can
    copy them."""
    binders = compile_binders(contract)
    examples = docs._Examples(contract)
    components = contract.get("components", {})
    for method in contract["methods"]:
        request, answer = docs.example_call(method, examples)
        binders[method["name"]].bind(tuple(request["params"]), {})
        result_schema = method.get("result", {}).get("schema", {})
        check = fastjsonschema.compile({"allOf": [result_schema], "components": components})
        check(answer["result"])


def test_client_guides_exist_and_are_linked() -> None:
    text = API_MD.read_text(encoding="utf-8")
    for guide in CLIENT_GUIDES:
        path = ROOT / "docs" / "clients" / f"{guide}.md"
        assert path.exists(), path
        assert f"(clients/{guide}.md)" in text
