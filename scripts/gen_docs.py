#!/usr/bin/env python3
"""Regenerate docs/api.md from schema/openrpc.json (``--check``: only say if it is stale).

Run it after every change to the contract; tests/test_docs.py fails until you do.  The
same as ``rpcgw gen-docs``, for a checkout where rpcgw is not installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rpcgw.codegen import add_gen_docs_arguments, cmd_gen_docs  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_gen_docs_arguments(parser)
    return cmd_gen_docs(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
