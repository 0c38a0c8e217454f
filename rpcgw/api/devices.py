"""``devices.*`` (administrators) and ``simulator.*`` (administrators, simulated modems)."""

from __future__ import annotations

from typing import Any

from .. import errors
from ..rpc import Context, registry
from ..services import devices


@registry.method("devices.get_list", admin=True)
async def get_list(ctx: Context) -> list[dict[str, Any]]:
    return await ctx.gw.db.read(devices.device_objects, ctx.gw)


@registry.method("devices.get", admin=True)
async def get(ctx: Context, device_id: int) -> dict[str, Any]:
    found = await ctx.gw.db.read(devices.device_objects, ctx.gw, device_id)
    if not found:
        raise errors.NotFound(f"no device {device_id}", param="id")
    return found[0]


@registry.method("devices.update", admin=True)
async def update(ctx: Context, device_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    await ctx.gw.db.write(devices.update_device, device_id, fields)
    if ctx.gw.pool is not None:
        await ctx.gw.pool.update_device(device_id, fields)
    return await get(ctx, device_id)


def _simulator(ctx: Context) -> Any:
    pool = ctx.gw.pool
    if pool is None or pool.simulator is None:
        raise errors.Unavailable("this gateway runs no simulated modems",
                                 message="SIMULATOR_NOT_RUNNING")
    return pool.simulator


@registry.method("simulator.inject", admin=True)
async def inject(ctx: Context, sender: str, to: str | None, text: str) -> dict[str, Any]:
    from ..gsm.simulator import UnknownNumber
    host = _simulator(ctx)
    try:
        result = host.network.inject(sender, to or None, text)
    except UnknownNumber as exc:
        raise errors.InvalidParams(str(exc), param="to") from None
    return result.as_dict()


@registry.method("simulator.get_traffic", admin=True)
async def get_traffic(ctx: Context, filters: dict[str, Any] | None) -> list[dict[str, Any]]:
    host = _simulator(ctx)
    f = filters or {}
    records = host.network.traffic(**{k: v for k, v in f.items() if v is not None})
    return [r.as_dict() for r in records]
