"""``callbacks.*``: SMS Gateway Me's filtered, per-device event callbacks."""

from __future__ import annotations

from typing import Any

from ..events import events_of
from ..rpc import Context, registry


@registry.method("callbacks.create")
async def create(ctx: Context, callback: dict[str, Any]) -> dict[str, Any]:
    return await events_of(ctx.gw).service.create_callback(ctx.principal, callback)


@registry.method("callbacks.update")
async def update(ctx: Context, ident: int, fields: dict[str, Any]) -> dict[str, Any]:
    return await events_of(ctx.gw).service.update_callback(ctx.principal, ident, fields)


@registry.method("callbacks.get")
async def get(ctx: Context, ident: int) -> dict[str, Any]:
    return await events_of(ctx.gw).service.get_callback(ctx.principal, ident)


@registry.method("callbacks.search")
async def search(ctx: Context, filters: dict[str, Any] | None) -> dict[str, Any]:
    return await events_of(ctx.gw).service.search_callbacks(ctx.principal, filters or {})


@registry.method("callbacks.delete")
async def delete(ctx: Context, ident: int) -> bool:
    return await events_of(ctx.gw).service.delete_callback(ctx.principal, ident)


@registry.method("callbacks.test")
async def test(ctx: Context, ident: int) -> dict[str, Any]:
    return await events_of(ctx.gw).service.test_callback(ctx.principal, ident)
