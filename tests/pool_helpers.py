"""Helpers for tests that run messages through simulated modems."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from rpcgw.app import GATEWAY

from .conftest import ADMIN, RpcClient, basic

#: Fast simulated network and pool timings, so end-to-end tests take seconds.
FAST_SIMULATOR = {"simulator": {"delivery_delay": 0.05, "accept_delay": 0.01}}
FAST_POOL = dict(pool_poll_seconds=0.1, pool_retry_seconds=0.05,
                 pool_retry_max_seconds=0.5, pool_maintenance_seconds=0.2,
                 circuit_cooldown_seconds=1.0, circuit_cooldown_max_seconds=2.0,
                 pool_max_attempts=8)

ADMIN_AUTH = basic(*ADMIN)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0,
                     interval: float = 0.1) -> Any:
    """Await ``check()`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


async def start_pool_gateway(gateway_factory: Any, database_url: str, modems: int = 4,
                             **settings: Any) -> tuple[Any, RpcClient]:
    options = dict(FAST_POOL)
    options.update(settings)
    app, rpc = await gateway_factory(database_url, FAST_SIMULATOR, simulated_modems=modems,
                                     **options)
    gw = app[GATEWAY]

    async def all_online() -> bool:
        devices = await rpc.call("devices.get_list", auth=ADMIN_AUTH)
        return len(devices) == modems and all(d["state"] == "online" for d in devices)
    await eventually(all_online, timeout=30)
    return gw, rpc


async def statuses(rpc: RpcClient, hashes: list[str]) -> dict[str, str]:
    out = {}
    for h in hashes:
        out[h] = (await rpc.call("sms.get", h))["status"]
    return out


async def count(rpc: RpcClient, **filters: Any) -> int:
    return (await rpc.call("sms.search", dict(filters, count_only=True)))["count"]
