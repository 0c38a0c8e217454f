#!/usr/bin/env python3
"""Generate a typed client from schema/openrpc.json: ``scripts/gen_client.py LANG --out DIR``.

The same as ``rpcgw gen-client``, for a checkout where rpcgw is not installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rpcgw.codegen import add_gen_client_arguments, cmd_gen_client  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_gen_client_arguments(parser)
    return cmd_gen_client(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
