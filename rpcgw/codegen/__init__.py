"""Client stubs and API documentation generated from ``schema/openrpc.json``.

``rpcgw gen-client LANG --out DIR`` writes a client for python, typescript, php or go;
``rpcgw gen-docs`` rewrites ``docs/api.md``.  Both are pure functions of the contract:
the same contract gives the same bytes (no timestamps; types and methods sorted by
name), so regenerating is safe and a diff shows only real changes.

Generated clients are not committed to this repository: they are build products of a
given contract, which keeps growing, and a test regenerates and runs each of them
against a live gateway.  ``docs/api.md`` is committed, because it is read on the web;
``tests/test_docs.py`` fails when it is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from . import go, php, python, typescript
from .model import Api, Output, build

__all__ = ["LANGUAGES", "generate", "load_contract", "write_output", "add_commands"]

#: language → generator(api, **options).
LANGUAGES: dict[str, Callable[..., Output]] = {
    "go": go.generate,
    "php": php.generate,
    "python": python.generate,
    "typescript": typescript.generate,
}


def load_contract(path: str | Path | None = None) -> dict[str, Any]:
    """The contract at ``path``, or the one the gateway itself serves."""
    if path is None:
        from ..rpc import load_contract as load_served
        return load_served()
    contract: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return contract


def generate(language: str, contract: dict[str, Any], **options: Any) -> dict[str, str]:
    """Relative path → file text for ``language``."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; choose from {sorted(LANGUAGES)}")
    api: Api = build(contract)
    return dict(sorted(LANGUAGES[language](api, **options).files.items()))


def write_output(files: dict[str, str], out: Path) -> list[Path]:
    """Write ``files`` under ``out`` (UTF-8, LF); returns the paths written."""
    written = []
    for relative, text in sorted(files.items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        written.append(path)
    return written


def cmd_gen_client(args: argparse.Namespace) -> int:
    options = {"module": args.go_module} if args.language == "go" and args.go_module else {}
    files = generate(args.language, load_contract(args.schema), **options)
    for path in write_output(files, Path(args.out)):
        print(path)
    return 0


def cmd_gen_docs(args: argparse.Namespace) -> int:
    from . import docs

    text = docs.render(load_contract(args.schema))
    out = Path(args.out)
    if args.check:
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            print(f"{out} is stale: run {docs.REGENERATE}", file=sys.stderr)
            return 1
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(text.encode("utf-8"))
    print(out)
    return 0


def add_gen_client_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("language", choices=sorted(LANGUAGES), metavar="LANG",
                        help="one of " + ", ".join(sorted(LANGUAGES)))
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--schema", metavar="FILE",
                        help="OpenRPC document (default: the gateway's schema/openrpc.json)")
    parser.add_argument("--go-module", metavar="PATH",
                        help=f"Go module path (default {go.DEFAULT_MODULE!r})")


def add_gen_docs_arguments(parser: argparse.ArgumentParser) -> None:
    from .docs import DEFAULT_OUT

    parser.add_argument("--out", default=str(DEFAULT_OUT), metavar="FILE",
                        help="where to write (default: docs/api.md of this checkout)")
    parser.add_argument("--schema", metavar="FILE",
                        help="OpenRPC document (default: the gateway's schema/openrpc.json)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when the file is not up to date")


def add_commands(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    client = subparsers.add_parser(
        "gen-client", help="generate a typed client from the OpenRPC contract",
        description="Write a dependency-free client for LANG into DIR: one typed, "
                    "documented function per JSON-RPC method.")
    add_gen_client_arguments(client)
    client.set_defaults(func=cmd_gen_client)
    docs = subparsers.add_parser("gen-docs", help="regenerate docs/api.md from the contract")
    add_gen_docs_arguments(docs)
    docs.set_defaults(func=cmd_gen_docs)
