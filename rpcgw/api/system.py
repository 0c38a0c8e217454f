"""``system.*`` and ``rpc.discover``."""

from __future__ import annotations

import time
from typing import Any

from ..rpc import Context, registry


@registry.method("system.get_timestamp")
async def get_timestamp(ctx: Context) -> int:
    return int(time.time())


@registry.method("rpc.discover")
async def discover(ctx: Context) -> dict[str, Any]:
    return ctx.gw.dispatcher.contract
